"""EM for the HMM-GLM with restarts, relative-change convergence and an iteration cap."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numba as nb
import numpy as np
from threadpoolctl import threadpool_limits

from neurodyn.hmmglm import mstep
from neurodyn.hmmglm.basis import HistorySpec
from neurodyn.hmmglm.forward_backward import forward_backward, forward_loglik, viterbi
from neurodyn.hmmglm.learn_basis import update_tau
from neurodyn.hmmglm.model import ModelSpec, Params, state_loglik
from neurodyn.hmmglm.priors import NoPrior, WeightPrior, prior_class

log = logging.getLogger("neurodyn.hmmglm")


@dataclasses.dataclass
class FitResult:
    """Outcome of :func:`fit_hmmglm`.

    Attributes
    ----------
    params : Params
    prior : WeightPrior
    loglik_trace : array (iterations,)
        EM objective (log-likelihood + log priors, nats) after each E-step.
    n_iter : int
        EM iterations of the final (prior) stage.
    converged : bool
    restart_scores : array (restarts,)
        Objective reached by each restart of the unconstrained stage.
    h : array (T, N) or None
        History the final parameters go with (the input ``h``, or the one filtered with the
        learned basis).
    tau : float or None
        Decay (bins) of the basis; None when no :class:`HistorySpec` was given.
    basis : array (L,) or None
        The basis ``h`` was filtered with (learned when the history spec says so).
    tau_trace : array (iterations,) or None
        ``tau`` in force at each entry of ``loglik_trace``.
    """

    params: Params
    prior: WeightPrior
    loglik_trace: np.ndarray
    n_iter: int
    converged: bool
    restart_scores: np.ndarray
    h: np.ndarray | None = None
    tau: float | None = None
    basis: np.ndarray | None = None
    tau_trace: np.ndarray | None = None


def _weight_mask(N: int, self_history: bool) -> np.ndarray:
    mask = np.ones((N, N), dtype=bool)
    if not self_history:
        np.fill_diagonal(mask, False)
    return mask


@nb.njit(cache=True)
def _smoothed_kernel(y, starts, stops, width):
    T, N = y.shape
    out = np.zeros((T, N), dtype=np.float32)
    half = width // 2
    acc = np.zeros(N)
    for s in range(starts.shape[0]):
        a, b = starts[s], stops[s]
        acc[:] = 0.0
        lo, hi = a, a  # window [lo, hi) currently summed
        for t in range(a, b):
            want_lo = max(a, t - half)
            want_hi = min(b, t + half + 1)
            while hi < want_hi:
                for n in range(N):
                    acc[n] += y[hi, n]
                hi += 1
            while lo < want_lo:
                for n in range(N):
                    acc[n] -= y[lo, n]
                lo += 1
            inv = 1.0 / (hi - lo)
            for n in range(N):
                out[t, n] = acc[n] * inv
    return out


def _smoothed(y: np.ndarray, starts: np.ndarray, stops: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average (T, N) float32 of ``width`` bins within each sequence."""
    return _smoothed_kernel(y, np.asarray(starts, np.int64), np.asarray(stops, np.int64), width)


def kmeans(X: np.ndarray, K: int, rng: np.random.Generator, iters: int = 30) -> np.ndarray:
    """Plain k-means++ / Lloyd; returns labels (len(X),)."""
    C = [X[rng.integers(len(X))]]
    for _ in range(1, K):
        d = np.min([((X - c) ** 2).sum(1) for c in C], axis=0)
        p = d / d.sum() if d.sum() > 0 else None
        C.append(X[rng.choice(len(X), p=p)])
    C = np.array(C)
    for _ in range(iters):
        lab = np.argmin(((X[:, None, :] - C[None]) ** 2).sum(-1), axis=1)
        for k in range(K):
            if np.any(lab == k):
                C[k] = X[lab == k].mean(0)
    return lab


