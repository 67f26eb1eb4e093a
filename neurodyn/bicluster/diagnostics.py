"""Convergence diagnostics of scalar traces from several chains, as the field computes them.

Rank-normalised split R-hat and bulk / tail effective sample sizes (Vehtari, Gelman, Simpson,
Carpenter & Buerkner 2021, "Rank-normalization, folding, and localization: an improved R-hat
for assessing convergence of MCMC", Bayesian Analysis 16(2)), with the conventions of ArviZ
(``arviz.rhat(method="rank")``, ``arviz.ess(method="bulk" | "tail")``), against which the tests
check these functions:

* chains are split in halves (the first and the last ``n // 2`` draws), so that a trend within
  a chain shows up as disagreement between its halves;
* rank normalisation: pooled average ranks r of all S draws, z = Phi^-1((r - 3/8) / (S + 1/4));
* R-hat = max(bulk, tail): the classic R-hat of the rank-normalised split chains, and of the
  rank-normalised draws folded about their median, |x - median| (differences in scale);
* ESS: Geyer's initial monotone sequence on the multi-chain autocorrelation; bulk ESS on
  rank-normalised split chains, tail ESS the smaller of the ESS of the indicators
  1[x <= q_0.05] and 1[x <= q_0.95] on split chains.

Discrete traces (the numbers of clusters and states) are handled by the average ranks of ties.
Chains that are each constant at different values give R-hat = inf; a trace constant across
all chains gives nan (nothing to diagnose).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, rankdata

RHAT_LIMIT = 1.05  # rank-normalised split R-hat above this: chains have not mixed (Vehtari et al.)
TAIL_PROBS = (0.05, 0.95)


def split_chains(chains: np.ndarray) -> np.ndarray:
    """(2 m, n // 2): the first and last halves of every chain of a (m, n) array."""
    x = np.atleast_2d(np.asarray(chains, dtype=float))
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def rank_normalize(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled average ranks: Phi^-1((r - 3/8) / (S + 1/4)) (Blom 1958)."""
    r = rankdata(x, method="average").reshape(x.shape)
    return norm.ppf((r - 0.375) / (x.size + 0.25))


def _rhat_classic(x: np.ndarray) -> float:
    """sqrt(((n - 1) / n W + B / n) / W) for (m, n) chains (BDA3, ch. 11)."""
    n = x.shape[1]
    w = x.var(axis=1, ddof=1).mean()
    b = n * x.mean(axis=1).var(ddof=1)
    if w <= 0:
        return float("nan") if b <= 0 else float("inf")
    return float(np.sqrt((b / w + n - 1) / n))


def rhat(chains: np.ndarray) -> float:
    """Rank-normalised split R-hat of a (n_chains, n_draws) array: max(bulk, tail).

    nan with fewer than 2 chains or 4 draws, with non-finite draws, or when every draw is equal.
    """
    x = np.asarray(chains, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 4 or not np.isfinite(x).all():
        return float("nan")
    sx = split_chains(x)
    bulk = _rhat_classic(rank_normalize(sx))
    tail = _rhat_classic(rank_normalize(np.abs(sx - np.median(sx))))
    vals = [v for v in (bulk, tail) if not np.isnan(v)]
    return max(vals) if vals else float("nan")


def _ess(x: np.ndarray) -> float:
    """Effective sample size of (m, n) chains: Geyer's initial monotone sequence."""
    m, n = x.shape
    if x.max() - x.min() < np.finfo(float).resolution:
        return float(x.size)
    xc = x - x.mean(axis=1, keepdims=True)
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(xc, n=nfft, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=nfft, axis=1)[:, :n] / n
    mean_var = acov[:, 0].mean() * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus += x.mean(axis=1).var(ddof=1)
    rho = np.zeros(n)
    rho_even, rho_odd = 1.0, 1.0 - (mean_var - acov[:, 1].mean()) / var_plus
    rho[0], rho[1] = rho_even, rho_odd
    # initial positive sequence: sums of adjacent pairs while they stay positive
    t = 1
    while t < n - 3 and rho_even + rho_odd > 0.0:
        rho_even = 1.0 - (mean_var - acov[:, t + 1].mean()) / var_plus
        rho_odd = 1.0 - (mean_var - acov[:, t + 2].mean()) / var_plus
        if rho_even + rho_odd >= 0:
            rho[t + 1], rho[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    # initial monotone sequence: pair sums may not increase
    t = 1
    while t <= max_t - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = (rho[t - 1] + rho[t]) / 2.0
        t += 2
    tau = -1.0 + 2.0 * rho[: max_t + 1].sum() + rho[max_t + 1: max_t + 2].sum()
    tau = max(tau, 1.0 / np.log10(m * n))
    return float(m * n / tau) if np.isfinite(rho).all() else float("nan")


def _valid(chains: np.ndarray) -> np.ndarray | None:
    x = np.atleast_2d(np.asarray(chains, dtype=float))
    if x.ndim != 2 or x.shape[1] < 4 or not np.isfinite(x).all():
        return None
    return x


def ess_bulk(chains: np.ndarray) -> float:
    """Bulk effective sample size of a (n_chains, n_draws) array (rank-normalised split chains)."""
    x = _valid(chains)
    return float("nan") if x is None else _ess(rank_normalize(split_chains(x)))


def ess_tail(chains: np.ndarray) -> float:
    """Tail effective sample size: the smaller ESS of the 5% and 95% quantile indicators."""
    x = _valid(chains)
    if x is None:
        return float("nan")
    return min(_ess(split_chains((x <= np.quantile(x, p)).astype(float))) for p in TAIL_PROBS)


def ess(chains: np.ndarray) -> float:
    """Effective sample size of the mean (split chains, no rank normalisation)."""
    x = _valid(chains)
    return float("nan") if x is None else _ess(split_chains(x))


def summarize_traces(traces: dict[str, np.ndarray]) -> dict[str, float]:
    """``rhat_<name>``, ``ess_bulk_<name>`` and ``ess_tail_<name>`` of (n_chains, n_draws) traces."""
    out: dict[str, float] = {}
    for name, tr in traces.items():
        out[f"rhat_{name}"] = rhat(tr)
        out[f"ess_bulk_{name}"] = ess_bulk(tr)
        out[f"ess_tail_{name}"] = ess_tail(tr)
    return out


def unconverged(diag: dict, limit: float = RHAT_LIMIT) -> list[str]:
    """Summaries (``rhat_<name>`` entries of ``diag``) whose R-hat exceeds ``limit``, as
    "name R-hat" strings; undefined (nan) R-hats are skipped."""
    return [f"{k[5:]} {v:.2f}" for k, v in diag.items()
            if k.startswith("rhat_") and not np.isnan(v) and v > limit]
