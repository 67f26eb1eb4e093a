"""affinity.h5 in block form: built without the dense tensor, written, read back, and the
files of older versions (dense /affinity and /mask) still read and factorized."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurodyn.affinity import result
from neurodyn.affinity.kernels import KINDS, windowed_affinity
from neurodyn.affinity.signals import prepare
from neurodyn.affinity.stage import run as affinity_run
from neurodyn.affinity.tensor import align_neurons, build_affinity_tensor, observed_means
from neurodyn.affinity.windows import window_samples
from neurodyn.io.store import atomic_h5, put, write_recordings
from neurodyn.recording import Recording
from neurodyn.tensor.stage import run as factorize_run

NAMES = ["ADAL", "AIBL", "AVAL", "AVAR", "RIML", "RIMR", "SMDV", "URXL"]


def collection(n: int = 5, seed: int = 0) -> list[Recording]:
    """Worms with different neuron subsets, lengths and a gap (NaN where unobserved)."""
    rng = np.random.default_rng(seed)
    recs = []
    for k in range(n):
        names = sorted(rng.choice(NAMES, size=int(rng.integers(3, 7)), replace=False))
        x = rng.standard_normal((int(rng.integers(160, 240)), len(names))).cumsum(axis=0)
        mask = np.ones(x.shape, bool)
        if k == 1:
            mask[40:90, 0] = False  # a gap: some windows of this neuron's pairs unobserved
            x[~mask] = np.nan
        recs.append(Recording(traces=x.astype(np.float32), labels=list(names), modality="calcium",
                              fs=4.0, id=f"w{k}", mask=mask))
    return recs


def dense_reference(recs, t, kernel="differential", min_fraction=0.5):
    """The dense (P, W, A) tensor computed over *all* pairs of every animal, then masked where
    a neuron is absent: what the block form must equal."""
    labels, cols = align_neurons(recs, "union", False)
    P, W, A = t.observed.shape
    x = np.zeros((P, W, A), np.float32)
    m = np.zeros((P, W, A), bool)
    for a, rec in enumerate(recs):
        col = cols[a]
        have = np.flatnonzero(col >= 0)
        d = np.zeros((rec.n_samples, len(labels)))
        o = np.zeros((rec.n_samples, len(labels)), bool)
        d[:, have] = rec.data[:, col[have]]
        o[:, have] = rec.observed[:, col[have]]
        s = prepare(d, o, t.fs, kernel, 0.5)
        start, stop = window_samples(rec.times, t.windows)
        need = np.maximum(np.ceil(min_fraction * (stop - start)), 1).astype(np.int64)
        windowed_affinity(s, np.ascontiguousarray(o.T), t.pairs[:, 0], t.pairs[:, 1], start, stop,
                          need, KINDS[kernel], 2.0, x[:, :, a], m[:, :, a])
    present = np.array([c >= 0 for c in cols])  # (A, N)
    both = present[:, t.pairs[:, 0]] & present[:, t.pairs[:, 1]]  # (A, P)
    m &= both.T[:, None, :]
    return np.where(m, x, 0), m


def test_block_tensor_equals_the_dense_one_and_round_trips(tmp_path):
    recs = collection()
    t = build_affinity_tensor(recs, window_s=10.0, step_s=5.0)
    x_ref, m_ref = dense_reference(recs, t)
    x, m = t.dense()
    np.testing.assert_array_equal(m, m_ref)
    np.testing.assert_allclose(x, x_ref, atol=1e-6)
    obs = t.observed
    assert 0 < obs.observed_fraction < 0.9 and not obs.mask.all()  # absent pairs and the gap
    assert obs.n_rows == sum(p.sum() * (p.sum() - 1) // 2 for p in t.present)  # own pairs only
    # the means drawn by the figures
    per_pair, per_window = observed_means(obs)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(per_pair, np.where(m.any((1, 2)), (x * m).sum((1, 2)) /
                                                      m.sum((1, 2)), np.nan), rtol=1e-5)
        np.testing.assert_allclose(per_window, np.where(m.any(0), (x * m).sum(0) / m.sum(0),
                                                        np.nan), rtol=1e-5)
    # the stage writes the blocks; reading gives them back
    write_recordings(tmp_path / "rec.h5", recs)
    affinity_run(tmp_path / "rec.h5", tmp_path / "aff.h5", window=10.0, step=5.0)
    with h5py.File(tmp_path / "aff.h5") as f:
        assert "affinity" not in f and "mask" not in f
        assert f.attrs["n_observed"] == obs.nnz
    back = result.read(tmp_path / "aff.h5")
    for name in ("pair_index", "offsets", "values", "mask"):
        np.testing.assert_array_equal(getattr(back.observed, name), getattr(obs, name))
    assert back.observed.shape == obs.shape and back.labels == t.labels


def _legacy_file(path, t):
    """An affinity.h5 as versions before the block form wrote it (dense /affinity, /mask)."""
    x, m = t.dense()
    with atomic_h5(path, stage=result.STAGE) as f:
        put(f, "affinity", x)
        put(f, "mask", m)
        put(f, "pairs", t.pairs)
        put(f, "labels", np.array(t.labels, dtype=object))
        put(f, "windows", t.windows)
        put(f, "animals", np.array(t.animals, dtype=object))
        put(f, "present", t.present)
        f.attrs.update(kernel="differential", fs=t.fs)


def test_old_dense_file_is_read_and_factorized_like_the_new_one(tmp_path):
    t = build_affinity_tensor(collection(seed=1), window_s=10.0, step_s=5.0)
    _legacy_file(tmp_path / "old.h5", t)
    old = result.read(tmp_path / "old.h5")
    np.testing.assert_array_equal(old.mask, t.mask)
    np.testing.assert_array_equal(old.affinity, t.affinity)
    with atomic_h5(tmp_path / "new.h5", stage=result.STAGE) as f:
        result.write(f, t, "differential")
    kw = dict(rank=2, restarts=1, max_iter=30, heldout=0.2)
    factorize_run(tmp_path / "old.h5", tmp_path / "ntf_old.h5", **kw)
    factorize_run(tmp_path / "new.h5", tmp_path / "ntf_new.h5", **kw)
    with h5py.File(tmp_path / "ntf_old.h5") as fo, h5py.File(tmp_path / "ntf_new.h5") as fn:
        assert fo.attrs["rank"] == 2
        # old files keep only rows with an observed window: the same entries, the same fit
        assert fo.attrs["relative_error"] == pytest.approx(fn.attrs["relative_error"], rel=1e-6)
        np.testing.assert_allclose(fo["factors/time"][()], fn["factors/time"][()], atol=1e-6)
