"""Rank selection for non-negative CP: error, restart stability and held-out entry error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neurodyn.progress import bar
from neurodyn.selection import Selection, edge_warnings, gain_warning
from neurodyn.tensor.align import factor_match_score
from neurodyn.tensor.ntf import (
    CPResult,
    Tensor,
    animal_loadings,
    fit_ntf,
    model_where,
    restart_seeds,
)
from neurodyn.tensor.observed import ObservedTensor
from neurodyn.workers import map_tasks


@dataclass
class RankScan:
    """Curves over candidate ranks (all arrays (n_ranks,)).

    ``error``: best relative error over restarts; ``stability``: mean factor match score
    (cosines only) between the best fit and every other restart; ``heldout_error``: relative
    error on held-out observed entries of a fit that did not see them; ``chosen``: the rank;
    ``fits``: every restart per rank, best first (seeds in ``CPResult.seed``); ``selection``:
    the self-reporting summary (scores with standard errors, reason, warnings).
    """

    ranks: np.ndarray
    error: np.ndarray
    stability: np.ndarray
    heldout_error: np.ndarray
    chosen: int
    fits: dict[int, list[CPResult]]
    selection: Selection | None = None


def stability(fits: Sequence[CPResult]) -> float:
    """Mean factor match score between the best fit (first) and each other restart (1 if one)."""
    if len(fits) < 2:
        return 1.0
    ref = fits[0].factors
    return float(np.mean([factor_match_score(ref, f.factors)[0] for f in fits[1:]]))


def held_windows(observed: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The held-out windows of each animal, (A, W) bool, among its ``observed`` ones (A, W).

    Each observed (animal, window) is held with probability ``fraction`` (drawn with ``seed``),
    except that every animal keeps at least one fitted window and at least one is held out, so
    every pair row keeps fitted entries and the score is defined.
    """
    rng = np.random.default_rng(seed)
    held = observed & (rng.random(observed.shape) < fraction)
    for i in np.flatnonzero(np.all(held == observed, axis=1) & observed.any(axis=1)):
        held[i, rng.choice(np.flatnonzero(held[i]))] = False
    if not held.any() and np.count_nonzero(observed) > 1:
        on = np.argwhere(observed)
        held[tuple(on[rng.integers(len(on))])] = True
    return held


def held_pairs(n_animals: int, n_pairs: int, fraction: float, seed: int) -> np.ndarray:
    """The pairs whose entries each animal holds out (in its held-out windows), (A, P) bool:
    each with probability ``fraction``, drawn animal by animal with ``seed``."""
    rng = np.random.default_rng([seed, 1])
    return np.stack([rng.random(n_pairs) < fraction for _ in range(n_animals)]) \
        if n_animals else np.zeros((0, n_pairs), dtype=bool)


def _error_influence(truth: np.ndarray, pred: np.ndarray, clusters: np.ndarray
                     ) -> tuple[float, np.ndarray]:
    """Relative error ``sqrt(sum (truth - pred)^2 / sum truth^2)`` over held-out entries, and
    each cluster's influence on it (delta method on the ratio of sums), whose spread gives the
    standard error over the sampling of clusters (held-out slabs, whose entries are not
    independent)."""
    _, inv = np.unique(clusters, return_inverse=True)
    inv = inv.ravel()
    e = np.bincount(inv, (np.asarray(truth, np.float64) - pred) ** 2)
    s = np.bincount(inv, np.asarray(truth, np.float64) ** 2)
    den = float(s.sum())
    if den <= 0:
        return 0.0, np.zeros(e.size)
    ratio = float(e.sum()) / den
    err = float(np.sqrt(ratio))
    return err, (e - ratio * s) / (2 * err * den) if err > 0 else np.zeros(e.size)


def _se(influence: np.ndarray) -> float:
    n = influence.size
    return float(np.sqrt(n * np.var(influence, ddof=1))) if n > 1 else 0.0


@dataclass
class HeldOut:
    """Held-out relative error of a fit and of the constant baseline on the same entries, with
    each held-out slab's influence on them (standard errors; paired differences between fits
    scored on the same split, see :meth:`diff_se`)."""

    error: float
    baseline: float
    influence: np.ndarray
    baseline_influence: np.ndarray

    @property
    def se(self) -> float:
        return _se(self.influence)

    @property
    def baseline_se(self) -> float:
        return _se(self.baseline_influence)

    @property
    def gain(self) -> float:
        """Improvement over the baseline (positive: better)."""
        return self.baseline - self.error

    @property
    def gain_se(self) -> float:
        """Standard error of :attr:`gain`, paired slab by slab."""
        return _se(self.baseline_influence - self.influence)

    def diff_se(self, other: HeldOut) -> float:
        """Standard error of ``self.error - other.error``, paired slab by slab (both scored on
        the same held-out split)."""
        return _se(self.influence - other.influence)


def _best_start(x: Tensor, rank: int, mask: np.ndarray | None, seed: int, starts: int,
                kw: dict) -> CPResult:
    seeds = [seed] if starts <= 1 else restart_seeds(seed, starts)
    return min((fit_ntf(x, rank, mask, seed=s, **kw) for s in seeds),
               key=lambda f: f.relative_error)


