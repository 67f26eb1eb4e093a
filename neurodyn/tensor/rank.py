"""Rank selection for non-negative CP: error, restart stability and held-out entry error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neurodyn.progress import progress
from neurodyn.tensor.align import factor_match_score
from neurodyn.tensor.ntf import CPResult, fit_ntf, fit_restarts


@dataclass
class RankScan:
    """Curves over candidate ranks (all arrays (n_ranks,)).

    ``error``: best relative error over restarts; ``stability``: mean factor match score
    (cosines only) between the best fit and every other restart; ``heldout_error``: relative
    error on held-out observed entries of a fit that did not see them; ``chosen``: the rank;
    ``fits``: every restart per rank, best first (seeds in ``CPResult.seed``).
    """

    ranks: np.ndarray
    error: np.ndarray
    stability: np.ndarray
    heldout_error: np.ndarray
    chosen: int
    fits: dict[int, list[CPResult]]


def stability(fits: Sequence[CPResult]) -> float:
    """Mean factor match score between the best fit (first) and each other restart (1 if one)."""
    if len(fits) < 2:
        return 1.0
    ref = fits[0].factors
    return float(np.mean([factor_match_score(ref, f.factors)[0] for f in fits[1:]]))


def heldout_error(
    x: np.ndarray,
    mask: np.ndarray | None,
    rank: int,
    *,
    fraction: float = 0.1,
    seed: int = 0,
    **kw,
) -> float:
    """Relative error on a random ``fraction`` of observed entries hidden from the fit.

    The held-out entries are drawn with ``seed``; the fit is initialised with ``seed`` too.
    """
    rng = np.random.default_rng(seed)
    observed = np.ones(x.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    held = observed & (rng.random(x.shape) < fraction)
    fit = fit_ntf(x, rank, observed & ~held, seed=seed, **kw)
    a, b, c = fit.factors
    idx = np.nonzero(held)
    pred = np.einsum("r,nr,nr,nr->n", fit.weights, a[idx[0]], b[idx[1]], c[idx[2]])
    truth = np.asarray(x[idx], dtype=np.float64)
    den = float(np.sum(truth**2))
    return float(np.sqrt(np.sum((truth - pred) ** 2) / den)) if den > 0 else 0.0


def choose_rank(
    ranks: np.ndarray,
    heldout: np.ndarray,
    stab: np.ndarray,
    *,
    min_stability: float = 0.8,
    tolerance: float = 0.1,
) -> int:
    """Pick a rank from the scan curves.

    Among the *stable* ranks (restart stability >= ``min_stability``), take the smallest whose
    held-out error is within ``tolerance`` times the scan's achievable improvement (held-out error
    of the smallest rank minus the lowest) of the lowest held-out error: the elbow, independent
    of the data's noise level. Without any stable rank, the same rule is applied to all ranks.
    """
    stable = stab >= min_stability
    pool = stable if stable.any() else np.ones_like(stable)
    best = float(np.min(heldout[pool]))
    span = max(float(heldout[0]) - best, 0.0)
    pick = pool & (heldout <= best + tolerance * span + 1e-12)
    return int(ranks[np.flatnonzero(pick)[0]])


def scan_ranks(
    x: np.ndarray,
    mask: np.ndarray | None,
    ranks: Sequence[int],
    *,
    n_restarts: int = 5,
    seed: int = 0,
    heldout_fraction: float = 0.1,
    min_stability: float = 0.8,
    tolerance: float = 0.1,
    **kw,
) -> RankScan:
    """Fit every candidate rank with restarts and a held-out split, and choose one.

    Seeds: restarts of rank ``r`` use :func:`neurodyn.tensor.ntf.restart_seeds` of
    ``seed + r``; the held-out split of rank ``r`` uses ``seed + 1000 + r``.
    """
    ranks = np.array(sorted(set(int(r) for r in ranks)), dtype=np.int64)
    err, stab, held = (np.zeros(len(ranks)) for _ in range(3))
    all_fits: dict[int, list[CPResult]] = {}
    for n, r in enumerate(progress(ranks, desc="ranks")):
        fits = fit_restarts(x, int(r), mask, n_restarts=n_restarts, seed=seed + int(r), **kw)
        all_fits[int(r)] = fits
        err[n] = fits[0].relative_error
        stab[n] = stability(fits)
        held[n] = heldout_error(x, mask, int(r), fraction=heldout_fraction, seed=seed + 1000 + int(r), **kw)
    chosen = choose_rank(ranks, held, stab, min_stability=min_stability, tolerance=tolerance)
    return RankScan(ranks, err, stab, held, chosen, all_fits)
