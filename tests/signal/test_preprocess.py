"""Preprocessing kernels against numpy/scipy references; the stage end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.signal
import scipy.stats
from helpers import assert_not_blank

from neurodyn import preprocess as pp
from neurodyn.errors import InputError
from neurodyn.io import store
from neurodyn.params import ParamError
from neurodyn.recording import Recording
from neurodyn.signal import kernels as sk


def eeg_rec(fs=250.0, seconds=20.0, seed=0, n=4, events=None):
    rng = np.random.default_rng(seed)
    t = np.arange(int(fs * seconds)) / fs
    x = rng.normal(size=(t.size, n)) * 1e-6
    x[:, 0] += 5e-6 * np.sin(2 * np.pi * 10 * t)  # in band
    x[:, 1] += 5e-6 * np.sin(2 * np.pi * 50 * t)  # mains
    info = pd.DataFrame({"channel": [f"C{i}" for i in range(n)],
                         "type": ["eeg"] * (n - 1) + ["ecg"]})
    return Recording(x, [f"C{i}" for i in range(n)], "eeg", fs=fs, units="V", id="eeg/a",
                     channel_info=info, events=events if events is not None else
                     pd.DataFrame({"onset": [2.0, 10.0], "offset": [6.0, 13.0],
                                   "label": ["eyes_closed", "eyes_closed"]}))


# -- kernels vs references ------------------------------------------------------------------
def slow_fill(x, obs, max_gap):
    y, o = x.astype(float).copy(), obs.copy()
    T, N = x.shape
    for j in range(N):
        good = np.flatnonzero(obs[:, j])
        for i in range(T):
            if obs[i, j]:
                continue
            left = good[good < i]
            right = good[good > i]
            if left.size and right.size:
                a, b = left[-1], right[0]
                y[i, j] = x[a, j] + (x[b, j] - x[a, j]) * (i - a) / (b - a)
            else:
                y[i, j] = x[left[-1], j] if left.size else x[right[0], j]
            lo = i
            while lo > 0 and not obs[lo - 1, j]:
                lo -= 1
            hi = i
            while hi < T - 1 and not obs[hi + 1, j]:
                hi += 1
            if hi - lo + 1 <= max_gap:
                o[i, j] = True
    return y, o


@pytest.mark.parametrize("seed", [0, 1])
def test_fill_gaps_matches_slow_reference(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 5))
    obs = rng.random((300, 5)) > 0.15
    obs[:40, 2] = False  # leading run
    obs[200:260, 3] = False  # long run
    obs[0, 4] = obs[-1, 4] = True
    x[~obs] = np.nan
    y, o, n_i, n_m = sk.fill_gaps(x, obs, 3)
    ry, ro = slow_fill(np.nan_to_num(x), obs, 3)
    np.testing.assert_allclose(y, ry)
    np.testing.assert_array_equal(o, ro)
    assert n_i == int((ro & ~obs).sum()) and n_m == int((~ro).sum())
    assert not o[200:260, 3].any() and np.isfinite(y).all()


def test_rereference_matches_numpy():
    x = np.random.default_rng(0).normal(size=(100, 5))
    y = sk.rereference(x, np.array([0, 1, 2, 3]), np.array([0, 1, 2, 3]))
    np.testing.assert_allclose(y[:, :4], x[:, :4] - x[:, :4].mean(axis=1, keepdims=True))
    np.testing.assert_array_equal(y[:, 4], x[:, 4])
    y2 = sk.rereference(x, np.array([4]), np.array([0, 1]))
    np.testing.assert_allclose(y2[:, 0], x[:, 0] - x[:, 4])


def test_bandpass_matches_scipy_and_attenuates():
    fs = 250.0
    t = np.arange(5000) / fs
    x = np.stack([np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 80 * t), np.sin(2 * np.pi * 0.1 * t)], 1)
    sos = sk.bandpass_sos(fs, 1.0, 40.0, 4)
    y = sk.apply_sos(x, sos)
    ref = scipy.signal.sosfiltfilt(scipy.signal.butter(4, [1, 40], "bandpass", fs=fs, output="sos"),
                                   x, axis=0)
    np.testing.assert_allclose(y, ref, atol=1e-12)
    mid = slice(500, 4500)
    assert np.std(y[mid, 0]) / np.std(x[mid, 0]) > 0.98
    assert np.std(y[mid, 1]) / np.std(x[mid, 1]) < 0.01
    assert np.std(y[mid, 2]) / np.std(x[mid, 2]) < 0.01
    with pytest.raises(ValueError):
        sk.bandpass_sos(fs, 40.0, 200.0)


def test_notch_removes_mains_keeps_alpha():
    fs = 500.0
    t = np.arange(10000) / fs
    x = np.stack([np.sin(2 * np.pi * 50 * t), np.sin(2 * np.pi * 10 * t)], 1)
    y = sk.notch(x, fs, 50.0, 30.0)
    b, a = scipy.signal.iirnotch(50.0, 30.0, fs=fs)
    np.testing.assert_allclose(y, scipy.signal.filtfilt(b, a, x, axis=0, padlen=9), atol=1e-12)
    mid = slice(2000, 8000)
    assert np.std(y[mid, 0]) < 0.02 and np.std(y[mid, 1]) / np.std(x[mid, 1]) > 0.99


def test_resampling_kernels():
    x = np.random.default_rng(1).normal(size=(1000, 3))
    assert sk.rate_ratio(500.0, 250.0) == (1, 2) and sk.rate_ratio(100.0, 250.0) == (5, 2)
    assert sk.rate_ratio(1.0, np.pi) is None
    np.testing.assert_allclose(sk.resample_polyphase(x, 2, 5),
                               scipy.signal.resample_poly(x, 2, 5, axis=0))
    counts = np.random.default_rng(2).poisson(1.0, size=(1001, 3)).astype(float)
    r = sk.rebin_sum(counts, 4)
    assert r.shape == (251, 3)
    np.testing.assert_array_equal(r.sum(axis=0), counts.sum(axis=0))
    np.testing.assert_array_equal(r[1], counts[4:8].sum(axis=0))
    t = np.cumsum(np.random.default_rng(3).uniform(0.2, 0.4, 200))
    grid, y = sk.resample_linear(t, x[:200], 3.0)
    np.testing.assert_allclose(y[:, 1], np.interp(grid, t, x[:200, 1]), rtol=1e-6)


def test_normalisations_and_derivative():
    x = np.random.default_rng(4).normal(5.0, 2.0, size=(500, 3))
    np.testing.assert_allclose(sk.zscore(x), scipy.stats.zscore(x, axis=0), atol=1e-12)
    obs = np.ones_like(x, dtype=bool)
    obs[:50, 0] = False
    z = sk.zscore(x, obs)
    np.testing.assert_allclose(z[50:, 0].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(z[50:, 0].std(), 1, atol=1e-12)
    f, f0 = sk.dff(x, 8.0)
    np.testing.assert_allclose(f0, np.percentile(x, 8, axis=0))
    np.testing.assert_allclose(f, x / f0 - 1)
    with pytest.raises(ValueError, match="zero"):
        sk.dff(np.zeros((10, 2)))
    t = np.sort(np.random.default_rng(5).uniform(0, 10, 500))
    np.testing.assert_allclose(sk.derivative(x, t), np.gradient(x, t, axis=0))


def test_segments_split_on_time_gaps():
    t = np.concatenate([np.arange(10), 20 + np.arange(5)]) / 10.0
    assert sk.segments(t, 10.0) == [slice(0, 10), slice(10, 15)]


# -- steps on recordings --------------------------------------------------------------------
def test_crop_by_label_and_seconds():
    rec = eeg_rec()
    out = pp.preprocess_recording(rec, crop="eyes_closed")
    assert out.n_samples == int(7 * 250)
    assert out.meta["segments"] == [[2.0, 6.0], [10.0, 13.0]]
    np.testing.assert_array_equal(out.data[:1000], rec.data[500:1500])
    out2 = pp.preprocess_recording(rec, crop="5:7.5")
    assert out2.n_samples == 625 and out2.times[0] == pytest.approx(5.0)
    with pytest.raises(InputError, match="no events labelled"):
        pp.preprocess_recording(rec, crop="eyes_open")


def test_filters_apply_per_segment_and_only_to_eeg():
    rec = pp.preprocess_recording(eeg_rec(), crop="eyes_closed")
    out = pp.preprocess_recording(rec, bandpass="1,40")
    sos = sk.bandpass_sos(250.0, 1.0, 40.0, 4)
    x = rec.data.astype(float)
    np.testing.assert_allclose(out.data[:1000], sk.apply_sos(x[:1000], sos), rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(out.data[1000:], sk.apply_sos(x[1000:], sos), rtol=1e-4, atol=1e-12)
    spikes = Recording(np.ones((100, 2)), ["0", "1"], "spikes", fs=100.0, units="counts")
    s = pp.preprocess_recording(spikes, bandpass="1,40", reference="average")
    np.testing.assert_array_equal(s.data, spikes.data)
    assert all("skipped" in r for r in s.meta["preprocess"])


def test_reference_uses_eeg_channels_only():
    rec = eeg_rec()
    out = pp.preprocess_recording(rec, reference="average")
    x = rec.data.astype(float)
    np.testing.assert_allclose(out.data[:, :3], x[:, :3] - x[:, :3].mean(1, keepdims=True),
                               atol=1e-12)
    np.testing.assert_array_equal(out.data[:, 3], rec.data[:, 3])
    named = pp.preprocess_recording(rec, reference="C2")
    np.testing.assert_allclose(named.data[:, 0], x[:, 0] - x[:, 2], atol=1e-12)
    with pytest.raises(ParamError, match="no channels"):  # the CLI names --reference
        pp.preprocess_recording(rec, reference="Nope")


def test_resample_regular_irregular_and_spike_counts():
    rec = eeg_rec()
    out = pp.preprocess_recording(rec, fs=100.0)
    assert out.fs == 100.0 and out.n_samples == 2000 and out.time is None
    np.testing.assert_allclose(out.data, scipy.signal.resample_poly(rec.data.astype(float), 2, 5,
                                                                    axis=0), rtol=1e-4, atol=1e-12)
    assert "polyphase" in out.meta["preprocess"][-1]["method"]
    counts = np.random.default_rng(0).poisson(0.3, size=(1000, 3))
    spikes = Recording(counts, ["0", "1", "2"], "spikes", fs=100.0, units="counts")
    s = pp.preprocess_recording(spikes, fs=20.0)
    np.testing.assert_array_equal(s.data.sum(axis=0), counts.sum(axis=0))
    assert s.units == "counts" and s.n_samples == 200
    t = np.cumsum(np.random.default_rng(1).uniform(0.25, 0.4, 300))
    cal = Recording(np.random.default_rng(2).normal(size=(300, 2)), ["A", "B"], "calcium", time=t)
    c = pp.preprocess_recording(cal, fs=3.0)
    assert "linear" in c.meta["preprocess"][-1]["method"] and c.fs == 3.0
    np.testing.assert_allclose(c.data[:, 0], np.interp(c.times, t, cal.data[:, 0]), rtol=1e-5)


def test_gaps_reported_and_masked():
    x = np.random.default_rng(0).normal(size=(1000, 2))
    mask = np.ones_like(x, dtype=bool)
    mask[100:103, 0] = False  # 3 samples = 0.03 s: interpolated
    mask[500:600, 1] = False  # 1 s: stays masked
    x[~mask] = np.nan
    rec = Recording(x, ["A", "B"], "calcium", fs=100.0, mask=mask)
    out = pp.preprocess_recording(rec, max_gap=0.05, normalize="zscore")
    rep = out.meta["preprocess"][0]
    assert rep["step"] == "gaps" and rep["interpolated"] == 3 and rep["masked"] == 100
    assert out.mask[100:103, 0].all() and not out.mask[500:600, 1].any()
    assert np.isfinite(out.data).all() and out.units == "z"


def test_detrend_dff_and_derivative_steps():
    t = np.arange(1000) / 10.0
    x = np.stack([2.0 + 0.01 * t, 3.0 + np.sin(t)], 1)
    rec = Recording(x, ["A", "B"], "calcium", fs=10.0)
    d = pp.preprocess_recording(rec, detrend="linear")
    np.testing.assert_allclose(d.data, scipy.signal.detrend(x, axis=0), atol=1e-5)
    f = pp.preprocess_recording(rec, normalize="dff", dff_percentile=10)
    np.testing.assert_allclose(f.data, x / np.percentile(x, 10, axis=0) - 1, atol=1e-6)
    g = pp.preprocess_recording(rec, derivative=True)
    np.testing.assert_allclose(g.data, np.gradient(x, t, axis=0), atol=1e-5)
    assert g.units == "a.u./s"


# -- the stage ------------------------------------------------------------------------------
def test_run_records_steps_and_provenance(tmp_path):
    src = tmp_path / "rec.h5"
    store.write_recordings(src, [eeg_rec()], params={}, inputs=[])
    out = pp.run(src, tmp_path / "pre.h5", bandpass="1,40", notch="50", reference="average",
                 fs=125.0, normalize="zscore")
    prov = store.provenance(out)
    assert prov["stage"] == "preprocess" and prov["complete"]
    assert prov["parameters"]["bandpass"] == "1,40" and prov["parameters"]["max_gap"] == 0.0
    log = json.loads(prov["preprocess_log"])["eeg/a"]
    assert [r["step"] for r in log] == ["reference", "filter", "resample", "normalize"]
    [rec] = store.read_recordings(out)
    assert rec.meta["preprocess"] == log and rec.fs == 125.0 and rec.units == "z"
    # mains at 50 Hz in channel 1 removed: its spectrum at 50 Hz collapses
    f, p = scipy.signal.welch(rec.data[:, 1], fs=125.0, nperseg=512)
    f0, p0 = scipy.signal.welch(eeg_rec().data[:, 1], fs=250.0, nperseg=1024)
    assert p[np.argmin(abs(f - 50))] / p.sum() < 0.01 * p0[np.argmin(abs(f0 - 50))] / p0.sum()


def test_cli_preprocess_and_bad_options(tmp_path, cli):
    src = tmp_path / "rec.h5"
    store.write_recordings(src, [eeg_rec()], params={}, inputs=[])
    out = tmp_path / "pre.h5"
    res = cli("preprocess", src, "--out", out, "--crop", "eyes_closed", "--detrend", "linear",
              "--normalize", "zscore", "--derivative")
    assert res.exit_code == 0, res.output
    [rec] = store.read_recordings(out)
    assert rec.n_samples == 1750 and rec.units == "z/s"
    for args in (["--normalize", "minmax"], ["--bandpass", "40,1"], ["--detrend", "cubic"],
                 ["--normalize", "dff", "--detrend", "linear"], ["--fs", "-5"],
                 ["--resample-hz", "-5"], ["--fs", "nan"]):
        bad = tmp_path / "bad.h5"
        res = cli("preprocess", src, "--out", bad, *args)
        assert res.exit_code == 2, (args, res.output)
        assert res.output.startswith("error: ") and not bad.exists()
    res = cli("preprocess", tmp_path / "missing.h5", "--out", tmp_path / "x.h5")
    assert res.exit_code == 2 and "missing.h5" in res.output


def test_draw_shows_the_preprocessed_traces(tmp_path, saved_figures):
    from neurodyn.plots import style
    from neurodyn.plots.preprocess import draw

    src = tmp_path / "rec.h5"
    store.write_recordings(src, [eeg_rec()], params={}, inputs=[])
    out = pp.run(src, tmp_path / "pre.h5", bandpass="1,40")
    [path] = draw(out, tmp_path / "fig")
    assert path.name == "preprocess_eeg_a.png"
    assert_not_blank(path)
    [ax] = [a for a in saved_figures["preprocess_eeg_a"].axes if a.lines]
    rec = store.read_recordings(out)[0]
    assert ax.get_xlabel() == "time (s)" and "filter" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == list(rec.labels)
    t, shown = style.decimate(rec.times, rec.traces)  # what the figure shows, block-averaged
    traces = [ln for ln in ax.lines if len(ln.get_xdata()) == len(t)]  # not the event marks
    assert len(traces) == rec.n_channels
    for j, line in enumerate(traces):  # each line is its channel's filtered trace, scaled
        x, y = line.get_data()
        assert np.allclose(x, t)
        assert np.corrcoef(y, shown[:, j])[0, 1] > 0.999


def test_run_carries_connectome_and_ground_truth(tmp_path):
    from neurodyn.connectome import Connectome

    src = tmp_path / "rec.h5"
    con = Connectome("toy", ["C0", "C1"], np.array([[0, 1], [0, 0]], float), np.zeros((2, 2)))
    store.write_recordings(src, [eeg_rec()], [con], params={}, inputs=[],
                           extra={"ground_truth": {"membership": np.array([0, 1, -1, 0])}})
    out = pp.run(src, tmp_path / "pre.h5", normalize="zscore")
    with store.open_h5(out) as f:
        np.testing.assert_array_equal(f["ground_truth/membership"][()], [0, 1, -1, 0])
        got = store.read_connectome(f["connectome/toy"])
    np.testing.assert_array_equal(got.chemical, con.chemical)


def test_channel_blocks_equal_whole_array_processing():
    """Steps run on float64 blocks of channels; with more channels than a block (and a ragged
    last block) every step must equal the kernels applied to the whole array."""
    n = 2 * sk.CHANNEL_BLOCK + 5
    rec = pp.preprocess_recording(eeg_rec(n=n, seed=3), crop="eyes_closed")
    x = rec.data.astype(float)
    segs = sk.segments(rec.times, rec.fs)
    out = pp.preprocess_recording(rec, reference="average", bandpass="1,40", notch="50",
                                  detrend="linear", fs=125.0, normalize="zscore")
    eeg = np.arange(n - 1)
    ref = sk.rereference(x, eeg, eeg)
    sos = sk.bandpass_sos(rec.fs, 1.0, 40.0, 4)
    parts = []
    for sl in segs:
        y = sk.notch(sk.apply_sos(ref[sl], sos), rec.fs, 50.0, 30.0)
        parts.append(sk.resample_polyphase(scipy.signal.detrend(y, axis=0), 1, 2))
    expect = sk.zscore(np.concatenate(parts))
    assert out.data.shape == expect.shape and out.fs == 125.0
    np.testing.assert_allclose(out.data, expect, rtol=1e-4, atol=1e-4)
    # gaps and dF/F per block: the mask and the baselines keep their channel positions
    xg = np.abs(np.random.default_rng(0).normal(size=(400, n))) + 1.0
    mask = np.ones_like(xg, dtype=bool)
    mask[50:52, n - 1] = False
    mask[100:200, sk.CHANNEL_BLOCK] = False
    cal = Recording(np.where(mask, xg, np.nan), [f"c{i}" for i in range(n)], "calcium", fs=10.0,
                    mask=mask)
    g = pp.preprocess_recording(cal, max_gap=0.5, normalize="dff", dff_percentile=20)
    y, o, n_i, _ = sk.fill_gaps(xg, mask, 5)
    np.testing.assert_array_equal(g.mask, o)
    assert g.meta["preprocess"][0]["interpolated"] == n_i == 2
    np.testing.assert_allclose(g.data, sk.dff(y, 20, o)[0], rtol=1e-5, atol=1e-6)
    zero = cal.replace(traces=np.where(mask, 0.0, np.nan))
    with pytest.raises(InputError, match=r"zero in channels \['c0'"):
        pp.preprocess_recording(zero, normalize="dff")
