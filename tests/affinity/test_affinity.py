"""Affinity kernels against slow references; windows, masks and tensor assembly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurodyn.affinity.kernels import KINDS, windowed_affinity
from neurodyn.affinity.reference import affinity_loop, affinity_vectorised
from neurodyn.affinity.signals import prepare
from neurodyn.affinity.tensor import build_affinity_tensor, pairs_to_matrix, upper_pairs
from neurodyn.affinity.windows import make_windows, window_samples
from neurodyn.recording import Recording


def _case(seed: int, N: int = 11, T: int = 203):
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((N, T)) * rng.uniform(0.5, 3, size=(N, 1))
    obs = rng.random((N, T)) > 0.25
    obs[2] = False  # a neuron absent from this animal
    obs[5, :40] = False  # a gap at the start
    # windows with edges at 0 and T, overlaps, a one-sample window and empty ones past the end
    start = np.array([0, 0, 17, 50, 100, 180, 202, 203, 150], dtype=np.int64)
    stop = np.array([1, 25, 60, 110, 203, 203, 203, 203, 190], dtype=np.int64)
    return s, obs, start, stop


@pytest.mark.parametrize("kind", sorted(KINDS.values()))
@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_matches_loop_reference(kind, seed):
    s, obs, start, stop = _case(seed)
    pairs = upper_pairs(s.shape[0])
    min_count = np.maximum(np.ceil(0.5 * (stop - start)), 3 if kind == 1 else 1).astype(np.int64)
    # write into a strided slice of a 3-D array as the tensor assembly does
    out = np.full((len(pairs), len(start), 2), -1, dtype=np.float32)
    ok = np.zeros(out.shape, dtype=bool)
    windowed_affinity(s, obs, pairs[:, 0].copy(), pairs[:, 1].copy(), start, stop, min_count,
                      kind, 1.7, out[:, :, 1], ok[:, :, 1])
    ref, ref_ok = affinity_loop(s, obs, pairs[:, 0], pairs[:, 1], start, stop, min_count, kind, 1.7)
    np.testing.assert_array_equal(ok[:, :, 1], ref_ok)
    assert np.max(np.abs(out[:, :, 1] - ref)) < 1e-5
    assert np.all(out[:, :, 0] == -1)  # untouched neighbouring slice
    assert ref_ok.any() and (~ref_ok).any()  # the case exercises both
    # pairs involving the absent neuron are masked in every window
    assert not ok[(pairs == 2).any(axis=1), :, 1].any()
    vec, vec_ok = affinity_vectorised(s, obs, pairs[:, 0], pairs[:, 1], start, stop, min_count, kind, 1.7, block=7)
    np.testing.assert_array_equal(vec_ok, ref_ok)
    assert np.max(np.abs(vec - ref)) < 1e-6


def test_differential_kernel_properties():
    t = np.arange(400) / 4.0
    base = np.sin(t / 3.0)
    x = np.stack([base, 1.1 * base, -base, np.zeros_like(base) + 0.01 * np.cos(50 * t)], 1)
    obs = np.ones_like(x, dtype=bool)
    d = prepare(x, obs, 4.0, "differential", 0.5)
    pairs = np.array([[0, 1], [0, 2], [1, 0]])
    start, stop = np.array([0]), np.array([400])
    out = np.zeros((3, 1), np.float32)
    ok = np.zeros((3, 1), bool)
    windowed_affinity(d, obs.T.copy(), pairs[:, 0].copy(), pairs[:, 1].copy(), start, stop,
                      np.array([1]), 0, 2.0, out, ok)
    assert out[0, 0] > 0.3  # same direction, similar rate
    assert out[1, 0] == 0.0  # opposite directions
    assert out[0, 0] == out[2, 0]  # symmetric


def test_windows_and_samples():
    w = make_windows(0.0, 1200.0, 8.0, 4.0)
    assert 250 <= len(w) <= 350  # a few hundred windows for 20 minutes
    np.testing.assert_allclose(w[:, 1] - w[:, 0], 8.0)
    assert w[-1, 1] <= 1200.0
    times = np.arange(40) / 4.0  # 10 s at 4 Hz
    start, stop = window_samples(times, np.array([[0.0, 2.0], [9.0, 12.0], [20.0, 28.0]]))
    np.testing.assert_array_equal(start, [0, 36, 40])
    np.testing.assert_array_equal(stop, [8, 40, 40])
    assert make_windows(0.0, 5.0, 8.0, 4.0).tolist() == [[0.0, 5.0]]
    with pytest.raises(ValueError, match="width must be positive"):
        make_windows(0.0, 5.0, 0.0, 1.0)


def _rec(name, labels, x, labelled=None, fs=4.0):
    info = None if labelled is None else pd.DataFrame({"is_labeled": labelled})
    return Recording(traces=x, labels=labels, modality="calcium", fs=fs, id=name, channel_info=info)


def test_tensor_alignment_masks_absent_neurons():
    rng = np.random.default_rng(3)
    a = _rec("a", ["AVAL", "AVAR", "RIML", "roi7"], rng.standard_normal((200, 4)), [True, True, True, False])
    b = _rec("b", ["AVAR", "AVAL", "SMDV"], rng.standard_normal((160, 3)))
    t = build_affinity_tensor([a, b], window_s=10.0, step_s=5.0)
    assert t.labels == ["AVAL", "AVAR", "RIML", "SMDV"]  # union, unlabelled roi dropped
    P, W, A = t.affinity.shape
    assert (P, A) == (6, 2) and t.mask.shape == t.affinity.shape
    k = {tuple(p): n for n, p in enumerate(t.pairs.tolist())}
    assert not t.mask[k[(0, 3)], :, 0].any()  # SMDV absent in a
    assert not t.mask[k[(0, 2)], :, 1].any()  # RIML absent in b
    assert t.mask[k[(0, 1)], :, 0].all()
    assert not t.mask[k[(0, 1)], -1, 1]  # b is shorter: its last windows are masked
    assert np.all(t.affinity[~t.mask] == 0) and np.all(t.affinity >= 0)
    # same neurons in another column order give the same affinities (alignment by name)
    b2 = b.select(["AVAL", "SMDV", "AVAR"])
    t2 = build_affinity_tensor([a, b2], window_s=10.0, step_s=5.0)
    np.testing.assert_allclose(t2.affinity, t.affinity, atol=1e-6)
    ti = build_affinity_tensor([a, b], window_s=10.0, step_s=5.0, align="intersection")
    assert ti.labels == ["AVAL", "AVAR"]
    tk = build_affinity_tensor([a, b], window_s=10.0, step_s=5.0, keep_unlabelled=True)
    assert "a:roi7" in tk.labels
    with pytest.raises(ValueError, match="unknown kernel"):
        build_affinity_tensor([a, b], kernel="nope")


def test_resampling_to_common_rate():
    rng = np.random.default_rng(4)
    a = _rec("a", ["A", "B", "C"], rng.standard_normal((400, 3)), fs=4.0)
    b = _rec("b", ["A", "B", "C"], rng.standard_normal((200, 3)), fs=2.0)
    t = build_affinity_tensor([a, b], window_s=10.0, step_s=5.0)
    assert t.fs == 2.0
    assert t.mask[:, :, 0].mean() > 0.9 and t.mask[:, :, 1].mean() > 0.9


def test_pairs_to_matrix():
    pairs = upper_pairs(4)
    m = pairs_to_matrix(np.arange(1, 7, dtype=float), pairs, 4)
    assert np.allclose(m, m.T) and np.all(np.diag(m) == 0) and m[0, 1] == 1 and m[2, 3] == 6
