"""Discrete states: sticky HDP-HMM (weak-limit truncation) and conjugate MNIW dynamics.

Blocks (each an exact Gibbs step given the rest):

* ``sample_states``: forward filtering, backward sampling of s (T,) given the per-bin state
  log-likelihoods (from the latent transitions) and the transition matrix pi; s[0] has a fixed
  uniform initial distribution.
* ``sample_hdp``: weak-limit sticky HDP-HMM (Fox et al. 2011). Auxiliary table counts
  m[j, k] ~ sum of Bernoulli((alpha beta_k + kappa d_jk) / (alpha beta_k + kappa d_jk + n)),
  override counts w_j ~ Binomial(m_jj, rho / (rho + beta_j (1 - rho))), rho = kappa/(alpha+kappa),
  then beta ~ Dir(gamma / L + mbar_.k) and pi_j ~ Dir(alpha beta + kappa e_j + n_j.).
* dynamics, matrix-normal inverse-Wishart: the noise covariance Q_l of each state is shared by
  all clusters (the stacked Q_s is block-diagonal with equal blocks), so a small cluster cannot
  inflate its own noise to absorb its neurons' count noise; (A, b) are per cluster and state,
  [A b] | Q ~ MN(0, Q, I / k0). ``sample_noise_cov`` draws Q | X, s with (A, b) integrated,
  then ``sample_ab`` draws (A, b) | Q, X, s: an exact blocked Gibbs step.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neurodyn.bicluster.linalg import chol


@njit(cache=True)
def sample_states(loglik: np.ndarray, pi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draw s (T,) from p(s | loglik (T, L), pi (L, L)) with uniforms u (T,)."""
    T, L = loglik.shape
    alpha = np.empty((T, L))
    a = np.exp(loglik[0] - loglik[0].max()) / L
    alpha[0] = a / a.sum()
    for t in range(1, T):
        m = loglik[t].max()
        pred = alpha[t - 1] @ pi
        a = pred * np.exp(loglik[t] - m)
        tot = a.sum()
        if tot <= 0.0 or not np.isfinite(tot):
            a = pred.copy()
            tot = a.sum()
        alpha[t] = a / tot
    s = np.empty(T, dtype=np.int64)
    w = alpha[T - 1]
    s[T - 1] = _draw(w, u[T - 1])
    for t in range(T - 2, -1, -1):
        w = alpha[t] * pi[:, s[t + 1]]
        s[t] = _draw(w, u[t])
    return s


@njit(cache=True)
def _draw(w: np.ndarray, u: float) -> int:
    c = np.cumsum(w)
    x = u * c[-1]
    for k in range(c.shape[0]):
        if x < c[k]:
            return k
    return c.shape[0] - 1


def transition_counts(s: np.ndarray, L: int) -> np.ndarray:
    """n[j, k] = number of t with s[t-1] = j, s[t] = k."""
    n = np.zeros((L, L))
    np.add.at(n, (s[:-1], s[1:]), 1.0)
    return n


