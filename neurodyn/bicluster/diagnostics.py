"""Convergence diagnostics for scalar traces of several chains: split R-hat and effective
sample size (Gelman et al., Bayesian Data Analysis 3rd ed., ch. 11; Geyer's initial positive
sequence for the autocorrelation sum)."""

from __future__ import annotations

import numpy as np


def _split(chains: np.ndarray) -> np.ndarray:
    n = chains.shape[1] // 2
    return np.concatenate([chains[:, :n], chains[:, n: 2 * n]], axis=0)


def rhat(chains: np.ndarray) -> float:
    """Split R-hat of a (n_chains, n_draws) array; nan when undefined (too short / constant)."""
    x = _split(np.asarray(chains, dtype=float))
    m, n = x.shape
    if n < 2:
        return float("nan")
    means = x.mean(axis=1)
    w = x.var(axis=1, ddof=1).mean()
    b = n * means.var(ddof=1)
    if w <= 0:
        return 1.0 if b <= 0 else float("inf")
    var = (n - 1) / n * w + b / n
    return float(np.sqrt(var / w))


def ess(chains: np.ndarray) -> float:
    """Effective sample size of a (n_chains, n_draws) array (multi-chain autocorrelation)."""
    x = np.asarray(chains, dtype=float)
    m, n = x.shape
    if n < 4:
        return float(m * n)
    xc = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(xc, n=2 * n, axis=1)
    acov = np.fft.irfft(f * np.conj(f), axis=1)[:, :n] / n
    w = (acov[:, 0] * n / (n - 1)).mean()
    var = (n - 1) / n * w + (x.mean(axis=1).var(ddof=1) if m > 1 else 0.0)
    if var <= 0:
        return float(m * n)
    rho = 1.0 - (w - acov.mean(axis=0)) / var
    rho[0] = 1.0
    tau, t = -1.0, 0
    while t + 1 < n:
        pair = rho[t] + rho[t + 1]
        if pair < 0:
            break
        tau += 2 * pair
        t += 2
    return float(m * n / max(tau, 1e-12))


RHAT_LIMIT = 1.1  # split R-hat above this: the chains have not mixed (Gelman et al., BDA3)


def unconverged(diag: dict, limit: float = RHAT_LIMIT) -> list[str]:
    """Summaries (``rhat_<name>`` entries of ``diag``) whose R-hat exceeds ``limit``, as
    "name R-hat" strings; undefined (nan) R-hats are skipped."""
    return [f"{k[5:]} {v:.2f}" for k, v in diag.items()
            if k.startswith("rhat_") and np.isfinite(v) and v > limit]

