"""Dispersion r_i of the negative binomial: CRT augmentation (Zhou & Carin 2015).

p(y_i | r, psi) ∝ prod_t Gamma(y+r)/Gamma(r) (1 - p_t)^r p_t^y with p_t = sigmoid(psi_t).
With l_t ~ CRT(y_t, r) (number of tables of a Chinese restaurant with y_t customers and
concentration r), the joint is ∝ r^{sum l} prod_t (1 - p_t)^r, so with a Gamma(a, b) prior
r | l, psi ~ Gamma(a + sum_t l_t, b + sum_t log(1 + e^{psi_t})). Both draws are exact Gibbs
steps; the omega of the PG augmentation is redrawn right after (it depends on r).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.special import gammaln


@njit(cache=True)
def crt_counts(y: np.ndarray, r: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Sum over t of CRT(y[i, t], r[i]) draws, per neuron, from uniforms ``u`` (sum(y),)."""
    N, T = y.shape
    out = np.zeros(N)
    pos = 0
    for i in range(N):
        ri = r[i]
        tot = 0.0
        for t in range(T):
            n = int(y[i, t])
            for c in range(n):
                if u[pos] < ri / (ri + c):
                    tot += 1.0
                pos += 1
        out[i] = tot
    return out


@njit(cache=True)
def softplus_rowsum(psi: np.ndarray) -> np.ndarray:
    """sum_t log(1 + exp(psi[i, t])) per row of psi (N, T), overflow-safe, without temporaries."""
    N, T = psi.shape
    out = np.zeros(N)
    for i in range(N):
        acc = 0.0
        for t in range(T):
            v = psi[i, t]
            acc += (v if v > 0 else 0.0) + np.log1p(np.exp(-abs(v)))
        out[i] = acc
    return out


def draw_dispersion(
    y: np.ndarray, r: np.ndarray, psi: np.ndarray, shape: float, rate: float, rng: np.random.Generator
) -> np.ndarray:
    """New r (N,) given counts y (N, T), current r and linear predictor psi (N, T)."""
    u = rng.random(int(y.sum()))
    tables = crt_counts(y, r, u)
    softplus = softplus_rowsum(psi)
    return rng.gamma(shape + tables, 1.0 / (rate + softplus))


def dispersion_mh(
    y: np.ndarray, r: np.ndarray, psi: np.ndarray, shape: float, rate: float, beta: float,
    sd: float, rng: np.random.Generator,
) -> np.ndarray:
    """Random-walk Metropolis step of log r_i, every neuron at once, for the tempered target
    Gamma(r_i; shape, rate) x NB(y_i | r_i, sigmoid(psi_i))^beta (psi held fixed).

    The CRT draw (:func:`draw_dispersion`) is exact only at beta = 1; replicas of
    :mod:`.tempering` at beta < 1 use this. Returns the new r (N,).
    """
    e = sd * rng.standard_normal(r.size)
    prop = r * np.exp(e)
    soft = softplus_rowsum(psi)
    T = y.shape[1]

    def logpost(rr: np.ndarray) -> np.ndarray:
        ll = gammaln(y + rr[:, None]).sum(axis=1) - T * gammaln(rr) - rr * soft
        return beta * ll + (shape - 1.0) * np.log(rr) - rate * rr

    log_a = logpost(prop) - logpost(r) + e  # + e: Jacobian of the log-scale proposal
    acc = np.log(rng.random(r.size)) < log_a
    return np.where(acc, prop, r)