def heldout_scores(x: Tensor, mask: np.ndarray | None, rank: int, *, fraction: float = 0.1,
                   seed: int = 0, split_seed: int | None = None, starts: int = 1,
                   **kw) -> HeldOut:
    """Held-out relative error of a rank-``rank`` fit, and that of the trivial baseline (every
    held-out entry predicted by the mean of the fitted ones).

    Blocks are held out (bi-cross-validation): each animal hides ``sqrt(fraction)`` of its
    windows (:func:`held_windows`) in ``sqrt(fraction)`` of its pairs (:func:`held_pairs`), both
    drawn with ``split_seed`` (default ``seed``), so about ``fraction`` of the entries. The
    window factor at a held-out window is still fitted on that animal's other pairs, and the
    pair factor on its other windows, so no alignment of time across animals is assumed; every
    animal keeps two window masks, which keeps the fit grouped by animal. Standard errors count
    (animal, window) slabs, not entries. A dense tensor with a mask and the same tensor as an
    :class:`ObservedTensor` hold out the same entries. The fit is initialised with ``seed``;
    with ``starts`` > 1, from that many seeds (:func:`neurodyn.tensor.ntf.restart_seeds` of
    ``seed``), keeping the fit with the lowest error on the fitted entries (the held-out ones
    never choose).
    """
    split_seed = seed if split_seed is None else split_seed
    f = float(np.sqrt(fraction))
    P, W, A = x.shape
    pairs = held_pairs(A, P, f, split_seed)
    if isinstance(x, ObservedTensor):
        animal = x.animal_index()
        observed = np.zeros((A, W), dtype=bool)
        np.logical_or.at(observed, animal, x.mask)
        held = (x.mask & held_windows(observed, f, split_seed)[animal]
                & pairs[animal, x.pair_index][:, None])
        fitted_t = x.with_mask(x.mask & ~held)
        fit = _best_start(fitted_t, rank, None, seed, starts, kw)
        a, b, c = fit.factors
        pred = model_where(held, x.pair_index, animal, a * fit.weights[None, :], b, c)
        truth = x.values[held].astype(np.float64)
        rows, windows = np.nonzero(held)
        clusters = animal[rows] * W + windows
        n_fit = fitted_t.nnz
        mean = float(np.sum(fitted_t.values, dtype=np.float64)) / n_fit if n_fit else 0.0
    else:
        observed = np.ones(x.shape, dtype=bool) if mask is None else np.asarray(mask, bool)
        held = (observed & held_windows(observed.any(axis=0).T, f, split_seed).T[None]
                & pairs.T[:, None, :])
        fitted = observed & ~held
        fit = _best_start(x, rank, fitted, seed, starts, kw)
        a, b, c = fit.factors
        idx = np.nonzero(held)
        pred = np.einsum("r,nr,nr,nr->n", fit.weights, a[idx[0]], b[idx[1]], c[idx[2]])
        truth = np.asarray(x[idx], dtype=np.float64)
        clusters = idx[2] * W + idx[1]
        mean = float(np.mean(x[fitted], dtype=np.float64))
    err, infl = _error_influence(truth, pred, clusters)
    base, base_infl = _error_influence(truth, np.full(truth.shape, mean), clusters)
    return HeldOut(err, base, infl, base_infl)


def rank_heldout(x: Tensor, mask: np.ndarray | None, rank: int, seed: int, **kw) -> HeldOut:
    """:func:`heldout_scores` of ``rank`` as a scan scores it: the split drawn with ``seed +
    1000`` (one for every rank), the fit initialised from ``seed + 1000 + rank``."""
    return heldout_scores(x, mask, rank, seed=seed + 1000 + rank, split_seed=seed + 1000, **kw)