def initial_posterior(y: np.ndarray, starts: np.ndarray, stops: np.ndarray, K: int,
                      rng: np.random.Generator, width: int = 25) -> np.ndarray:
    """A soft initial posterior (T, K): 0.9 on the k-means cluster of smoothed activity."""
    T = y.shape[0]
    rows = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
    X = _smoothed(y, starts, stops, width)
    sub = rng.choice(rows, size=min(rows.size, 20000), replace=False)
    mu = np.zeros(X.shape[1])
    sq = np.zeros(X.shape[1])
    for a, b in zip(starts, stops):
        xc = np.asarray(X[a:b], np.float64)
        mu += xc.sum(0)
        sq += (xc * xc).sum(0)
    mu /= rows.size
    sd = np.sqrt(np.maximum(sq / rows.size - mu * mu, 0.0)) + 1e-9
    X -= mu.astype(np.float32)
    X /= sd.astype(np.float32)
    Xs = np.asarray(X[sub], np.float64)
    lab_sub = kmeans(Xs, K, rng)
    C = np.array([Xs[lab_sub == k].mean(0) if np.any(lab_sub == k) else Xs[k]
                  for k in range(K)])
    lab = np.empty(T, dtype=np.int64)
    for a in range(0, T, 1 << 16):
        b = min(T, a + (1 << 16))
        lab[a:b] = np.argmin(((X[a:b, None, :] - C[None]) ** 2).sum(-1), axis=1)
    post = np.full((T, K), 0.1 / max(K - 1, 1))
    post[np.arange(T), lab] = 0.9 if K > 1 else 1.0
    return post


class _EM:
    """State of one EM run on fixed observations (and a history that may be learned)."""

    def __init__(self, y, h, starts, stops, spec: ModelSpec, sticky: float, mstep_iter: int,
                 history: HistorySpec | None = None):
        self.y, self.h, self.starts, self.stops = y, h, starts, stops
        self.spec, self.sticky, self.mstep_iter = spec, sticky, mstep_iter
        self.history = history
        self.tick: Callable[[int], None] = lambda n: None
        self.tau = None if history is None else float(history.tau)
        self.mask = _weight_mask(y.shape[1], spec.self_history)
        rows = np.zeros(y.shape[0], dtype=bool)
        for a, b in zip(starts, stops):
            rows[a:b] = True
        self.rows = rows

    @property
    def learn_tau(self) -> bool:
        return self.history is not None and self.history.learn

    def set_tau(self, tau: float | None, h: np.ndarray | None = None) -> None:
        """Use decay ``tau`` (and its history ``h``, filtered here when not given)."""
        if tau is None or tau == self.tau:
            return
        self.tau = float(tau)
        self.h = self.history.filter(self.y, tau) if h is None else h

    def estep(self, params: Params, prior: WeightPrior) -> tuple[np.ndarray, np.ndarray, float]:
        ll = state_loglik(self.y, self.h, params, self.spec)
        post, xi, seq_ll = forward_backward(ll, params.pi0, params.P, self.starts, self.stops)
        obj = float(seq_ll.sum()) + prior.log_prior(params.W)
        obj += mstep.log_transition_prior(params.P, self.sticky)
        return post, xi, obj

    def mstep(self, params: Params, prior: WeightPrior, post: np.ndarray, xi: np.ndarray
              ) -> mstep.WeightedData:
        p = post.copy()
        p[~self.rows] = 0.0
        data = mstep.weighted_data(self.y, self.h, p)
        prior.update_weights(params, data, self.spec, self.mask, self.mstep_iter)
        prior.after_weights(params, data, self.spec, self.mask)
        if self.spec.observation == "gaussian":
            mstep.update_noise_var(params, data)
        if params.n_states > 1:
            params.P = mstep.update_transitions(xi, self.sticky)
        params.pi0 = mstep.update_initial(post, self.starts)
        return data

    def run(self, params: Params, prior: WeightPrior, max_iter: int, tol: float,
            trace: list[float], taus: list[float]) -> tuple[int, bool]:
        """EM iterations; appends the objective (and the ``tau`` in force) per E-step."""
        prev = None
        for it in range(1, max_iter + 1):
            post, xi, obj = self.estep(params, prior)
            if not np.isfinite(obj):
                raise FloatingPointError("EM objective is not finite")
            self.tick(1)
            trace.append(obj)
            taus.append(np.nan if self.tau is None else self.tau)
            if prev is not None and abs(obj - prev) <= tol * abs(prev):
                return it, True
            prev = obj
            data = self.mstep(params, prior, post, xi)
            if self.learn_tau:
                tau, h = update_tau(self.tau, self.history, data, params, self.spec)
                if h is not None:
                    self.set_tau(tau, h)
        return max_iter, False


