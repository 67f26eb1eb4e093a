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


def _held_split(x: np.ndarray, mask: np.ndarray | None, fraction: float, seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Observed entries kept for fitting, and the held-out ones (drawn with ``seed``)."""
    rng = np.random.default_rng(seed)
    observed = np.ones(x.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    held = observed & (rng.random(x.shape) < fraction)
    return observed & ~held, held


def _held_split_observed(t: ObservedTensor, fraction: float, seed: int
                         ) -> tuple[ObservedTensor, np.ndarray]:
    """Observed blocks without the held-out entries, and the held-out (E, W) mask: each
    observed entry held out with probability ``fraction`` (drawn with ``seed``, row block by
    row block, so no (E, W) float64 draw is ever held)."""
    rng = np.random.default_rng(seed)
    held = np.zeros(t.mask.shape, dtype=bool)
    step = max(1, (1 << 20) // max(1, t.shape[1]))
    for lo in range(0, t.n_rows, step):
        m = t.mask[lo:lo + step]
        held[lo:lo + step] = m & (rng.random(m.shape) < fraction)
    return t.with_mask(t.mask & ~held), held


def relative_error_se(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """``sqrt(sum (truth - pred)^2 / sum truth^2)`` over held-out entries, and its standard
    error over the sampling of those entries (delta method on the ratio of sums; entries
    treated as independent)."""
    e = (np.asarray(truth, np.float64) - pred) ** 2
    s = np.asarray(truth, np.float64) ** 2
    den = float(s.sum())
    if den <= 0 or e.size < 2:
        return 0.0, 0.0
    ratio = float(e.sum()) / den
    var = e.size * np.var(e - ratio * s, ddof=1) / den ** 2
    err = float(np.sqrt(ratio))
    return err, float(np.sqrt(var) / (2 * err)) if err > 0 else 0.0


def heldout_scores(x: Tensor, mask: np.ndarray | None, rank: int, *, fraction: float = 0.1,
                   seed: int = 0, **kw) -> tuple[float, float, float, float]:
    """Held-out relative error of a rank-``rank`` fit and its standard error, and the same
    of the trivial baseline (every held-out entry predicted by the mean of the fitted ones).

    The held-out entries are drawn with ``seed`` among the observed ones (for an
    :class:`ObservedTensor`, among its blocks' entries: a different draw from the dense
    tensor's); the fit is initialised with ``seed`` too.
    """
    if isinstance(x, ObservedTensor):
        fitted_t, held = _held_split_observed(x, fraction, seed)
        fit = fit_ntf(fitted_t, rank, seed=seed, **kw)
        a, b, c = fit.factors
        pred = model_where(held, x.pair_index, x.animal_index(), a * fit.weights[None, :], b, c)
        truth = x.values[held].astype(np.float64)
        n_fit = fitted_t.nnz
        mean = float(np.sum(fitted_t.values, dtype=np.float64)) / n_fit if n_fit else 0.0
        err, se = relative_error_se(truth, pred)
        base, base_se = relative_error_se(truth, np.full(truth.shape, mean))
        return err, se, base, base_se
    fitted, held = _held_split(x, mask, fraction, seed)
    fit = fit_ntf(x, rank, fitted, seed=seed, **kw)
    a, b, c = fit.factors
    idx = np.nonzero(held)
    pred = np.einsum("r,nr,nr,nr->n", fit.weights, a[idx[0]], b[idx[1]], c[idx[2]])
    truth = np.asarray(x[idx], dtype=np.float64)
    err, se = relative_error_se(truth, pred)
    base, base_se = relative_error_se(truth, np.full(truth.shape, float(np.mean(x[fitted]))))
    return err, se, base, base_se


def heldout_error(
    x: Tensor,
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
    return heldout_scores(x, mask, rank, fraction=fraction, seed=seed, **kw)[0]


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
    min_stability: float = 0.8,
    tolerance: float = 0.1,
    jobs: int = 1,
    **kw,
) -> RankScan:
    """Fit every candidate rank with restarts and a held-out split, and choose one.

    ``x`` is a dense tensor with ``mask``, or an :class:`ObservedTensor` (``mask`` None; fitted
    and scored on its observed blocks only).

    Seeds: restarts of rank ``r`` use :func:`neurodyn.tensor.ntf.restart_seeds` of
    ``seed + r``; the held-out split of rank ``r`` uses ``seed + 1000 + r``. The fits run in
    ``jobs`` processes (results do not depend on it); a bar counts them. The result's
    ``selection`` reports every rank's held-out error with its standard error, the choice,
    why, and warnings (edge of the range, no stable rank, no gain over a constant tensor).
    """
    ranks = np.array(sorted(set(int(r) for r in ranks)), dtype=np.int64)
    tasks = [("fit", int(r), s) for r in ranks for s in restart_seeds(seed + int(r), n_restarts)]
    tasks += [("held", int(r), seed + 1000 + int(r)) for r in ranks]

    def one(task, tick):
        kind, r, s = task
        out = (fit_ntf(x, r, mask, seed=s, **kw) if kind == "fit" else
               heldout_scores(x, mask, r, fraction=heldout_fraction, seed=s, **kw))
        tick(1)
        return out

    pbar = bar(len(tasks), desc="factorize ranks", unit="fits")
    try:
        res = map_tasks(one, tasks, jobs=jobs, tick=pbar.update)
    finally:
        pbar.close()
    err, stab, held, held_se, base, base_se = (np.zeros(len(ranks)) for _ in range(6))
    all_fits: dict[int, list[CPResult]] = {}
    for n, r in enumerate(ranks):
        fits = sorted((f for t, f in zip(tasks, res) if t[:2] == ("fit", r)),
                      key=lambda f: f.relative_error)
        all_fits[int(r)] = fits
        err[n] = fits[0].relative_error
        stab[n] = stability(fits)
        held[n], held_se[n], base[n], base_se[n] = next(
            f for t, f in zip(tasks, res) if t[:2] == ("held", r))
    chosen = choose_rank(ranks, held, stab, min_stability=min_stability, tolerance=tolerance)
    sel = rank_selection(ranks, held, held_se, stab, base, base_se, chosen, min_stability,
                         tolerance)
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


def rank_selection(ranks: np.ndarray, held: np.ndarray, held_se: np.ndarray, stab: np.ndarray,
                   base: np.ndarray, base_se: np.ndarray, chosen: int, min_stability: float,
                   tolerance: float) -> Selection:
    """The :class:`Selection` report of a rank scan (see :func:`choose_rank` for the rule)."""
    i = int(np.flatnonzero(ranks == chosen)[0])
    stable = stab >= min_stability
    pool = stable if stable.any() else np.ones_like(stable)
    b = int(np.flatnonzero(pool)[np.argmin(held[pool])])
    reason = (f"smallest {'stable ' if stable.any() else ''}rank whose held-out error is within "
              f"{tolerance:g} x the scan's improvement of the lowest one (rank {int(ranks[b])}: "
              f"{held[b]:.4f} ± {held_se[b]:.4f}); restart stability {stab[i]:.2f}")
    sel = Selection("rank", ranks, held, held_se, "relative error", False, chosen, reason,
                    score_name="held-out entry error", baseline=float(np.mean(base)),
                    baseline_se=float(np.mean(base_se)),
                    baseline_name="constant tensor (mean of fitted entries)",
                    gain=base - held, gain_se=held_se)
    sel.warnings += edge_warnings(sel, "--ranks")
    if not stable.any():
        sel.warnings.append(f"no rank reached restart stability {min_stability:g} (best "
                            f"{stab.max():.2f}): factors differ between restarts")
    w = gain_warning(float(base[i] - held[i]), float(held_se[i]), "relative error",
                     f"rank {chosen}", "a constant tensor")
    if w:
        sel.warnings.append(w)
    return sel
