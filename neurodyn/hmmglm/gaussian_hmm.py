"""Gaussian hidden Markov model with sticky transitions and an exact minimum dwell.

Observations ``X`` (T, D) are Gaussian given the state, with a full or diagonal covariance
per state. Inference reuses the numba forward-backward / Viterbi kernels of
:mod:`neurodyn.hmmglm.forward_backward`: only the per-state log-likelihood differs from the
HMM-GLM.

Minimum dwell
    A state entered must last at least ``dwell`` samples. Each state is expanded into a
    chain of ``dwell`` sub-states that share its emission: sub-states ``0 .. dwell-2`` advance
    deterministically, the last one stays with ``P[k, k]`` or leaves to the first sub-state of
    another state with ``P[k, l]``. Forward-backward on the expanded chain is exact (a
    hidden semi-Markov model with shifted-geometric durations); the expected counts are
    folded back onto the ``K x K`` matrix. Sequences may start in the free (last) sub-state,
    so the first segment of a sequence, which began before the recording, is not constrained.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
from scipy.linalg import solve_triangular
from threadpoolctl import threadpool_limits

from neurodyn.hmmglm.fit import kmeans
from neurodyn.hmmglm.forward_backward import forward_backward, forward_loglik, viterbi
from neurodyn.hmmglm.mstep import log_transition_prior, update_initial, update_transitions

COVARIANCES = ("full", "diag")
Tick = Callable[[int], None]


@dataclasses.dataclass
class GaussianHMM:
    """Parameters of a Gaussian HMM.

    Attributes
    ----------
    pi0 : array (K,)
        Initial state distribution.
    P : array (K, K)
        Transitions of the free sub-state (``P[k, k]``: stay once the minimum dwell is over).
    means : array (K, D)
    covs : array (K, D, D) (full) or (K, D) (diagonal variances)
    dwell : int
        Minimum samples a state lasts once entered (1 = plain HMM).
    """

    pi0: np.ndarray
    P: np.ndarray
    means: np.ndarray
    covs: np.ndarray
    dwell: int = 1

    @property
    def n_states(self) -> int:
        return self.means.shape[0]

    @property
    def covariance(self) -> str:
        return "diag" if self.covs.ndim == 2 else "full"

    def mean_dwell(self) -> np.ndarray:
        """Expected samples per visit of each state (K,): ``dwell - 1 + 1 / (1 - P[k, k])``."""
        stay = np.clip(np.diag(self.P), 0.0, 1.0 - 1e-12)
        return self.dwell - 1 + 1.0 / (1.0 - stay)


def emission_loglik(X: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """``log N(x_t; mean_k, cov_k)`` (T, K) in nats; ``covs`` (K, D, D) full or (K, D) diagonal."""
    X = np.asarray(X, np.float64)
    T, D = X.shape
    K = means.shape[0]
    out = np.empty((T, K))
    c = -0.5 * D * math.log(2.0 * math.pi)
    for k in range(K):
        d = X - means[k]
        if covs.ndim == 2:
            v = covs[k]
            out[:, k] = c - 0.5 * (d * d / v).sum(axis=1) - 0.5 * float(np.log(v).sum())
        else:
            L = np.linalg.cholesky(covs[k])
            z = solve_triangular(L, d.T, lower=True, check_finite=False)
            out[:, k] = c - 0.5 * (z * z).sum(axis=0) - float(np.log(np.diag(L)).sum())
    return out


def expand(pi0: np.ndarray, P: np.ndarray, dwell: int) -> tuple[np.ndarray, np.ndarray]:
    """Initial distribution (K d,) and transitions (K d, K d) of the minimum-dwell chain."""
    K = P.shape[0]
    if dwell <= 1:
        return pi0, P
    n = K * dwell
    Pe = np.zeros((n, n))
    pe = np.zeros(n)
    for k in range(K):
        first = k * dwell
        last = first + dwell - 1
        for j in range(dwell - 1):
            Pe[first + j, first + j + 1] = 1.0
        for j in range(K):
            Pe[last, last if j == k else j * dwell] = P[k, j]
        pe[last] = pi0[k]
    return pe, Pe


def _fold(post: np.ndarray, xi: np.ndarray, K: int, dwell: int) -> tuple[np.ndarray, np.ndarray]:
    """Expanded posteriors (T, K d) and counts (K d, K d) back onto the K states."""
    if dwell <= 1:
        return post, xi
    T = post.shape[0]
    p = post.reshape(T, K, dwell).sum(axis=2)
    x = np.empty((K, K))
    for k in range(K):
        last = k * dwell + dwell - 1
        for j in range(K):
            x[k, j] = xi[last, last if j == k else j * dwell]
    return p, x


def _emissions(model: GaussianHMM, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ll = emission_loglik(X, model.means, model.covs)
    pe, Pe = expand(model.pi0, model.P, model.dwell)
    if model.dwell > 1:
        ll = np.repeat(ll, model.dwell, axis=1)
    return ll, pe, Pe


def posterior(model: GaussianHMM, X: np.ndarray, starts: np.ndarray, stops: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """State posterior (T, K), expected transition counts (K, K), log p(X) per sequence (S,)."""
    ll, pe, Pe = _emissions(model, X)
    post, xi, seq_ll = forward_backward(ll, pe, Pe, starts, stops)
    post, xi = _fold(post, xi, model.n_states, model.dwell)
    return post, xi, seq_ll


def decode(model: GaussianHMM, X: np.ndarray, starts: np.ndarray, stops: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior (T, K), Viterbi path (T,) honouring the minimum dwell, log p(X) per sequence."""
    ll, pe, Pe = _emissions(model, X)
    post, xi, seq_ll = forward_backward(ll, pe, Pe, starts, stops)
    path = viterbi(ll, pe, Pe, starts, stops) // max(model.dwell, 1)
    return _fold(post, xi, model.n_states, model.dwell)[0], path, seq_ll


