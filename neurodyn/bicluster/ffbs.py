"""Forward-filter backward-sample (FFBS) of a cluster's latent trajectory (numba), the SLDS
prior, and a numpy Rauch-Tung-Striebel smoother used as the reference in tests.

State-space model (one cluster, latent dimension q, T bins, discrete states s):

    x[0] ~ N(m0, V0)
    x[t] = b[s[t]] + A[s[t]] x[t-1] + e[t],   e[t] ~ N(0, Q[s[t]]),   t >= 1
    observations enter in information form: log p(obs_t | x[t]) = h[t].x[t] - x[t]' J[t] x[t] / 2

With Polya-Gamma augmentation the count likelihood of each neuron is exactly of this Gaussian
form in its linear predictor, so the conditional posterior of the trajectory is Gaussian and
FFBS draws it exactly (Carter & Kohn 1994; Fruhwirth-Schnatter 1994).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neurodyn.bicluster.linalg import (
    chol,
    dot,
    logdet_chol,
    mm,
    mv,
    mvn_logpdf_chol,
    spd_inv,
    tri_inv,
)


@njit(cache=True)
def ffbs(
    J: np.ndarray, h: np.ndarray, A: np.ndarray, b: np.ndarray, Q: np.ndarray, s: np.ndarray,
    m0: np.ndarray, V0: np.ndarray, noise: np.ndarray, x_in: np.ndarray, sample: bool,
) -> tuple[np.ndarray, float, float]:
    """Draw (or evaluate) a trajectory from its Gaussian smoothing distribution.

    Parameters
    ----------
    J : (T, q, q) observation precision per bin.   h : (T, q) observation information vector.
    A, b, Q : (L, q, q), (L, q), (L, q, q) dynamics per discrete state.
    s : (T,) int state of each bin (s[0] unused).
    m0, V0 : (q,), (q, q) prior of x[0].
    noise : (T, q) standard normal draws (used when ``sample``).
    x_in : (T, q) trajectory to evaluate when not ``sample``; an empty (0, q) array there means
        "filter only" (logq is then 0).
    sample : draw a new path (True) or score ``x_in`` (False).

    Returns
    -------
    x : (T, q) the path (drawn, or ``x_in``).
    logq : float, log density of the path under the smoothing distribution.
    logz : float, log of the normaliser  log ∫ p(x | dynamics) prod_t exp(h_t.x_t - x_t'J_t x_t/2) dx.
    """
    T, q = h.shape
    L = A.shape[0]
    Qinv = np.empty((L, q, q))
    for l in range(L):
        Qinv[l] = spd_inv(Q[l])
    mf = np.empty((T, q))
    Pf = np.empty((T, q, q))
    Pinvf = np.empty((T, q, q))
    logz = 0.0
    mp = m0.copy()
    Pp = V0.copy()
    for t in range(T):
        if t > 0:
            l = s[t]
            At = A[l]
            mp = b[l] + mv(At, mf[t - 1])
            Pp = mm(mm(At, Pf[t - 1]), At.T) + Q[l]
        lowp = chol(Pp)
        lip = tri_inv(lowp)
        Ppinv = mm(lip.T, lip)
        lam = Ppinv + J[t]
        lowl = chol(lam)
        lil = tri_inv(lowl)
        P = mm(lil.T, lil)
        eta = mv(Ppinv, mp) + h[t]
        m = mv(P, eta)
        mf[t] = m
        Pf[t] = P
        Pinvf[t] = lam
        logz += -0.5 * (logdet_chol(lowp) + logdet_chol(lowl)) + 0.5 * dot(eta, m) - 0.5 * dot(mp, mv(Ppinv, mp))
    x = np.empty((T, q))
    if not sample:
        if x_in.shape[0] != T:  # filter only: normaliser wanted, no path
            x[:] = 0.0
            return x, 0.0, logz
        x[:] = x_in
    low = chol(Pf[T - 1])
    if sample:
        x[T - 1] = mf[T - 1] + mv(low, noise[T - 1])
    logq = mvn_logpdf_chol(x[T - 1], mf[T - 1], low)
    for t in range(T - 2, -1, -1):
        l = s[t + 1]
        At = A[l]
        AtQ = mm(At.T, Qinv[l])
        lam = Pinvf[t] + mm(AtQ, At)
        eta = mv(Pinvf[t], mf[t]) + mv(AtQ, x[t + 1] - b[l])
        lowl = chol(lam)
        lil = tri_inv(lowl)
        cov = mm(lil.T, lil)
        mean = mv(cov, eta)
        low = chol(cov)
        if sample:
            x[t] = mean + mv(low, noise[t])
        logq += mvn_logpdf_chol(x[t], mean, low)
    return x, logq, logz


@njit(cache=True)
def slds_sample(
    A: np.ndarray, b: np.ndarray, Q: np.ndarray, s: np.ndarray, m0: np.ndarray, V0: np.ndarray,
    noise: np.ndarray,
) -> np.ndarray:
    """Draw a (T, q) trajectory from the switching linear dynamics prior."""
    T, q = noise.shape
    L = A.shape[0]
    lowQ = np.empty((L, q, q))
    for l in range(L):
        lowQ[l] = chol(Q[l])
    x = np.empty((T, q))
    x[0] = m0 + mv(chol(V0), noise[0])
    for t in range(1, T):
        l = s[t]
        x[t] = b[l] + mv(A[l], x[t - 1]) + mv(lowQ[l], noise[t])
    return x


@njit(cache=True)
def slds_logpdf(
    x: np.ndarray, A: np.ndarray, b: np.ndarray, Q: np.ndarray, s: np.ndarray, m0: np.ndarray,
    V0: np.ndarray,
) -> float:
    """log p(x | dynamics, s) of a (T, q) trajectory under the switching linear dynamics."""
    T, q = x.shape
    L = A.shape[0]
    lowQ = np.empty((L, q, q))
    for l in range(L):
        lowQ[l] = chol(Q[l])
    out = mvn_logpdf_chol(x[0], m0, chol(V0))
    for t in range(1, T):
        l = s[t]
        out += mvn_logpdf_chol(x[t], b[l] + mv(A[l], x[t - 1]), lowQ[l])
    return out


@njit(cache=True)
def state_loglik(X: np.ndarray, A: np.ndarray, b: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Log-likelihood of each transition under each discrete state, summed over clusters.

    Parameters
    ----------
    X : (K, T, q) latent trajectories.   A, b, Q : (K, L, q, q), (K, L, q), (K, L, q, q).

    Returns
    -------
    (T, L) array; row 0 is zero (x[0] does not depend on the state).
    """
    K, T, q = X.shape
    L = A.shape[1]
    out = np.zeros((T, L))
    for k in range(K):
        for l in range(L):
            low = chol(Q[k, l])
            Akl = A[k, l]
            bkl = b[k, l]
            for t in range(1, T):
                out[t, l] += mvn_logpdf_chol(X[k, t], bkl + mv(Akl, X[k, t - 1]), low)
    return out


def kalman_smoother(
    J: np.ndarray, h: np.ndarray, A: np.ndarray, b: np.ndarray, Q: np.ndarray, s: np.ndarray,
    m0: np.ndarray, V0: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference RTS smoother (plain numpy, covariance form) for the model of :func:`ffbs`.

    Returns smoothed means (T, q) and covariances (T, q, q).
    """
    T, q = h.shape
    mf, Pf, mp_all, Pp_all = np.empty((T, q)), np.empty((T, q, q)), np.empty((T, q)), np.empty((T, q, q))
    m_pred, P_pred = m0, V0
    for t in range(T):
        if t > 0:
            a = A[s[t]]
            m_pred = b[s[t]] + a @ mf[t - 1]
            P_pred = a @ Pf[t - 1] @ a.T + Q[s[t]]
        mp_all[t], Pp_all[t] = m_pred, P_pred
        P = np.linalg.inv(np.linalg.inv(P_pred) + J[t])
        mf[t] = P @ (np.linalg.solve(P_pred, m_pred) + h[t])
        Pf[t] = P
    ms, Ps = mf.copy(), Pf.copy()
    for t in range(T - 2, -1, -1):
        a = A[s[t + 1]]
        G = Pf[t] @ a.T @ np.linalg.inv(Pp_all[t + 1])
        ms[t] = mf[t] + G @ (ms[t + 1] - mp_all[t + 1])
        Ps[t] = Pf[t] + G @ (Ps[t + 1] - Pp_all[t + 1]) @ G.T
    return ms, Ps
