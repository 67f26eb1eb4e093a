"""The observed-entries (row block) form of the tensor: the same fits as the dense masked one."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.affinity import result as affinity_result
from neurodyn.affinity.tensor import AffinityTensor
from neurodyn.errors import InputError
from neurodyn.io.store import atomic_h5
from neurodyn.params import ParamError
from neurodyn.recording import empty_events
from neurodyn.tensor import result
from neurodyn.tensor.align import factor_match_score
from neurodyn.tensor.ntf import (
    RowGroups,
    animal_loadings,
    fit_ntf,
    fit_restarts,
    fit_tensorly,
    masked_relative_error,
)
from neurodyn.tensor.observed import ObservedTensor
from neurodyn.tensor.rank import (
    extend_fit,
    held_pairs,
    held_windows,
    heldout_scores,
    scan_ranks,
    scan_subset,
)
from neurodyn.tensor.stage import run


def collection(seed=0, shape=(60, 20, 7), rank=3):
    """A low-rank tensor observed like a worm collection: each animal has ~40 % of the pairs,
    and some windows of those pairs are missing too."""
    rng = np.random.default_rng(seed)
    P, W, A = shape
    x = np.einsum("ir,jr,kr->ijk", *(rng.gamma(2.0, 1.0, (n, rank)) for n in shape))
    x = (x * (1 + 0.05 * rng.standard_normal(shape))).clip(0).astype(np.float32)
    mask = np.repeat((rng.random((P, A)) < 0.4)[:, None, :], W, axis=1)
    mask &= rng.random(shape) > 0.1
    return x, mask


def test_round_trip_and_rows_only_where_observed():
    x, mask = collection()
    t = ObservedTensor.from_dense(x, mask)
    assert t.shape == x.shape and t.nnz == mask.sum()
    assert t.observed_fraction == pytest.approx(mask.mean())
    assert t.n_rows == mask.any(axis=1).sum()  # one row per (pair, animal) observed at all
    back, m = t.to_dense()
    np.testing.assert_array_equal(m, mask)
    np.testing.assert_array_equal(back, np.where(mask, x, 0))
    assert np.all(t.animal_index()[t.offsets[3]:t.offsets[4]] == 3)
    with pytest.raises(InputError, match="offsets"):
        ObservedTensor(t.shape, t.pair_index, t.offsets[:-1], t.values, t.mask)
    with pytest.raises(InputError, match="pair index"):
        ObservedTensor((5, 20, 7), t.pair_index, t.offsets, t.values, t.mask)


@pytest.mark.parametrize("n_iter", [1, 3, 25])
def test_block_solver_has_the_dense_iterates(n_iter):
    x, mask = collection(seed=1)
    t = ObservedTensor.from_dense(x, mask)
    dense = fit_ntf(x, 3, mask, seed=4, n_iter_max=n_iter, tol=0)
    block = fit_ntf(t, 3, seed=4, n_iter_max=n_iter, tol=0)
    for fd, fb in zip(dense.factors, block.factors, strict=True):
        np.testing.assert_allclose(fb, fd, atol=1e-5)
    np.testing.assert_allclose(block.weights, dense.weights, rtol=1e-5)
    np.testing.assert_allclose(block.errors, dense.errors, rtol=1e-5)
    assert block.relative_error == pytest.approx(dense.relative_error, rel=1e-6)
    assert block.relative_error == pytest.approx(
        masked_relative_error(x, mask, block.weights, block.factors), rel=1e-6)


def test_block_solver_stops_like_the_dense_one_and_ignores_unobserved_values():
    x, mask = collection(seed=2)
    garbage = np.where(mask, x, 1e3).astype(np.float32)
    dense = fit_ntf(x, 3, mask, seed=1, n_iter_max=300, tol=1e-5)
    block = fit_ntf(ObservedTensor.from_dense(garbage, mask), 3, seed=1, n_iter_max=300, tol=1e-5)
    # the dense loss is a difference of large sums, so the stopping sweep may differ slightly
    assert abs(block.n_iter - dense.n_iter) <= 3 and dense.n_iter < 300
    np.testing.assert_allclose(block.factors[1], dense.factors[1], atol=2e-3)
    clean = fit_ntf(ObservedTensor.from_dense(x, mask), 3, seed=1, n_iter_max=300, tol=1e-5)
    np.testing.assert_array_equal(clean.factors[0], block.factors[0])


def test_restarts_heldout_and_scan_accept_blocks():
    x, mask = collection(seed=3)
    t = ObservedTensor.from_dense(x, mask)
    kw = dict(n_iter_max=40, tol=1e-7)
    fits = fit_restarts(t, 3, n_restarts=2, seed=0, **kw)
    dense = fit_restarts(x, 3, mask, n_restarts=2, seed=0, **kw)
    assert [f.seed for f in fits] == [f.seed for f in dense]
    assert fits[0].relative_error == pytest.approx(dense[0].relative_error, rel=1e-5)
    h = heldout_scores(t, None, 3, fraction=0.2, seed=5, **kw)
    assert 0 < h.error < 0.3 < h.baseline and h.se > 0 and h.baseline_se > 0
    assert h.gain_se > 0
    assert heldout_scores(t, None, 3, fraction=0.2, seed=5, **kw).error == h.error
    # the dense tensor with its mask holds out the same entries: the same baseline
    dense_h = heldout_scores(x, mask, 3, fraction=0.2, seed=5, **kw)
    assert dense_h.baseline == pytest.approx(h.baseline, rel=1e-6)
    assert dense_h.error == pytest.approx(h.error, rel=1e-3)
    scan = scan_ranks(t, None, [1, 3], n_restarts=2, seed=0, **kw)
    assert scan.heldout_error[1] < scan.heldout_error[0]


def test_block_input_refusals():
    x, mask = collection()
    t = ObservedTensor.from_dense(x, mask)
    with pytest.raises(InputError, match="own mask"):
        fit_ntf(t, 2, mask)
    with pytest.raises(ParamError, match="cannot skip missing"):
        fit_tensorly(t, 2)
    full = ObservedTensor.from_dense(x)
    assert fit_tensorly(full, 2, n_iter_max=5).rank == 2  # complete blocks densify for tensorly
    neg = ObservedTensor.from_dense(-x, mask)
    with pytest.raises(InputError, match="non-negative"):
        fit_ntf(neg, 2)


def masked_gradients(x, mask, factors):
    """Gradients of 0.5 * ||M o (X - [[a, b, c]])||^2 with respect to each factor, computed
    densely (the reference the block solver is checked against)."""
    a, b, c = factors
    res = np.where(mask, np.einsum("ir,jr,kr->ijk", a, b, c) - x, 0.0)
    return [np.einsum("ijk,jr,kr->ir", res, b, c), np.einsum("ijk,ir,kr->jr", res, a, c),
            np.einsum("ijk,ir,jr->kr", res, a, b)]


def test_exact_masked_hals_descends_to_a_stationary_point_of_the_masked_loss():
    x, mask = collection(seed=4)
    mask &= np.random.default_rng(1).random(x.shape) < 0.5  # and many more entries missing
    fit = fit_ntf(x, 3, mask, seed=2, n_iter_max=400, tol=1e-12)
    # every sweep lowers the (ridge-penalised) masked loss; float32 products round at ~1e-6
    assert np.all(np.diff(fit.errors) <= 1e-5)
    assert fit.errors[-1] == pytest.approx(fit.relative_error, rel=1e-4)
    factors = [f * np.cbrt(fit.weights)[None, :] for f in fit.factors]
    scale = np.sum((mask * x) ** 2) ** 0.5
    for f, g in zip(factors, masked_gradients(x.astype(np.float64), mask, factors), strict=True):
        free = f > 1e-6 * f.max()
        # KKT: zero gradient where a factor is free, non-negative where it sits at its floor
        assert np.abs(g[free]).max() < 2e-3 * scale
        assert g[~free].min(initial=0.0) > -2e-3 * scale


def exact_low_rank(seed, shape, rank, pairs_observed):
    """A noise-free rank-``rank`` tensor, each animal observing a fraction of the pairs (all
    their windows): the planted factors and the tensor's observed blocks."""
    rng = np.random.default_rng(seed)
    true = [rng.gamma(2.0, 1.0, (n, rank)) for n in shape]
    x = np.einsum("ir,jr,kr->ijk", *true).astype(np.float32)
    seen = rng.random((shape[0], shape[2])) < pairs_observed
    return true, ObservedTensor.from_dense(x, np.repeat(seen[:, None, :], shape[1], axis=1))