def heldout_loglik(model: GaussianHMM, X: np.ndarray, starts: np.ndarray, stops: np.ndarray
                   ) -> float:
    """Marginal log-likelihood (nats) of the blocks ``[starts, stops)``."""
    ll, pe, Pe = _emissions(model, X)
    return float(forward_loglik(ll, pe, Pe, starts, stops).sum())


def m_step(X: np.ndarray, post: np.ndarray, xi: np.ndarray, starts: np.ndarray,
           covariance: str, sticky: float, reg: float, dwell: int) -> GaussianHMM:
    """MAP update of all parameters from posteriors ``post`` (T, K) (0 outside the data) and
    expected transition counts ``xi`` (K, K). ``reg`` is added to every variance."""
    K = post.shape[1]
    D = X.shape[1]
    nk = post.sum(axis=0) + 1e-10
    means = (post.T @ X) / nk[:, None]
    if covariance == "diag":
        sq = post.T @ (X * X) / nk[:, None]
        covs = np.maximum(sq - means ** 2, 0.0) + reg
    else:
        covs = np.empty((K, D, D))
        for k in range(K):
            d = X - means[k]
            covs[k] = (d * post[:, k:k + 1]).T @ d / nk[k] + reg * np.eye(D)
    P = update_transitions(xi, sticky) if K > 1 else np.ones((1, 1))
    return GaussianHMM(update_initial(post, starts), P, means, covs, dwell)


@dataclasses.dataclass
class GaussianFit:
    """Outcome of :func:`fit_gaussian_hmm`.

    Attributes
    ----------
    model : GaussianHMM
    loglik_trace : array (iterations,)
        EM objective (log-likelihood + log transition prior, nats) per E-step of the kept run.
    n_iter : int
    converged : bool
    restart_scores : array (restarts,)
        Objective each restart reached before the best one continued.
    """

    model: GaussianHMM
    loglik_trace: np.ndarray
    n_iter: int
    converged: bool
    restart_scores: np.ndarray


def fit_budget(restarts: int, max_iter: int, restart_iter: int = 15) -> int:
    """Upper bound on the EM iterations of one fit (the progress bar's unit)."""
    return max(1, restarts) * min(restart_iter, max_iter) + max_iter


def _init(X, rows, K, covariance, sticky, reg, dwell, starts, rng) -> GaussianHMM:
    sub = rng.choice(rows, size=min(rows.size, 20000), replace=False)
    lab = kmeans(X[sub], K, rng)
    C = np.array([X[sub][lab == k].mean(0) if np.any(lab == k) else X[sub][k] for k in range(K)])
    post = np.zeros((X.shape[0], K))
    d2 = ((X[rows, None, :] - C[None]) ** 2).sum(-1)
    post[rows] = 0.1 / max(K - 1, 1)
    post[rows, np.argmin(d2, axis=1)] = 0.9 if K > 1 else 1.0
    P = np.full((K, K), 0.05 / max(K - 1, 1))
    np.fill_diagonal(P, 0.95 if K > 1 else 1.0)
    m = m_step(X, post, np.zeros((K, K)), starts, covariance, sticky, reg, dwell)
    m.P = P
    return m