def _from_posterior(em: _EM, post: np.ndarray, K: int, N: int, spec: ModelSpec,
                    prior: WeightPrior) -> Params:
    P = np.full((K, K), 0.05 / max(K - 1, 1))
    np.fill_diagonal(P, 0.95 if K > 1 else 1.0)
    mean, sq, n = np.zeros(N), np.zeros(N), 0
    for a, b in zip(em.starts, em.stops):
        yc = np.asarray(em.y[a:b], np.float64)
        mean += yc.sum(0)
        sq += (yc * yc).sum(0)
        n += b - a
    mean /= max(n, 1)
    var = np.maximum(sq / max(n, 1) - mean * mean, 1e-4)
    if spec.observation != "gaussian":
        var = np.ones(N)
    params = Params(pi0=np.full(K, 1.0 / K), P=P, bias=np.zeros((K, N)), W=np.zeros((K, N, N)),
                    noise_var=var)
    m = np.clip(mean, 1e-3, None)
    if spec.observation == "poisson":
        params.bias[:] = {"softplus": np.log(np.expm1(m)), "exp": np.log(m),
                          "sigmoid": -np.log(spec.rate_cap / np.minimum(m, 0.99 * spec.rate_cap) - 1)
                          }[spec.link]
    elif spec.observation == "bernoulli":
        m = np.clip(m, 1e-3, 1 - 1e-3)
        params.bias[:] = np.log(m / (1 - m))
    else:
        params.bias[:] = mean
    xi = np.zeros((K, K))
    em.mstep(params, prior, post, xi)
    params.P = P
    return params


def fit_hmmglm(
    y: np.ndarray,
    h: np.ndarray | None,
    n_states: int,
    *,
    starts: np.ndarray | None = None,
    stops: np.ndarray | None = None,
    spec: ModelSpec | None = None,
    prior: str = "none",
    sigma: float | None = 0.1,
    l2: float = 1e-2,
    sticky: float = 10.0,
    restarts: int = 3,
    max_iter: int = 100,
    tol: float = 1e-5,
    mstep_iter: int = 25,
    restart_iter: int = 15,
    seed: int = 0,
    init: FitResult | None = None,
    history: HistorySpec | None = None,
    tick: Callable[[int], None] | None = None,
) -> FitResult:
    """Fit an HMM-GLM by EM.

    The unconstrained model (``none``) is fitted from ``restarts`` k-means initialisations
    (seeded by ``seed``) to convergence and the best objective kept; the ``gaussian`` or
    ``onehot`` prior is then initialised from its couplings and EM continues to convergence.

    Parameters
    ----------
    y : array (T, N)
        Observations per bin.
    h : array (T, N) or None
        Filtered history (:func:`neurodyn.hmmglm.basis.filter_history`); None to filter
        it here with ``history``.
    n_states : int
    starts, stops : int arrays (S,), optional
        Sequence ranges used for fitting (other rows are ignored); default all of T.
    spec : ModelSpec
    prior : {"none", "gaussian", "onehot"}
    sigma : float or None
        Fixed prior standard deviation of the gaussian prior; None learns it (with a floor).
    l2 : float
        Ridge on W of the ``none`` prior.
    sticky : float
        Extra Dirichlet pseudo-count on self-transitions.
    restarts, max_iter, tol, mstep_iter : int, int, float, int
        Restarts, EM iteration cap, relative-change tolerance, Newton steps per M-step.
    restart_iter : int
        EM iterations each restart runs before the best one continues to convergence.
    seed : int
    init : FitResult, optional
        A finished ``none`` fit on the same data to start the prior stage from (skips the
        restarts; its learned ``tau`` too).
    history : HistorySpec, optional
        How ``h`` was made from ``y``. With ``history.learn`` the decay ``tau`` is learned
        inside EM (every restart starts from ``history.tau``; see
        :mod:`neurodyn.hmmglm.learn_basis`) and the result carries the final ``h``, ``tau``,
        basis and a ``tau`` trace.
    tick : callable, optional
        Called with the number of EM iterations done, for progress; over a whole fit the
        calls add up to :func:`fit_budget`.

    Returns
    -------
    FitResult

    Notes
    -----
    BLAS is limited to one thread while fitting: the products are small (T x N by N x N) and
    threaded BLAS only adds contention on shared machines.
    """
    done = [0]

    def count(n: int) -> None:
        done[0] += n
        if tick is not None:
            tick(n)

    with threadpool_limits(limits=1, user_api="blas"):
        res = _fit(y, h, n_states, starts, stops, spec or ModelSpec(), prior, sigma, l2, sticky,
                   restarts, max_iter, tol, mstep_iter, restart_iter, seed, init, history, count)
    left = fit_budget(restarts, max_iter, prior_class(prior) is not NoPrior, restart_iter) - done[0]
    if tick is not None and left > 0:
        tick(left)
    return res


