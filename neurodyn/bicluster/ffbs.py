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
    LOG2PI,
    chol,
    chol_into,
    chol_solve_into,
    gram_t_into,
    logdet_chol,
    mv,
    mvn_logpdf_chol,
    tri_inv_into,
)


@njit(cache=True, error_model="numpy")
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

    Notes
    -----
    Information-form filter with preallocated q x q work arrays (no allocation per bin): per bin
    one Cholesky factor and one triangular inverse of the predicted covariance and of the
    filtered precision; the filtered information vector is stored so that the backward pass
    samples x[t] | x[t+1] through one Cholesky factor of its precision.
    """
    lamf, etaf, logz = ffbs_filter(J, h, A, b, Q, s, m0, V0)
    if not sample and x_in.shape[0] != h.shape[0]:  # filter only: normaliser wanted, no path
        return np.zeros(h.shape), 0.0, logz
    x, logq = ffbs_sample(lamf, etaf, A, b, Q, s, noise, x_in, sample)
    return x, logq, logz


@njit(cache=True, error_model="numpy")
def _backward_consts(A: np.ndarray, Q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A'Q^-1 and A'Q^-1 A (L, q, q) for the states used by s[1:] (zero for the others)."""
    T = s.shape[0]
    L, q, _ = A.shape
    used = np.zeros(L, dtype=np.bool_)
    for t in range(1, T):
        used[s[t]] = True
    # per-state constants of the backward pass: A'Q^-1 and A'Q^-1 A
    AtQ = np.zeros((L, q, q))
    AtQA = np.zeros((L, q, q))
    low = np.zeros((q, q))
    li = np.zeros((q, q))
    qinv = np.zeros((q, q))
    for l in range(L):
        if not used[l]:
            continue
        chol_into(Q[l], low)
        tri_inv_into(low, li)
        gram_t_into(li, qinv)
        for i in range(q):
            for j in range(q):
                acc = 0.0
                for k in range(q):
                    acc += A[l, k, i] * qinv[k, j]
                AtQ[l, i, j] = acc
        for i in range(q):
            for j in range(q):
                acc = 0.0
                for k in range(q):
                    acc += AtQ[l, i, k] * A[l, k, j]
                AtQA[l, i, j] = acc
    return AtQ, AtQA


