"""Neuron clusters: MFM / DP partition prior, collapsed Gibbs with an auxiliary empty cluster,
and sequentially-allocated split-merge moves.

Everything here conditions on the Polya-Gamma variables omega, under which neuron i's
likelihood is Gaussian in psi_i. The neuron's own coefficients theta_i = (d_i, c_i) have a
Gaussian prior, so they are integrated out in closed form: ``m(i | X)`` is the marginal
likelihood of neuron i's (augmented) data given a cluster trajectory X (T, q). Label moves
therefore act on the joint (z_i, theta_i), drawing theta_i afresh from its conditional after
each move, which keeps the kernel exact while letting neurons change clusters even though
each cluster's latent axes are only defined up to rotation.

Gibbs (Neal 2000, algorithm 8 with one auxiliary cluster; Miller & Harrison 2018 for MFM):
p(z_i = k) ∝ (n_-i,k + gamma) m(i | X_k) for occupied k, and
p(new) ∝ gamma V_N(t + 1) / V_N(t) m(i | X_aux) where the auxiliary cluster is the neuron's own
cluster when it is a singleton, or a fresh draw (dynamics from the MNIW prior, trajectory from
the switching-dynamics prior) otherwise. DP option: n_-i,k and dp_alpha instead.

Split-merge moves live in :meth:`neurodyn.bicluster.sampler.Model.split_merge` (trajectory-
collapsed: Kalman normalisers of the clusters involved, theta fixed).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.special import gammaln, logsumexp

from neurodyn.bicluster.linalg import chol, logdet_chol, tri_inv


def log_v_mfm(n: int, gamma: float, geom_p: float, tmax: int) -> np.ndarray:
    """log V_n(t), t = 0..tmax, for the MFM with K ~ Geometric(geom_p) on {1, 2, ...}.

    V_n(t) = sum_{k >= t} k! / (k - t)! * Gamma(gamma k) / Gamma(gamma k + n) * p(k).
    """
    kmax = tmax + n + 1000
    k = np.arange(1, kmax + 1, dtype=float)
    logpk = np.log(geom_p) + (k - 1) * np.log1p(-geom_p)
    base = gammaln(gamma * k) - gammaln(gamma * k + n) + logpk
    out = np.full(tmax + 1, -np.inf)
    for t in range(tmax + 1):
        ok = k >= t
        terms = gammaln(k[ok] + 1) - gammaln(k[ok] - t + 1) + base[ok]
        out[t] = logsumexp(terms)
    return out


class PartitionPrior:
    """Exchangeable partition prior (MFM or DP) on neuron labels."""

    def __init__(self, n: int, kind: str, mfm_gamma: float, geom_p: float, dp_alpha: float) -> None:
        self.kind, self.gamma, self.alpha = kind, mfm_gamma, dp_alpha
        self.logv = log_v_mfm(n, mfm_gamma, geom_p, n + 2) if kind == "mfm" else None

    def existing(self, n_minus: np.ndarray) -> np.ndarray:
        """Log weight of joining occupied clusters with ``n_minus`` other members."""
        return np.log(n_minus + self.gamma) if self.kind == "mfm" else np.log(n_minus)

    def new(self, t: int) -> float:
        """Log weight of opening a new cluster when t others are occupied."""
        if self.kind == "mfm":
            return float(np.log(self.gamma) + self.logv[t + 1] - self.logv[t])
        return float(np.log(self.alpha))

    def log_prob(self, sizes: np.ndarray) -> float:
        """log p(partition) up to a constant of n, given cluster sizes."""
        t = sizes.size
        if self.kind == "mfm":
            return float(self.logv[t] + np.sum(gammaln(sizes + self.gamma) - gammaln(self.gamma)))
        return float(t * np.log(self.alpha) + np.sum(gammaln(sizes)))


@njit(cache=True, error_model="numpy")
def _stats(kap: np.ndarray, om: np.ndarray, base: float, x: np.ndarray, m0: np.ndarray,
           prec: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    T, q = x.shape
    G = np.zeros((q, q))
    hv = np.zeros(q)
    const = 0.0
    g = np.empty(q)
    for j in range(q):
        G[j, j] = prec[j]
        hv[j] = prec[j] * m0[j]
        const -= 0.5 * prec[j] * m0[j] * m0[j] - 0.5 * np.log(prec[j])
    g[0] = 1.0
    for t in range(T):
        a = base + x[t, 0]
        w = om[t]
        kk = kap[t]
        const += kk * a - 0.5 * w * a * a
        coef = kk - w * a
        for j in range(1, q):
            g[j] = x[t, j]
        for j in range(q):
            hv[j] += coef * g[j]
            wg = w * g[j]
            for l in range(j + 1):
                G[j, l] += wg * g[l]
    for j in range(q):
        for l in range(j + 1, q):
            G[j, l] = G[l, j]
    return G, hv, const


@njit(cache=True, error_model="numpy")
def marginal_loglik(kap: np.ndarray, om: np.ndarray, base: np.ndarray, X: np.ndarray,
                    m0: np.ndarray, prec: np.ndarray) -> np.ndarray:
    """m(i | X_k): log marginal of neuron i's augmented likelihood given trajectory X_k.

    Parameters
    ----------
    kap, om : (N, T) PG kappa and omega.   base : (N,) fixed offsets o_i.
    X : (K, T, q) cluster trajectories (column 0 = mu).
    m0 : (N, q) prior means of theta_i.   prec : (q,) prior precisions of theta_i.

    Returns
    -------
    (N, K) log marginal likelihoods (theta_i integrated out; constants in y dropped).
    """
    N = kap.shape[0]
    K = X.shape[0]
    out = np.empty((N, K))
    for i in range(N):
        for k in range(K):
            G, hv, const = _stats(kap[i], om[i], base[i], X[k], m0[i], prec)
            low = chol(G)
            z = tri_inv(low) @ hv
            v = const + 0.5 * (z @ z) - 0.5 * logdet_chol(low)
            out[i, k] = v if np.isfinite(v) else -1e300
    return out


@njit(cache=True, error_model="numpy")
def theta_conditional(kap: np.ndarray, om: np.ndarray, base: float, x: np.ndarray,
                      m0: np.ndarray, prec: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Draw theta_i = (d_i, c_i) (q,) from its Gaussian conditional given trajectory x (T, q)."""
    G, hv, _ = _stats(kap, om, base, x, m0, prec)
    li = tri_inv(chol(G))
    cov = li.T @ li
    mean = cov @ hv
    return mean + chol(cov) @ noise