def heldout_error(
    x: Tensor,
    mask: np.ndarray | None,
    rank: int,
    *,
    fraction: float = 0.1,
    seed: int = 0,
    **kw,
) -> float:
    """Relative error on about ``fraction`` of the observed entries, hidden from the fit in
    blocks (:func:`heldout_scores`)."""
    return heldout_scores(x, mask, rank, fraction=fraction, seed=seed, **kw).error


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
    x: Tensor,
    mask: np.ndarray | None,
    ranks: Sequence[int],
    *,
    n_restarts: int = 5,
    seed: int = 0,
    heldout_fraction: float = 0.1,
    heldout_starts: int = 1,
    min_stability: float = 0.8,
    tolerance: float = 0.1,
    jobs: int = 1,
    **kw,
) -> RankScan:
    """Fit every candidate rank with restarts and a held-out split, and choose one.

    ``x`` is a dense tensor with ``mask``, or an :class:`ObservedTensor` (``mask`` None; fitted
    and scored on its observed blocks only).

    Seeds: restarts of rank ``r`` use :func:`neurodyn.tensor.ntf.restart_seeds` of
    ``seed + r``; every rank is scored on one held-out split (:func:`rank_heldout`, so ranks
    are compared slab by slab), by the best of ``heldout_starts`` fits on the fitted entries. The fits run in
    ``jobs`` processes (results do not depend on it); a bar counts them. The result's
    ``selection`` reports every rank's held-out error with its standard error, the choice,
    why, and warnings (edge of the range, no stable rank, no gain over a constant tensor).
    """
    ranks = np.array(sorted(set(int(r) for r in ranks)), dtype=np.int64)
    tasks = [("fit", int(r), s) for r in ranks for s in restart_seeds(seed + int(r), n_restarts)]
    tasks += [("held", int(r), seed) for r in ranks]
    cost = {"fit": 1, "held": heldout_starts}  # fits per task: a held-out score runs several

    def one(task, tick):
        kind, r, s = task
        out = (fit_ntf(x, r, mask, seed=s, **kw) if kind == "fit" else
               rank_heldout(x, mask, r, s, fraction=heldout_fraction, starts=heldout_starts,
                            **kw))
        tick(cost[kind])
        return out

    pbar = bar(sum(cost[t[0]] for t in tasks), desc="factorize ranks", unit="fits")
    try:
        res = map_tasks(one, tasks, jobs=jobs, tick=pbar.update)
    finally:
        pbar.close()
    err, stab = np.zeros(len(ranks)), np.zeros(len(ranks))
    scores: list[HeldOut] = []
    all_fits: dict[int, list[CPResult]] = {}
    for n, r in enumerate(ranks):
        fits = sorted((f for t, f in zip(tasks, res) if t[:2] == ("fit", r)),
                      key=lambda f: f.relative_error)
        all_fits[int(r)] = fits
        err[n] = fits[0].relative_error
        stab[n] = stability(fits)
        scores.append(next(f for t, f in zip(tasks, res) if t[:2] == ("held", r)))
    held = np.array([h.error for h in scores])
    chosen = choose_rank(ranks, held, stab, min_stability=min_stability, tolerance=tolerance)
    sel = rank_selection(ranks, scores, stab, chosen, min_stability, tolerance)
    return RankScan(ranks, err, stab, held, chosen, all_fits, sel)


def scan_subset(n_animals: int, size: int, seed: int) -> np.ndarray | None:
    """The animals (sorted indices) a rank scan runs on: ``size`` of ``n_animals`` drawn with
    ``seed``, or None (all of them) when ``size`` is 0 or not smaller."""
    if not 0 < size < n_animals:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_animals, size, replace=False))


def extend_fit(t: ObservedTensor, fit: CPResult, **kw) -> CPResult:
    """Fit every animal of ``t`` starting from ``fit`` of some of them: its pair and window
    factors, with each animal's loadings solved for them (:func:`animal_loadings`), then
    :func:`fit_ntf` (keywords) to convergence. The result keeps ``fit``'s seed."""
    scale = np.cbrt(fit.weights)[None, :]
    a, b = fit.factors[0] * scale, fit.factors[1] * scale
    c = animal_loadings(t, a, b)
    return fit_ntf(t, fit.rank, init=[a, b, c], seed=fit.seed, **kw)


def rank_selection(ranks: np.ndarray, scores: Sequence[HeldOut], stab: np.ndarray, chosen: int,
                   min_stability: float, tolerance: float) -> Selection:
    """The :class:`Selection` report of a rank scan (see :func:`choose_rank` for the rule);
    ``scores`` are every rank's :class:`HeldOut`, on one split."""
    held = np.array([h.error for h in scores])
    i = int(np.flatnonzero(ranks == chosen)[0])
    stable = stab >= min_stability
    pool = stable if stable.any() else np.ones_like(stable)
    b = int(np.flatnonzero(pool)[np.argmin(held[pool])])
    reason = (f"smallest {'stable ' if stable.any() else ''}rank whose held-out error is within "
              f"{tolerance:g} x the scan's improvement of the lowest one (rank {int(ranks[b])}: "
              f"{held[b]:.4f} ± {scores[b].se:.4f}")
    if b != i:
        reason += (f"; rank {chosen} differs by {held[i] - held[b]:+.4f} ± "
                   f"{scores[i].diff_se(scores[b]):.4f}, paired over held-out slabs")
    reason += f"); restart stability {stab[i]:.2f}"
    sel = Selection("rank", ranks, held, np.array([h.se for h in scores]), "relative error",
                    False, chosen, reason, score_name="held-out entry error",
                    baseline=float(np.mean([h.baseline for h in scores])),
                    baseline_se=float(np.mean([h.baseline_se for h in scores])),
                    baseline_name="constant tensor (mean of fitted entries)",
                    gain=np.array([h.gain for h in scores]),
                    gain_se=np.array([h.gain_se for h in scores]))
    sel.warnings += edge_warnings(sel, "--ranks")
    if not stable.any():
        sel.warnings.append(f"no rank reached restart stability {min_stability:g} (best "
                            f"{stab.max():.2f}): factors differ between restarts")
    w = gain_warning(scores[i].gain, scores[i].gain_se, "relative error", f"rank {chosen}",
                     "a constant tensor")
    if w:
        sel.warnings.append(w)
    return sel