@njit(cache=True, error_model="numpy")
def ffbs_filter(
    J: np.ndarray, h: np.ndarray, A: np.ndarray, b: np.ndarray, Q: np.ndarray, s: np.ndarray,
    m0: np.ndarray, V0: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Forward (information-form) filter of :func:`ffbs`.

    Returns the filtered precisions lamf (T, q, q), information vectors etaf (T, q) and the log
    normaliser logz; :func:`ffbs_sample` then draws or scores a path from them. Splitting the
    two lets a Metropolis-Hastings move whose ratio needs only logz run the backward pass for
    accepted proposals only.
    """
    q = h.shape[1]
    if q == 3:  # the default latent_dim = 2: a compile-time q lets LLVM unroll the q-loops
        return _ffbs_filter_q(J, h, A, b, Q, s, m0, V0, 3)
    return _ffbs_filter_q(J, h, A, b, Q, s, m0, V0, q)


@njit(cache=True, error_model="numpy", inline="always")
def _ffbs_filter_q(
    J: np.ndarray, h: np.ndarray, A: np.ndarray, b: np.ndarray, Q: np.ndarray, s: np.ndarray,
    m0: np.ndarray, V0: np.ndarray, q: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Body of :func:`ffbs_filter` for latent dimension q (inlined, so a literal q is a constant)."""
    T = h.shape[0]
    mf = np.empty((2, q))  # filtered means of bins t - 1 and t (rows t % 2)
    Pf = np.empty((2, q, q))  # filtered covariances, likewise
    lamf = np.empty((T, q, q))  # filtered precisions
    etaf = np.empty((T, q))  # filtered information vectors (lamf @ mf)
    mp = np.empty(q)
    Pp = np.empty((q, q))
    tmp = np.empty((q, q))
    lowp = np.zeros((q, q))
    lip = np.zeros((q, q))
    lowl = np.zeros((q, q))
    lil = np.zeros((q, q))
    w = np.empty(q)
    v = np.empty(q)
    logz = 0.0
    for t in range(T):
        if t == 0:
            for i in range(q):
                mp[i] = m0[i]
                for j in range(q):
                    Pp[i, j] = V0[i, j]
        else:
            l = s[t]
            for i in range(q):
                acc = b[l, i]
                for k in range(q):
                    acc += A[l, i, k] * mf[1 - t % 2, k]
                mp[i] = acc
            for i in range(q):
                for j in range(q):
                    acc = 0.0
                    for k in range(q):
                        acc += A[l, i, k] * Pf[1 - t % 2, k, j]
                    tmp[i, j] = acc
            for i in range(q):
                for j in range(i + 1):
                    acc = Q[l, i, j]
                    for k in range(q):
                        acc += tmp[i, k] * A[l, j, k]
                    Pp[i, j] = acc
                    Pp[j, i] = acc
        chol_into(Pp, lowp)
        tri_inv_into(lowp, lip)
        # w = Lp^-1 mp, so mp' Pp^-1 mp = |w|^2 and Pp^-1 mp = Lp^-T w
        quad_p = 0.0
        ld = 0.0
        for i in range(q):
            acc = 0.0
            for k in range(i + 1):
                acc += lip[i, k] * mp[k]
            w[i] = acc
            quad_p += acc * acc
            ld += np.log(lowp[i, i])
        lam = lamf[t]
        for i in range(q):
            for j in range(i + 1):
                acc = J[t, i, j]
                for k in range(i, q):
                    acc += lip[k, i] * lip[k, j]
                lam[i, j] = acc
                lam[j, i] = acc
            acc = h[t, i]
            for k in range(i, q):
                acc += lip[k, i] * w[k]
            etaf[t, i] = acc
        chol_into(lam, lowl)
        tri_inv_into(lowl, lil)
        gram_t_into(lil, Pf[t % 2])
        quad_e = 0.0
        for i in range(q):
            acc = 0.0
            for k in range(i + 1):
                acc += lil[i, k] * etaf[t, k]
            v[i] = acc
            quad_e += acc * acc
            ld += np.log(lowl[i, i])
        for i in range(q):
            acc = 0.0
            for k in range(i, q):
                acc += lil[k, i] * v[k]
            mf[t % 2, i] = acc
        logz += -ld + 0.5 * quad_e - 0.5 * quad_p
    return lamf, etaf, logz


@njit(cache=True, error_model="numpy")
def ffbs_sample(
    lamf: np.ndarray, etaf: np.ndarray, A: np.ndarray, b: np.ndarray, Q: np.ndarray,
    s: np.ndarray, noise: np.ndarray, x_in: np.ndarray, sample: bool,
) -> tuple[np.ndarray, float]:
    """Backward pass of :func:`ffbs` from the output of :func:`ffbs_filter`: returns the path
    (drawn from ``noise`` when ``sample``, else ``x_in``) and its log density logq."""
    q = etaf.shape[1]
    if q == 3:  # see ffbs_filter
        return _ffbs_sample_q(lamf, etaf, A, b, Q, s, noise, x_in, sample, 3)
    return _ffbs_sample_q(lamf, etaf, A, b, Q, s, noise, x_in, sample, q)


@njit(cache=True, error_model="numpy", inline="always")
def _ffbs_sample_q(
    lamf: np.ndarray, etaf: np.ndarray, A: np.ndarray, b: np.ndarray, Q: np.ndarray,
    s: np.ndarray, noise: np.ndarray, x_in: np.ndarray, sample: bool, q: int,
) -> tuple[np.ndarray, float]:
    """Body of :func:`ffbs_sample` for latent dimension q (inlined, so a literal q is a constant)."""
    T = etaf.shape[0]
    AtQ, AtQA = _backward_consts(A, Q, s)
    tmp = np.empty((q, q))
    lowl = np.zeros((q, q))
    v = np.empty(q)
    x = np.empty((T, q))
    if not sample:
        x[:] = x_in
    logq = 0.0
    mean = np.empty(q)
    eta = np.empty(q)
    for t in range(T - 1, -1, -1):
        # precision and information of x[t] | x[t+1], y[:t+1] (last bin: the filtered ones)
        if t == T - 1:
            for i in range(q):
                eta[i] = etaf[t, i]
                for j in range(q):
                    tmp[i, j] = lamf[t, i, j]
        else:
            l = s[t + 1]
            for i in range(q):
                v[i] = x[t + 1, i] - b[l, i]
            for i in range(q):
                acc = etaf[t, i]
                for k in range(q):
                    acc += AtQ[l, i, k] * v[k]
                eta[i] = acc
                for j in range(q):
                    tmp[i, j] = lamf[t, i, j] + AtQA[l, i, j]
        chol_into(tmp, lowl)
        chol_solve_into(lowl, eta, mean)
        # x = mean + L^{-T} z ;  log N = -|L^T (x - mean)|^2 / 2 + sum log L_ii - q/2 log 2 pi
        if sample:
            for i in range(q - 1, -1, -1):
                acc = noise[t, i]
                for k in range(i + 1, q):
                    acc -= lowl[k, i] * v[k]
                v[i] = acc / lowl[i, i]
            for i in range(q):
                x[t, i] = mean[i] + v[i]
        quad = 0.0
        for i in range(q):
            acc = 0.0
            for k in range(i, q):
                acc += lowl[k, i] * (x[t, k] - mean[k])
            quad += acc * acc
        logq += -0.5 * quad + _logdiag(lowl) - 0.5 * q * LOG2PI
    return x, logq


@njit(cache=True, error_model="numpy")
def _logdiag(low: np.ndarray) -> float:
    s = 0.0
    for i in range(low.shape[0]):
        s += np.log(low[i, i])
    return s


@njit(cache=True, error_model="numpy")
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
    for t in range(1, T):  # no allocation per bin
        l = s[t]
        for i in range(q):
            acc = b[l, i]
            for k in range(q):
                acc += A[l, i, k] * x[t - 1, k]
            for k in range(i + 1):
                acc += lowQ[l, i, k] * noise[t, k]
            x[t, i] = acc
    return x


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
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
    e = np.empty(q)
    for k in range(K):
        for l in range(L):
            low = chol(Q[k, l])
            const = -0.5 * logdet_chol(low) - 0.5 * q * LOG2PI
            Akl = A[k, l]
            bkl = b[k, l]
            for t in range(1, T):  # residual, then a triangular solve, without allocation
                quad = 0.0
                for i in range(q):
                    acc = X[k, t, i] - bkl[i]
                    for j in range(q):
                        acc -= Akl[i, j] * X[k, t - 1, j]
                    for j in range(i):
                        acc -= low[i, j] * e[j]
                    e[i] = acc / low[i, i]
                    quad += e[i] * e[i]
                out[t, l] += const - 0.5 * quad
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