def test_mostly_missing_tensor_is_recovered_in_few_sweeps():
    rank = 3
    true, t = exact_low_rank(0, (300, 30, 40), rank, 0.08)
    fit = fit_ntf(t, rank, seed=0, n_iter_max=60, tol=0)
    # 8 % of the pairs per animal: EM imputation was still far off after 200 sweeps here
    assert fit.relative_error < 0.01
    assert factor_match_score(true, fit.factors)[0] > 0.95


def test_animal_loadings_and_extending_a_subset_fit_to_every_animal():
    shape, rank = (80, 25, 30), 3
    true, t = exact_low_rank(2, shape, rank, 0.3)
    # given the true pair and window factors, the loadings are the true ones
    np.testing.assert_allclose(animal_loadings(t, true[0], true[1]), true[2], rtol=1e-4)
    sub = scan_subset(shape[2], 10, seed=0)
    assert len(sub) == 10 and np.all(np.diff(sub) > 0) and scan_subset(30, 0, 0) is None
    part = fit_ntf(t.animals_subset(sub), rank, seed=3, n_iter_max=100, tol=0)
    full = extend_fit(t, part, n_iter_max=30, tol=0)
    assert full.seed == part.seed and full.factors[2].shape == (shape[2], rank)
    scratch = fit_ntf(t, rank, seed=3, n_iter_max=30, tol=0)
    assert full.relative_error < 0.01 and full.relative_error <= scratch.relative_error + 1e-4