@njit(cache=True, error_model="numpy")
def theta_gaussian(kap: np.ndarray, om: np.ndarray, base: float, x: np.ndarray,
                   m0: np.ndarray, prec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (q,) and covariance (q, q) of theta_i's Gaussian conditional given trajectory x."""
    G, hv, _ = _stats(kap, om, base, x, m0, prec)
    li = tri_inv(chol(G))
    cov = li.T @ li
    return cov @ hv, cov


@njit(cache=True, error_model="numpy")
def obs_info(kap: np.ndarray, om: np.ndarray, base: np.ndarray, theta: np.ndarray,
             members: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Information-form pseudo-observations of a cluster trajectory from its members.

    Member i sees psi_it = base_i + d_i + (1, c_i).X[t]; its augmented likelihood
    exp(kappa psi - omega psi^2 / 2) equals exp(h.X - X'JX/2 + const). Returns J (T, q, q),
    h (T, q) and const (the X-free part).
    """
    T = kap.shape[1]
    q = theta.shape[1]
    J = np.zeros((T, q, q))
    h = np.zeros((T, q))
    g = np.empty(q)
    const = 0.0
    for i in members:
        g[0] = 1.0
        for j in range(1, q):
            g[j] = theta[i, j]
        off = base[i] + theta[i, 0]
        for t in range(T):
            w = om[i, t]
            const += kap[i, t] * off - 0.5 * w * off * off
            coef = kap[i, t] - w * off
            for j in range(q):
                h[t, j] += coef * g[j]
                wg = w * g[j]
                for l in range(q):
                    J[t, j, l] += wg * g[l]
    return J, h, const
