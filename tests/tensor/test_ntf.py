"""Masked non-negative CP: recovery of planted factors, determinism, rank selection, alignment."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.errors import InputError
from neurodyn.tensor.align import align_to, factor_match_score
from neurodyn.tensor.ntf import fit_ntf, fit_restarts, fit_tensorly, masked_relative_error
from neurodyn.tensor.params import parse_ranks
from neurodyn.tensor.rank import choose_rank, scan_ranks


def planted(seed=0, shape=(120, 40, 6), rank=3, noise=0.02):
    rng = np.random.default_rng(seed)
    # sparse-ish non-negative factors (well separated components)
    factors = [rng.gamma(2.0, 1.0, (n, rank)) for n in shape]
    factors[0] *= rng.random((shape[0], rank)) < 0.4  # sparse pair patterns, dense time/animal
    x = np.einsum("ir,jr,kr->ijk", *factors)
    x = x * (1.0 + noise * np.clip(rng.standard_normal(x.shape), -3, 3))  # zero-mean, keeps rank
    return x.astype(np.float32), factors


def test_recovers_planted_factors():
    x, true = planted()
    fit = fit_restarts(x, 3, n_restarts=3, seed=0, n_iter_max=500, tol=1e-9)[0]
    score, _ = factor_match_score(true, fit.factors)
    assert score >= 0.95
    assert fit.relative_error < 0.05
    assert np.all(np.diff(fit.weights) <= 0)  # ordered by weight
    assert all(np.all(f >= 0) for f in fit.factors)
    np.testing.assert_allclose([np.linalg.norm(f, axis=0) for f in fit.factors], 1.0, atol=1e-9)


def test_recovers_with_missing_entries_and_ignores_their_values():
    x, true = planted(seed=1)
    rng = np.random.default_rng(5)
    mask = rng.random(x.shape) > 0.3
    mask[:10, :, 2] = False  # whole neuron-pairs missing in one animal
    garbage = x.copy()
    garbage[~mask] = 1e3  # values at missing entries must not matter
    fit = fit_ntf(garbage, 3, mask, seed=2, n_iter_max=150, tol=1e-10)
    assert factor_match_score(true, fit.factors)[0] >= 0.95
    assert fit.relative_error == pytest.approx(
        masked_relative_error(x, mask, fit.weights, fit.factors), rel=1e-6)
    assert fit.relative_error < 0.05


def test_deterministic_for_fixed_seed():
    x, _ = planted(seed=2)
    mask = np.random.default_rng(0).random(x.shape) > 0.1
    a = fit_ntf(x, 3, mask, seed=7, n_iter_max=50)
    b = fit_ntf(x, 3, mask, seed=7, n_iter_max=50)
    c = fit_ntf(x, 3, mask, seed=8, n_iter_max=50)
    for fa, fb in zip(a.factors, b.factors, strict=True):
        np.testing.assert_array_equal(fa, fb)
    assert not np.array_equal(a.factors[0], c.factors[0])


def test_error_decreases_and_matches_tensorly_objective():
    x, _ = planted(seed=3, noise=0.3)
    fit = fit_ntf(x, 4, seed=0, n_iter_max=60, tol=0)
    assert fit.errors[-1] <= fit.errors[0]
    assert np.all(np.diff(fit.errors) <= 1e-3)  # monotone up to float32 GEMM rounding
    direct = np.linalg.norm(x - fit.full()) / np.linalg.norm(x)
    assert fit.relative_error == pytest.approx(direct, rel=1e-6)


def test_tensorly_solver_cross_checks_ours_and_refuses_missing_entries():
    from neurodyn.params import ParamError

    x, true = planted(seed=4)
    ours = fit_ntf(x, 3, seed=5, n_iter_max=300, tol=1e-9)
    theirs = fit_tensorly(x, 3, seed=5, n_iter_max=300, tol=1e-9)  # same random start
    assert factor_match_score(true, theirs.factors)[0] >= 0.95
    assert theirs.relative_error == pytest.approx(ours.relative_error, abs=2e-3)
    assert factor_match_score(ours.factors, theirs.factors)[0] >= 0.99
    assert theirs.relative_error == pytest.approx(
        np.linalg.norm(x - theirs.full()) / np.linalg.norm(x), rel=1e-6)
    with pytest.raises(ParamError, match="missing entries"):
        fit_tensorly(x, 3, np.random.default_rng(0).random(x.shape) > 0.1)


def test_factor_match_score_and_alignment():
    rng = np.random.default_rng(0)
    f = [rng.random((n, 4)) for n in (30, 20, 5)]
    perm = np.array([2, 0, 3, 1])
    g = [x[:, perm] * 3.0 for x in f]
    score, match = factor_match_score(f, g)
    assert score == pytest.approx(1.0)
    np.testing.assert_array_equal(perm[match], np.arange(4))
    aligned, w = align_to(f, g, np.arange(4.0))
    np.testing.assert_allclose(aligned[0], f[0] * 3.0)
    assert factor_match_score(f, [rng.random((n, 4)) for n in (30, 20, 5)])[0] < 0.9
    # weight penalty
    assert factor_match_score(f, f, np.ones(4), 2 * np.ones(4))[0] == pytest.approx(0.5)


def test_rank_scan_picks_planted_rank():
    x, _ = planted(seed=4, shape=(80, 30, 5), rank=3, noise=0.1)
    scan = scan_ranks(x, None, [1, 2, 3, 4, 5], n_restarts=3, seed=0, n_iter_max=300, tol=1e-8)
    assert scan.chosen == 3
    assert scan.stability[2] > 0.9
    assert scan.heldout_error[2] < scan.heldout_error[1]
    sel = scan.selection  # reports itself: scores with standard errors, baseline, no warning
    assert sel.chosen == 3 and sel.unit == "relative error" and not sel.higher_is_better
    assert np.all(sel.se > 0) and sel.se[2] < 0.02 and sel.warnings == []
    assert sel.gain[2] > 0 and sel.baseline > sel.mean[2]
    assert "smallest stable rank" in sel.reason


@pytest.mark.slow  # starting worker processes: ~10 s on a loaded 2-core machine
def test_rank_scan_warns_at_the_edge_and_is_independent_of_jobs():
    x, _ = planted(seed=4, shape=(40, 20, 4), rank=3, noise=0.1)
    kw = dict(n_restarts=2, seed=0, n_iter_max=40)
    a = scan_ranks(x, None, [1, 2], jobs=2, **kw)
    b = scan_ranks(x, None, [1, 2], jobs=1, **kw)
    assert a.chosen == 2 and any("largest candidate" in w for w in a.selection.warnings)
    np.testing.assert_array_equal(a.heldout_error, b.heldout_error)
    np.testing.assert_array_equal(a.fits[2][0].factors[0], b.fits[2][0].factors[0])


def test_rank_scan_bar_counts_every_fit(monkeypatch):
    """The bar's total is every fit run: restarts, plus ``heldout_starts`` per held-out score."""
    import neurodyn.tensor.rank as rank_mod

    seen = {}

    class Bar:
        def __init__(self, total, **kw):
            seen["total"], seen["done"] = total, 0

        def update(self, n):
            seen["done"] += n

        def close(self):
            pass

    monkeypatch.setattr(rank_mod, "bar", Bar)
    x, _ = planted(seed=4, shape=(20, 10, 3), rank=2, noise=0.1)
    scan_ranks(x, None, [1, 2], n_restarts=2, heldout_starts=3, seed=0, n_iter_max=5)
    assert seen == {"total": 2 * 2 + 2 * 3, "done": 2 * 2 + 2 * 3}