def test_factorize_scans_ranks_on_a_subset_of_animals(tmp_path):
    x, mask = collection(seed=5, shape=(45, 20, 12))
    n = 10  # 45 pairs of 10 neurons
    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)], dtype=np.int64)

    t = AffinityTensor(observed=ObservedTensor.from_dense(x, mask), pairs=pairs,
                       labels=[f"N{i}" for i in range(n)],
                       windows=np.stack([np.arange(20.0), np.arange(20.0) + 1], axis=1),
                       animals=[f"w{k}" for k in range(12)], present=np.ones((12, n), bool),
                       events=empty_events(), fs=1.0)
    with atomic_h5(tmp_path / "aff.h5", stage=affinity_result.STAGE) as f:
        affinity_result.write(f, t, "differential")
    run(tmp_path / "aff.h5", tmp_path / "ntf.h5", rank="auto", ranks="1-4", restarts=2,
        scan_animals=6, seed=1)
    res = result.read(tmp_path / "ntf.h5")
    scanned = res.rank_selection["scan_animals"]
    assert len(scanned) == 6 and res.factors["animal"].shape == (12, res.rank)
    assert res.rank == 3 and res.relative_error < 0.1
    assert "6 of 12 animals" in res.model_selection["@reason"]
    run(tmp_path / "aff.h5", tmp_path / "all.h5", rank="auto", ranks="1-4", restarts=2,
        scan_animals=0, seed=1)
    assert "scan_animals" not in result.read(tmp_path / "all.h5").rank_selection


def test_held_out_windows_leave_every_animal_estimable():
    rng = np.random.default_rng(0)
    observed = rng.random((40, 30)) < 0.5
    observed[0] = False
    observed[1, :] = False
    observed[1, 3] = True  # an animal with one window keeps it
    for seed in range(20):
        held = held_windows(observed, 0.5, seed)
        assert not np.any(held & ~observed) and held.any()
        fitted = observed & ~held
        assert np.all(fitted.any(axis=1) == observed.any(axis=1))
    frac = held_windows(observed, 0.1, 1).sum() / observed.sum()
    assert 0.05 < frac < 0.15


def test_held_out_blocks_keep_two_groups_per_animal():
    """Held-out blocks give an animal's rows two window masks (entry-wise hold-out gave every
    row its own, and a 36x slower fit at 100 worms)."""
    x, mask = collection(seed=2)
    mask[:] = mask[:, :1, :]  # every window of an observed row
    t = ObservedTensor.from_dense(x, mask)
    animal = t.animal_index()
    observed = np.zeros((t.shape[2], t.shape[1]), bool)
    np.logical_or.at(observed, animal, t.mask)
    held = (t.mask & held_windows(observed, 0.5, 3)[animal]
            & held_pairs(t.shape[2], t.shape[0], 0.5, 3)[animal, t.pair_index][:, None])
    assert 0.15 < held.sum() / t.mask.sum() < 0.35
    assert len(RowGroups.of(t.with_mask(t.mask & ~held)).animal) == 2 * t.shape[2]


def test_ranks_scored_on_one_split_are_compared_slab_by_slab():
    x, mask = collection(seed=4)
    t = ObservedTensor.from_dense(x, mask)
    kw = dict(fraction=0.2, split_seed=7, n_iter_max=60, tol=1e-7)
    h3, other = (heldout_scores(t, None, 3, seed=s, **kw) for s in (3, 11))
    h4 = heldout_scores(t, None, 4, seed=4, **kw)
    assert h3.baseline == h4.baseline == other.baseline  # the same held-out entries
    assert h3.influence.shape == h4.influence.shape
    # two good fits err on the same slabs: the paired difference is more certain than unpaired
    assert 0 < other.diff_se(h3) < 0.6 * np.hypot(h3.se, other.se)
    best = heldout_scores(t, None, 3, seed=3, starts=3, **kw)  # best start by fitted error
    assert best.error <= 0.1 and best.error == pytest.approx(h3.error, abs=0.02)
