"""HDF5 store: round trips, lazy reads, provenance, atomic writes."""

import json
import os

import h5py
import numpy as np
import pandas as pd
import pytest

from neurodyn.connectome import Connectome
from neurodyn.errors import InputError
from neurodyn.io import store
from neurodyn.recording import Recording


def full_recording(rid="ds/animal|1", T=300, N=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N)).astype(np.float32)
    x[10:20, N - 1] = np.nan
    mask = np.isfinite(x)
    return Recording(
        traces=x, labels=[f"N{i}" for i in range(N)], modality="spikes", fs=None,
        time=np.sort(rng.uniform(0, 100, T)) + np.arange(T) * 1e-3, units="counts", id=rid,
        subject="animal1", dataset="ds", source_file="/data/x.mat",
        events=pd.DataFrame({"onset": [1.0, 5.5], "offset": [2.0, 7.0], "label": ["odor", "tone"], "trial": [1, 2]}),
        mask=mask, channel_info=pd.DataFrame({"region": list("ABCDEFGHIJ"[:N]), "depth": np.arange(N) * 1.5}),
        meta={"note": "x", "n": 3},
    )


def assert_same(a: Recording, b: Recording):
    np.testing.assert_array_equal(a.data, b.data)  # NaN-aware, bit-exact
    assert a.data.dtype == b.data.dtype == np.float32
    assert a.labels == b.labels
    np.testing.assert_array_equal(a.times, b.times)
    for f in ("modality", "fs", "units", "id", "subject", "dataset", "source_file", "meta"):
        assert getattr(a, f) == getattr(b, f), f
    assert (a.mask is None) == (b.mask is None)
    if a.mask is not None:
        np.testing.assert_array_equal(a.mask, b.mask)
    pd.testing.assert_frame_equal(a.events, b.events, check_dtype=False)
    if a.channel_info is None:
        assert b.channel_info is None
    else:
        pd.testing.assert_frame_equal(a.channel_info, b.channel_info, check_dtype=False)


def test_round_trip_every_field(tmp_path):
    recs = [full_recording(), full_recording("other", T=40, N=2, seed=1).replace(mask=None, traces=np.ones((40, 2)), channel_info=None)]
    con = Connectome("toy", ["A", "B", "C"], np.array([[0, 2, 0], [0, 0, 1], [3, 0, 0]]), np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]))
    path = store.write_recordings(tmp_path / "r.h5", recs, [con], params={"a": 1}, seed=7)
    back = store.read_recordings(path)
    for a, b in zip(recs, back):
        assert_same(a, b)
    with store.open_h5(path) as f:
        c2 = store.read_connectome(f["connectome/toy"])
    np.testing.assert_array_equal(c2.chemical, con.chemical)
    np.testing.assert_array_equal(c2.electrical, con.electrical)
    assert store.recording_ids(path) == ["ds/animal|1", "other"]
    assert [r.id for r in store.read_recordings(path, ids=["other"])] == ["other"]
    with pytest.raises(InputError, match="no recordings"):
        store.read_recordings(path, ids=["missing"])


def test_lazy_read_does_not_load(tmp_path):
    path = store.write_recordings(tmp_path / "r.h5", [full_recording(T=5000, N=8)])
    (rec,) = store.read_recordings(path, lazy=True)
    assert rec.is_lazy and isinstance(rec.traces, store.LazyArray)
    assert rec.traces.shape == (5000, 8)
    block = rec.traces[100:110, 3]
    assert block.shape == (10,)
    np.testing.assert_array_equal(rec.data, store.read_recordings(path)[0].data)
    # no file handle is held: the file can be replaced while the lazy recording lives
    os.replace(path, tmp_path / "moved.h5")


