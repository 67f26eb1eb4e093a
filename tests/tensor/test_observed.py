"""The observed-entries (row block) form of the tensor: the same fits as the dense masked one."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.errors import InputError
from neurodyn.params import ParamError
from neurodyn.tensor.ntf import fit_ntf, fit_restarts, fit_tensorly, masked_relative_error
from neurodyn.tensor.observed import ObservedTensor
from neurodyn.tensor.rank import heldout_scores, scan_ranks


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
    err, se, base, base_se = heldout_scores(t, None, 3, fraction=0.2, seed=5, **kw)
    assert 0 < err < 0.3 < base and se > 0 and base_se > 0
    assert heldout_scores(t, None, 3, fraction=0.2, seed=5, **kw)[0] == err  # deterministic
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