def _em(model, X, starts, stops, covariance, sticky, reg, max_iter, tol, trace, tick):
    prev = None
    for it in range(1, max_iter + 1):
        post, xi, seq_ll = posterior(model, X, starts, stops)
        obj = float(seq_ll.sum()) + log_transition_prior(model.P, sticky)
        if not np.isfinite(obj):
            raise FloatingPointError("EM objective is not finite")
        trace.append(obj)
        if tick is not None:
            tick(1)
        if prev is not None and abs(obj - prev) <= tol * abs(prev):
            return model, it, True
        prev = obj
        model = m_step(X, post, xi, starts, covariance, sticky, reg, model.dwell)
    return model, max_iter, False


def fit_gaussian_hmm(
    X: np.ndarray,
    n_states: int,
    *,
    starts: np.ndarray | None = None,
    stops: np.ndarray | None = None,
    covariance: str = "full",
    sticky: float = 10.0,
    min_dwell: int = 1,
    restarts: int = 3,
    max_iter: int = 100,
    tol: float = 1e-5,
    restart_iter: int = 15,
    reg: float = 1e-3,
    seed: int = 0,
    init: GaussianHMM | None = None,
    tick: Tick | None = None,
) -> GaussianFit:
    """Fit a Gaussian HMM by EM.

    ``restarts`` k-means initialisations (seeded by ``seed``) each run ``restart_iter``
    iterations; the best continues to convergence (relative change of the objective
    ``<= tol``) or ``max_iter``.

    Parameters
    ----------
    X : array (T, D)
        Observations (standardised features).
    n_states : int
    starts, stops : int arrays (S,), optional
        Sequences used for fitting (other rows are ignored); default all of T.
    covariance : {"full", "diag"}
    sticky : float
        Extra Dirichlet pseudo-count on self-transitions.
    min_dwell : int
        Minimum samples per visit of a state (see the module notes).
    reg : float
        Added to every variance (keeps covariances positive definite).
    init : GaussianHMM, optional
        Start EM from these parameters (no restarts; ``min_dwell`` is taken from it).
    tick : callable, optional
        Called with the number of EM iterations done, for progress; over a whole fit the
        calls add up to :func:`fit_budget`.

    Returns
    -------
    GaussianFit
    """
    if covariance not in COVARIANCES:
        raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
    X = np.ascontiguousarray(X, np.float64)
    T = X.shape[0]
    if starts is None:
        starts, stops = np.array([0], np.int64), np.array([T], np.int64)
    starts = np.asarray(starts, np.int64)
    stops = np.asarray(stops, np.int64)
    rows = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
    K = int(n_states)
    if K < 1 or K > rows.size:
        raise ValueError(f"{K} states for {rows.size} samples")
    dwell = max(1, int(min_dwell))
    rng = np.random.default_rng(seed)
    budget = fit_budget(restarts, max_iter, restart_iter)
    used = 0

    def count(n: int) -> None:
        nonlocal used
        used += n
        if tick is not None:
            tick(n)

    args = (X, starts, stops, covariance, sticky, reg)
    best, scores = None, []
    with threadpool_limits(limits=1, user_api="blas"):
        if init is not None:
            trace: list[float] = []
            m, n_it, conv = _em(dataclasses.replace(init), *args, max_iter, tol, trace, count)
            if tick is not None and budget > used:
                tick(budget - used)
            return GaussianFit(m, np.asarray(trace), n_it, conv, np.asarray([trace[-1]]))
        for _ in range(max(1, restarts) if K > 1 else 1):
            m = _init(X, rows, K, covariance, sticky, reg, dwell, starts, rng)
            trace: list[float] = []
            m, n_it, conv = _em(m, *args, min(restart_iter, max_iter), tol, trace, count)
            scores.append(trace[-1])
            if best is None or trace[-1] > best[1][-1]:
                best = (m, trace, n_it, conv)
        m, trace, n_it, conv = best
        if not conv and n_it < max_iter:
            m, more, conv = _em(m, *args, max_iter - n_it, tol, trace, count)
            n_it += more
    if tick is not None and budget > used:
        tick(budget - used)
    return GaussianFit(m, np.asarray(trace), n_it, conv, np.asarray(scores))