def test_provenance_and_digest(tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(b"abc")
    p = tmp_path / "out.h5"
    with store.atomic_h5(p, stage="demo", params={"k": 2}, inputs=[src], seed=3) as f:
        store.write_tree(f, {"result": {"x": np.arange(5), "@rank": 3, "name": "z"}})
    prov = store.provenance(p)
    assert prov["complete"] is True and prov["stage"] == "demo" and prov["seed"] == 3
    assert prov["parameters"] == {"k": 2}
    assert list(prov["inputs"].values())[0].startswith("sha256:ba7816bf")  # sha256("abc")
    assert {"numpy", "h5py", "neurodyn"} <= set(prov["versions"])
    assert prov["started"] <= prov["finished"]
    tree = store.read_tree(store.open_h5(p)["result"])
    np.testing.assert_array_equal(tree["x"], np.arange(5))
    assert tree["@rank"] == 3 and tree["@name"] == "z"
    d1 = prov["input_digest"]
    with store.atomic_h5(p, stage="demo", params={"k": 3}, inputs=[src], seed=3):
        pass
    assert store.provenance(p)["input_digest"] != d1
    src.write_bytes(b"abd")
    with store.atomic_h5(p, stage="demo", params={"k": 2}, inputs=[src], seed=3):
        pass
    assert store.provenance(p)["input_digest"] != d1


def test_large_datasets_are_chunked_and_compressed(tmp_path):
    p = tmp_path / "big.h5"
    with store.atomic_h5(p, stage="demo") as f:
        store.put(f, "big", np.zeros((2000, 100), np.float32))
        store.put(f, "small", np.zeros(10))
    with h5py.File(p, "r") as f:
        assert f["big"].chunks is not None and f["big"].compression == "gzip"
        assert f["small"].chunks is None


def test_interrupted_write_leaves_nothing(tmp_path):
    p = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        with store.atomic_h5(p, stage="demo") as f:
            store.put(f, "x", np.arange(10))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    # an existing complete output survives a failed rewrite untouched
    with store.atomic_h5(p, stage="demo", params={"v": 1}):
        pass
    before = p.read_bytes()
    with pytest.raises(RuntimeError):
        with store.atomic_h5(p, stage="demo", params={"v": 2}):
            raise RuntimeError("boom")
    assert p.read_bytes() == before
    assert [x.name for x in tmp_path.iterdir()] == ["out.h5"]


def test_incomplete_and_corrupt_files_are_rejected(tmp_path):
    p = tmp_path / "half.h5"
    with h5py.File(p, "w") as f:  # what a killed writer would leave if it wrote in place
        f.attrs["complete"] = False
        f.create_group("recordings")
    with pytest.raises(InputError, match="incomplete output"):
        store.read_recordings(p)
    good = store.write_recordings(tmp_path / "g.h5", [full_recording()])
    trunc = tmp_path / "t.h5"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(InputError, match="not a readable HDF5 file"):
        store.read_recordings(trunc)
    assert not store.is_complete(trunc) and store.is_complete(good)


def test_provenance_json_is_parseable(tmp_path):
    p = store.write_recordings(tmp_path / "r.h5", [full_recording()], params={"path": tmp_path})
    with h5py.File(p, "r") as f:
        assert json.loads(f.attrs["parameters"]) == {"path": str(tmp_path)}


def test_connectome_alignment_is_by_canonical_name():
    con = Connectome("c", ["DA06", "AVAL", "VB02"], np.array([[0, 1, 0], [0, 0, 2], [3, 0, 0]]), np.zeros((3, 3)))
    chem, _, present = con.aligned(["VB2", "DA6", "XYZ"])
    np.testing.assert_array_equal(present, [True, True, False])
    assert chem[0, 1] == 3 and chem[1, 0] == 0  # VB2 -> DA6 carries VB02 -> DA06


def test_file_already_open_by_user_h5py(tmp_path):
    path = store.write_recordings(tmp_path / "r.h5", [full_recording()])
    with h5py.File(path, "r"):  # default locking, as a user's notebook would open it
        assert store.read_recordings(path)[0].n_channels == 5


def test_recordings_stream_from_a_generator(tmp_path):
    """Each recording is written as the generator yields it (one in memory at a time);
    ``extra`` may be computed after them; duplicate ids abort without leaving a file."""
    made = []

    def gen(ids):
        for i, rid in enumerate(ids):
            made.append(rid)
            yield full_recording(rid, seed=i)

    p = tmp_path / "s.h5"
    store.write_recordings(p, gen(["a/1", "a/2"]), stage="demo",
                           extra=lambda: {"@n_made": len(made)})
    back = store.read_recordings(p)
    for i, rec in enumerate(back):
        assert_same(rec, full_recording(rec.id, seed=i))
    with h5py.File(p, "r") as f:
        assert f.attrs["n_made"] == 2
    q = tmp_path / "dup.h5"
    with pytest.raises(InputError, match="not unique"):
        store.write_recordings(q, gen(["b", "c", "b"]), stage="demo")
    assert not q.exists() and sorted(x.name for x in tmp_path.iterdir()) == ["s.h5"]
