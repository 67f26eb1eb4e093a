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

Split-merge moves live in :class:`neurodyn.bicluster.splitmerge.SplitMerge` (trajectory-
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
def _marginal_loglik_loop(kap: np.ndarray, om: np.ndarray, base: np.ndarray, X: np.ndarray,
                          m0: np.ndarray, prec: np.ndarray) -> np.ndarray:
    """:func:`marginal_loglik` by one pass over the bins per (neuron, cluster) pair (faster
    than the matrix products for a handful of neurons)."""
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


def _features(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin features of trajectories X (K, T, q) whose sums against kappa and omega give
    every statistic of :func:`marginal_loglik`: with a = X[..., 0] and g = (1, X[..., 1:]),
    F_kap (T, K, 1 + q) = [a, g] and F_om (T, K, q^2 + q + 1) = [g_j g_l (all j, l), a g, a^2].
    """
    K, T, q = X.shape
    g = np.concatenate([np.ones((K, T, 1)), X[:, :, 1:]], axis=2)
    a = X[:, :, :1]
    f_kap = np.concatenate([a, g], axis=2)
    gg = (g[:, :, :, None] * g[:, :, None, :]).reshape(K, T, q * q)
    f_om = np.concatenate([gg, a * g, a * a], axis=2)
    return f_kap.transpose(1, 0, 2), f_om.transpose(1, 0, 2)


@njit(cache=True, error_model="numpy")
def _assemble(s_kap: np.ndarray, s_om: np.ndarray, base: np.ndarray, m0: np.ndarray,
              prec: np.ndarray) -> np.ndarray:
    """m(i | X_k) from the feature sums of :func:`_features` (s_kap (N, K, 1 + q), s_om
    (N, K, q^2 + q + 1)); see :func:`marginal_loglik`."""
    N, K, _ = s_kap.shape
    q = m0.shape[1]
    out = np.empty((N, K))
    G = np.empty((q, q))
    hv = np.empty(q)
    prior_c = 0.0
    for j in range(q):
        prior_c += 0.5 * np.log(prec[j])
    for i in range(N):
        bi = base[i]
        pc = prior_c
        for j in range(q):
            pc -= 0.5 * prec[j] * m0[i, j] * m0[i, j]
        for k in range(K):
            sk = s_kap[i, k]
            so = s_om[i, k]
            # sum_t kap a + b sum_t kap - (b^2 sum om + 2 b sum om a + sum om a^2) / 2
            sum_om = so[0]
            sum_om_a = so[q * q]
            sum_om_aa = so[q * q + q]
            const = pc + sk[0] + bi * sk[1] - 0.5 * (bi * bi * sum_om + 2.0 * bi * sum_om_a
                                                        + sum_om_aa)
            for j in range(q):
                for l in range(q):
                    G[j, l] = so[j * q + l]
                G[j, j] += prec[j]
                # sum_t (kap - om (b + a)) g_j + prec_j m0_j
                hv[j] = (prec[j] * m0[i, j] + sk[1 + j] - bi * so[j] - so[q * q + j])
            low = chol(G)
            z = tri_inv(low) @ hv
            v = const + 0.5 * (z @ z) - 0.5 * logdet_chol(low)
            out[i, k] = v if np.isfinite(v) else -1e300
    return out


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

    Notes
    -----
    Every statistic is a sum over bins of kappa or omega times a product of trajectory
    coordinates, so all N x K of them come from two matrix products (N, T) @ (T, K * f)
    (:func:`_features`); a small numba loop then solves the q x q Gaussian integrals. For
    N <= 4 one pass over the bins per pair (:func:`_marginal_loglik_loop`) is faster.
    """
    N = kap.shape[0]
    if N <= 4:  # the feature arrays cost more than they save
        return _marginal_loglik_loop(kap, om, np.asarray(base, dtype=float), X, m0, prec)
    K, T, q = X.shape
    f_kap, f_om = _features(np.asarray(X, dtype=float))
    s_kap = (kap @ f_kap.reshape(T, -1)).reshape(N, K, -1)
    s_om = (om @ f_om.reshape(T, -1)).reshape(N, K, -1)
    return _assemble(s_kap, s_om, np.asarray(base, dtype=float), m0, prec)


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


def nb_loglik_rows(y: np.ndarray, r: np.ndarray, psi: np.ndarray) -> float:
    """sum_{i,t} log NB(y | r_i, sigmoid(psi)) without the terms free of psi."""
    return float(-np.sum(r[:, None] * np.logaddexp(0.0, psi) + y * np.logaddexp(0.0, -psi)))


@njit(cache=True, error_model="numpy")
def linear_predictor(X: np.ndarray, z: np.ndarray, theta: np.ndarray, base: np.ndarray) -> np.ndarray:
    """psi (N, T): psi[i, t] = base_i + d_i + X[z_i, t, 0] + c_i . X[z_i, t, 1:], for
    trajectories X (K, T, q), labels z (N,), theta (N, q) = (d_i, c_i) and offsets base (N,)."""
    N = z.shape[0]
    _, T, q = X.shape
    out = np.empty((N, T))
    for i in range(N):
        x = X[z[i]]
        off = base[i] + theta[i, 0]
        for t in range(T):
            v = off + x[t, 0]
            for j in range(1, q):
                v += theta[i, j] * x[t, j]
            out[i, t] = v
    return out


@njit(cache=True, error_model="numpy")
def _add_neuron(J: np.ndarray, h: np.ndarray, kap: np.ndarray, om: np.ndarray, base: float,
                theta: np.ndarray, sign: float) -> float:
    """Add ``sign`` times one neuron's pseudo-observations to (J, h) in place; returns the
    neuron's X-free term times ``sign``. kap, om: (T,); theta: (q,)."""
    T, q = h.shape
    g = np.empty(q)
    g[0] = 1.0
    for j in range(1, q):
        g[j] = theta[j]
    off = base + theta[0]
    const = 0.0
    for t in range(T):
        w = om[t]
        const += kap[t] * off - 0.5 * w * off * off
        coef = sign * (kap[t] - w * off)
        sw = sign * w
        for j in range(q):
            h[t, j] += coef * g[j]
            wg = sw * g[j]
            for l in range(q):
                J[t, j, l] += wg * g[l]
    return sign * const


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
    const = 0.0
    for i in members:
        const += _add_neuron(J, h, kap[i], om[i], base[i], theta[i], 1.0)
    return J, h, const


@njit(cache=True, error_model="numpy")
def shift_info(J: np.ndarray, h: np.ndarray, const: float, kap: np.ndarray, om: np.ndarray,
               base: float, theta: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`obs_info` of a cluster with one neuron added (``sign`` = 1) or removed (-1).

    (J, h, const) are the cluster's current pseudo-observations (not modified); kap, om (T,),
    base, theta (q,) are the neuron's. Costs O(T q^2) instead of O(n T q^2) for n members;
    equal to a fresh :func:`obs_info` up to rounding.
    """
    J2 = J.copy()
    h2 = h.copy()
    c2 = const + _add_neuron(J2, h2, kap, om, base, theta, sign)
    return J2, h2, c2
