"""The Recording type: validation on construction and derived views."""

import numpy as np
import pandas as pd
import pytest

from neurodyn.errors import InputError
from neurodyn.recording import Recording


def make(T=50, N=4, **kw):
    rng = np.random.default_rng(0)
    args = dict(traces=rng.standard_normal((T, N)), labels=[f"c{i}" for i in range(N)],
                modality="calcium", fs=10.0)
    args.update(kw)
    return Recording(**args)


def test_defaults_and_views():
    r = make()
    assert r.traces.dtype == np.float32
    assert (r.n_samples, r.n_channels) == (50, 4)
    np.testing.assert_allclose(r.times[:3], [0.0, 0.1, 0.2])
    assert r.duration == pytest.approx(5.0)
    assert r.observed.all()
    assert list(r.events.columns) == ["onset", "offset", "label"]


def test_time_stamps_give_rate():
    t = np.cumsum(np.full(20, 0.6)) + 100
    r = make(T=20, fs=None, time=t)
    assert r.fs == pytest.approx(1 / 0.6)


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(labels=["a", "a", "b", "c"]), "duplicate channel labels: a"),
        (dict(labels=["a", "b"]), "2 labels for 4 channels"),
        (dict(traces=np.zeros((0, 4))), "empty"),
        (dict(traces=np.zeros(10)), "2-D"),
        (dict(modality="fmri"), "unknown modality"),
        (dict(fs=None), "sampling rate or time stamps"),
        (dict(fs=None, time=[0.0, 2.0, 1.0, *range(3, 50)]), "strictly increasing"),
        (dict(traces=np.full((50, 4), np.nan)), "non-finite values in channels c0"),
        (dict(mask=np.ones((3, 3), bool)), "mask has shape"),
        (dict(events=pd.DataFrame({"onset": [1.0]})), "lacks columns"),
    ],
)
def test_invalid_input_names_problem(kw, msg):
    with pytest.raises(InputError, match=msg):
        make(**kw)


def test_nan_allowed_only_under_mask():
    x = np.random.default_rng(1).standard_normal((30, 3))
    x[5:8, 1] = np.nan
    mask = np.isfinite(x)
    r = make(T=30, N=3, traces=x, mask=mask)
    assert not r.observed[6, 1]
    with pytest.raises(InputError, match="mask says observed"):
        make(T=30, N=3, traces=x, mask=np.ones_like(mask))
    allnan = mask.copy()
    allnan[:, 2] = False
    with pytest.raises(InputError, match="no observed sample: c2"):
        make(T=30, N=3, traces=x, mask=allnan)


def test_select_and_crop():
    ev = pd.DataFrame({"onset": [0.5, 4.0], "offset": [1.5, 4.5], "label": ["a", "b"]})
    r = make(events=ev)
    s = r.select(["c2", "c0"])
    assert s.labels == ("c2", "c0")
    np.testing.assert_array_equal(s.data[:, 0], r.data[:, 2])
    with pytest.raises(InputError, match="no channels named"):
        r.select(["zz"])
    c = r.crop(1.0, 2.0)
    assert c.n_samples == 10
    assert c.times[0] == pytest.approx(1.0)
    assert len(c.events) == 1 and c.events.onset[0] == pytest.approx(1.0)
    with pytest.raises(InputError, match="keeps no sample"):
        r.crop(100, 200)