def test_choose_rank_rule_and_parsing():
    ranks = np.array([1, 2, 3, 4])
    assert choose_rank(ranks, np.array([0.9, 0.5, 0.495, 0.3]), np.array([1, 1, 1, 0.5])) == 2
    assert choose_rank(ranks, np.array([0.9, 0.5, 0.4, 0.3]), np.array([0.1, 0.1, 0.1, 0.1])) == 4
    assert parse_ranks("2-4,7") == [2, 3, 4, 7]
    with pytest.raises(ValueError, match="ranks must be >= 1"):
        parse_ranks("0-3")
    with pytest.raises(ValueError, match="expected e.g."):
        parse_ranks("a-b")
    with pytest.raises(InputError):
        fit_ntf(-np.ones((3, 3, 3), np.float32), 2)


def test_choose_rank_takes_the_elbow_not_the_minimum():
    from neurodyn.tensor.rank import choose_rank

    ranks = np.arange(1, 6)
    held = np.array([0.659, 0.563, 0.457, 0.451, 0.436])  # curves of the sample run, 3 planted groups
    stab = np.array([1.0, 0.74, 1.0, 0.84, 0.87])
    assert choose_rank(ranks, held, stab) == 3
    assert choose_rank(ranks, held, stab, tolerance=0.0) == 5
    assert choose_rank(ranks, held, np.zeros(5)) == 3  # no stable rank: the same rule on all