def sample_hdp(
    s: np.ndarray, beta: np.ndarray, L: int, alpha: float, gamma: float, kappa: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw (beta (L,), pi (L, L)) given the state sequence (weak-limit sticky HDP-HMM)."""
    n = transition_counts(s, L)
    conc = alpha * beta[None, :] + kappa * np.eye(L)
    m = np.zeros((L, L))
    nmax = int(n.max()) if n.size else 0
    if nmax > 0:
        c = np.arange(nmax)
        for j in range(L):
            for k in range(L):
                nj = int(n[j, k])
                if nj:
                    p = conc[j, k] / (conc[j, k] + c[:nj])
                    m[j, k] = (rng.random(nj) < p).sum()
    rho = kappa / (alpha + kappa)
    mbar = m.copy()
    for j in range(L):
        if m[j, j] > 0:
            pw = rho / (rho + beta[j] * (1.0 - rho))
            mbar[j, j] -= rng.binomial(int(m[j, j]), pw)
    beta = rng.dirichlet(gamma / L + mbar.sum(axis=0))
    beta = np.maximum(beta, 1e-300)
    pi = np.empty((L, L))
    for j in range(L):
        pi[j] = rng.dirichlet(alpha * beta + kappa * (np.arange(L) == j) + n[j])
    pi = np.maximum(pi, 1e-300)
    return beta, pi / pi.sum(axis=1, keepdims=True)


def _iw_draw(psi: np.ndarray, nu: float, rng: np.random.Generator) -> np.ndarray:
    """Q ~ inverse-Wishart(psi, nu) via the Bartlett decomposition of its inverse."""
    q = psi.shape[0]
    lw = np.linalg.cholesky(np.linalg.inv(psi))
    a = np.zeros((q, q))
    a[np.diag_indices(q)] = np.sqrt(rng.chisquare(nu - np.arange(q)))
    a[np.tril_indices(q, -1)] = rng.standard_normal(q * (q - 1) // 2)
    la = lw @ a
    w = la @ la.T
    qm = np.linalg.inv(w)
    return 0.5 * (qm + qm.T)


def regression_stats(X: np.ndarray, mask: np.ndarray, k0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(Mn (q, q+1), Kn (q+1, q+1), residual scatter S (q, q), n) of the regression
    X[t] = W (X[t-1], 1) + N(0, Q) over bins t >= 1 with ``mask[t]``, prior W ~ MN(0, Q, I/k0).

    S = Y Y' - Mn Kn Mn' (includes the prior term), so that Q | X (W integrated) ~ IW(Psi0 + S, nu0 + n)."""
    T, q = X.shape
    idx = np.flatnonzero(mask[1:]) + 1
    U = np.concatenate([X[idx - 1], np.ones((idx.size, 1))], axis=1)
    Y = X[idx]
    Kn = k0 * np.eye(q + 1) + U.T @ U
    Mn = np.linalg.solve(Kn, (Y.T @ U).T).T
    S = Y.T @ Y - Mn @ Kn @ Mn.T
    return Mn, Kn, 0.5 * (S + S.T), idx.size


def sample_noise_cov(Xs: list, s: np.ndarray, L: int, k0: float, psi0: float, nu0: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Q_l | X, s (A, b integrated out), shared by every cluster: (L, q, q).

    Q_l ~ IW(psi0 I + sum_k S_kl, nu0 + sum_k n_kl) with S_kl the regression scatter of cluster k
    in state l (see :func:`regression_stats`). Together with :func:`sample_ab` this is an exact
    blocked draw of (Q, A, b) | X, s."""
    q = Xs[0].shape[1]
    Q = np.empty((L, q, q))
    for l in range(L):
        psi = psi0 * np.eye(q)
        nu = nu0
        for X in Xs:
            _, _, S, n = regression_stats(X, s == l, k0)
            psi = psi + S
            nu += n
        Q[l] = _iw_draw(psi, nu, rng)
    return Q


@njit(cache=True)
def _ab_draw(X: np.ndarray, s: np.ndarray, Q: np.ndarray, k0: float, states: np.ndarray,
             noise: np.ndarray, A: np.ndarray, b: np.ndarray) -> None:
    """Fill A[l], b[l] for l in ``states`` with draws of W_l = [A_l b_l] | X, s, Q:
    W_l = Mn + chol(Q_l) noise chol(Kn^-1)' (see :func:`regression_stats`); one pass over bins."""
    T, q = X.shape
    L = Q.shape[0]
    UU = np.zeros((L, q + 1, q + 1))
    UY = np.zeros((L, q + 1, q))
    u = np.ones(q + 1)
    for t in range(1, T):
        l = s[t]
        for j in range(q):
            u[j] = X[t - 1, j]
        for j in range(q + 1):
            for m in range(q + 1):
                UU[l, j, m] += u[j] * u[m]
            for m in range(q):
                UY[l, j, m] += u[j] * X[t, m]
    for n in range(states.size):
        l = states[n]
        Kn = UU[l] + k0 * np.eye(q + 1)
        Kinv = np.linalg.inv(Kn)
        Mn = (Kinv @ UY[l]).T
        W = Mn + chol(Q[l]) @ noise[n] @ chol(0.5 * (Kinv + Kinv.T)).T
        A[l] = W[:, :q]
        b[l] = W[:, q]


def sample_ab(X: np.ndarray, s: np.ndarray, Q: np.ndarray, k0: float, rng: np.random.Generator,
              states: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(A (L, q, q), b (L, q)) of one cluster | X, s, Q: matrix-normal conditional per state
    (prior draw for unused states). With ``states``, only those are drawn (others NaN)."""
    L, q, _ = Q.shape
    A, b = np.full((L, q, q), np.nan), np.full((L, q), np.nan)
    todo = np.arange(L) if states is None else np.asarray(states, dtype=np.int64)
    _ab_draw(np.ascontiguousarray(X, dtype=float), np.asarray(s, dtype=np.int64), Q, float(k0), todo,
             rng.standard_normal((todo.size, q, q + 1)), A, b)
    return A, b


def sample_ab_prior(Q: np.ndarray, k0: float, rng: np.random.Generator,
                    states: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(A, b) from the prior W_l ~ MN(0, Q_l, I / k0) (only ``states`` when given, others NaN)."""
    L, q, _ = Q.shape
    A, b = np.full((L, q, q), np.nan), np.full((L, q), np.nan)
    for l in (range(L) if states is None else states):
        W = np.linalg.cholesky(Q[l]) @ rng.standard_normal((q, q + 1)) / np.sqrt(k0)
        A[l], b[l] = W[:, :q], W[:, q]
    return A, b


def sample_q_prior(q: int, L: int, psi0: float, nu0: float, rng: np.random.Generator) -> np.ndarray:
    """Q_l ~ IW(psi0 I, nu0) for each state."""
    return np.stack([_iw_draw(psi0 * np.eye(q), nu0, rng) for _ in range(L)])


def mn_logpdf(W: np.ndarray, M: np.ndarray, Q: np.ndarray, Vinv: np.ndarray) -> float:
    """log MN(W; M, row covariance Q, column covariance V) for W (q, c), given V^-1 (c, c)."""
    q, c = W.shape
    D = W - M
    low = np.linalg.cholesky(Q)
    Z = np.linalg.solve(low, D)
    return float(-0.5 * np.trace(Z @ Vinv @ Z.T) - c * np.sum(np.log(np.diag(low)))
                 + 0.5 * q * np.linalg.slogdet(Vinv)[1] - 0.5 * q * c * np.log(2 * np.pi))


def ab_log_ratio_prior_cond(A: np.ndarray, b: np.ndarray, X: np.ndarray, s: np.ndarray, Q: np.ndarray,
                            k0: float, states: np.ndarray) -> float:
    """sum over ``states`` of log p(W_l) - log p(W_l | X, s, Q), W_l = [A_l b_l]: the prior
    MN(0, Q_l, I / k0) against the conditional given trajectory X (see :func:`sample_ab`)."""
    q = X.shape[1]
    out = 0.0
    for l in states:
        Mn, Kn, _, _ = regression_stats(X, s == l, k0)
        W = np.column_stack([A[l], b[l]])
        out += mn_logpdf(W, np.zeros_like(W), Q[l], k0 * np.eye(q + 1)) - mn_logpdf(W, Mn, Q[l], Kn)
    return out