def fit_budget(restarts: int, max_iter: int, prior_stage: bool = False,
               restart_iter: int = 15) -> int:
    """Upper bound on the EM iterations of one :func:`fit_hmmglm` (the progress bar's unit);
    ``prior_stage``: a prior other than ``none`` continues EM after the restarts."""
    return (max(1, restarts) * min(restart_iter, max_iter) + max_iter
            + (max_iter if prior_stage else 0))


def _fit(y, h, n_states, starts, stops, spec, prior, sigma, l2, sticky, restarts, max_iter, tol,
         mstep_iter, restart_iter, seed, init, history, tick) -> FitResult:
    T, N = y.shape
    if h is None:
        if history is None:
            raise ValueError("give the history h or a HistorySpec to filter it")
        h = history.filter(y)
    if starts is None:
        starts, stops = np.array([0], np.int64), np.array([T], np.int64)
    starts = np.asarray(starts, np.int64)
    stops = np.asarray(stops, np.int64)
    K = int(n_states)
    em = _EM(y, h, starts, stops, spec, sticky, mstep_iter, history)
    em.tick = tick
    tau0, h0 = em.tau, em.h
    rng = np.random.default_rng(seed)
    best = None
    scores = []
    if init is not None:
        if type(init.prior) is not NoPrior or init.params.n_states != K:
            raise ValueError("init must be a 'none' fit with the same number of states")
        taus0 = [] if init.tau_trace is None else list(init.tau_trace)
        best = (init.params.copy(), init.prior, init.n_iter, list(init.loglik_trace),
                init.converged, taus0, init.tau, init.h)
        scores = list(init.restart_scores)
    for r in range(0 if init is not None else max(1, restarts)):
        em.set_tau(tau0, h0)
        base = NoPrior(l2=l2)
        post = initial_posterior(y, starts, stops, K, rng)
        post[~em.rows] = 0.0
        params = _from_posterior(em, post, K, N, spec, base)
        trace: list[float] = []
        taus: list[float] = []
        n_it, conv = em.run(params, base, min(max_iter, restart_iter), tol, trace, taus)
        scores.append(trace[-1])
        log.info("restart %d: objective %.2f after %d iterations", r, trace[-1], n_it)
        if best is None or trace[-1] > best[3][-1]:
            best = (params, base, n_it, trace, conv, taus, em.tau, em.h)
    params, base, n_it, trace, conv, taus, tau, hb = best
    em.set_tau(tau, hb)
    if init is None and not conv and n_it < max_iter:
        more, conv = em.run(params, base, max_iter - n_it, tol, trace, taus)
        n_it += more
    cls = prior_class(prior)
    if cls is not NoPrior:
        ps = cls.from_weights(params.W, em.mask, l2=l2, sigma=sigma)
        params = params.copy()
        params.W = ps.start_weights(params.W)
        trace2: list[float] = []
        n_it, conv = em.run(params, ps, max_iter, tol, trace2, taus)
        trace, base = trace + trace2, ps
    return FitResult(params, base, np.asarray(trace), n_it, conv, np.asarray(scores),
                     h=em.h, tau=em.tau,
                     basis=None if history is None else history.basis(em.tau),
                     tau_trace=None if history is None else np.asarray(taus))


def decode(y: np.ndarray, h: np.ndarray, params: Params, spec: ModelSpec,
           starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior (T, K), Viterbi path (T,) and log-likelihood (nats) of each sequence (S,)."""
    ll = state_loglik(y, h, params, spec)
    post, _, seq_ll = forward_backward(ll, params.pi0, params.P, starts, stops)
    path = viterbi(ll, params.pi0, params.P, starts, stops)
    return post, path, seq_ll


def posterior_and_path(y: np.ndarray, h: np.ndarray, params: Params, spec: ModelSpec,
                       starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Posterior (T, K), Viterbi path (T,) and total log-likelihood (nats) over the sequences."""
    post, path, seq_ll = decode(y, h, params, spec, starts, stops)
    return post, path, float(seq_ll.sum())


def heldout_loglik(y: np.ndarray, h: np.ndarray, params: Params, spec: ModelSpec,
                   starts: np.ndarray, stops: np.ndarray) -> float:
    """Marginal log-likelihood (nats) of the blocks ``[starts, stops)`` under fitted params."""
    ll = state_loglik(y, h, params, spec)
    return float(forward_loglik(ll, params.pi0, params.P, starts, stops).sum())
