"""Exact HMM inference over many sequences: forward-backward and Viterbi (numba kernels).

Sequences are index ranges ``[starts[s], stops[s])`` into one ``(T, K)`` array of per-state
log-likelihoods, so trials and held-out blocks share one array without copies.

The forward-backward pass works on log-domain emissions: each time step subtracts the row
maximum of the log-likelihoods before exponentiating and renormalises the forward message,
carrying the log normaliser (the classic "scaled" recursion). This is exact and cannot
underflow in practice; if a normaliser still underflows (an observation impossible under
every reachable state), that sequence is recomputed with a pure log-sum-exp recursion.
Expected transition counts are accumulated on the fly during the backward pass: no
``K x K x T`` array is ever formed. Memory is ``O(T K)`` for the posterior only.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_TINY = 1e-300


@nb.njit(cache=True)
def _logsumexp(v: np.ndarray) -> float:
    m = v.max()
    if not np.isfinite(m):
        return m
    s = 0.0
    for i in range(v.shape[0]):
        s += np.exp(v[i] - m)
    return m + np.log(s)


@nb.njit(cache=True)
def _fb_scaled_one(ll, a, b, pi0, P, post, xi):
    """Scaled forward-backward on ``ll[a:b]``; returns log p(y) or NaN on underflow."""
    K = ll.shape[1]
    n = b - a
    em = np.empty((n, K))
    logc = 0.0
    for t in range(n):
        m = ll[a + t, 0]
        for k in range(1, K):
            if ll[a + t, k] > m:
                m = ll[a + t, k]
        for k in range(K):
            em[t, k] = np.exp(ll[a + t, k] - m)
        logc += m
    c = np.empty(n)
    # forward: post[a+t] holds the normalised forward message alpha_t
    s = 0.0
    for k in range(K):
        v = pi0[k] * em[0, k]
        post[a, k] = v
        s += v
    if not s > _TINY:
        return np.nan
    c[0] = s
    for k in range(K):
        post[a, k] /= s
    for t in range(1, n):
        s = 0.0
        for j in range(K):
            acc = 0.0
            for i in range(K):
                acc += post[a + t - 1, i] * P[i, j]
            v = acc * em[t, j]
            post[a + t, j] = v
            s += v
        if not s > _TINY:
            return np.nan
        c[t] = s
        for j in range(K):
            post[a + t, j] /= s
    loglik = logc
    for t in range(n):
        loglik += np.log(c[t])
    # backward: beta kept as one vector; posterior = alpha * beta in place
    beta = np.ones(K)
    nb_ = np.empty(K)
    tmp = np.empty(K)
    for t in range(n - 1, 0, -1):
        for j in range(K):
            tmp[j] = em[t, j] * beta[j] / c[t]
        for i in range(K):
            acc = 0.0
            ai = post[a + t - 1, i]
            for j in range(K):
                w = P[i, j] * tmp[j]
                acc += w
                xi[i, j] += ai * w
            nb_[i] = acc
        for k in range(K):
            post[a + t, k] *= beta[k]
        for k in range(K):
            beta[k] = nb_[k]
    for k in range(K):
        post[a, k] *= beta[k]
    return loglik


@nb.njit(cache=True)
def _fb_log_one(ll, a, b, log_pi0, log_P, post, xi):
    """Pure log-space forward-backward on ``ll[a:b]`` (fallback); returns log p(y)."""
    K = ll.shape[1]
    n = b - a
    la = np.empty((n, K))
    v = np.empty(K)
    for k in range(K):
        la[0, k] = log_pi0[k] + ll[a, k]
    for t in range(1, n):
        for j in range(K):
            for i in range(K):
                v[i] = la[t - 1, i] + log_P[i, j]
            la[t, j] = _logsumexp(v) + ll[a + t, j]
    total = _logsumexp(la[n - 1])
    lb = np.zeros(K)
    nlb = np.empty(K)
    xil = np.empty((K, K))
    for t in range(n - 1, -1, -1):
        for k in range(K):
            post[a + t, k] = np.exp(la[t, k] + lb[k] - total)
        if t == 0:
            break
        for i in range(K):
            for j in range(K):
                xil[i, j] = la[t - 1, i] + log_P[i, j] + ll[a + t, j] + lb[j] - total
                xi[i, j] += np.exp(xil[i, j])
            for j in range(K):
                v[j] = log_P[i, j] + ll[a + t, j] + lb[j]
            nlb[i] = _logsumexp(v)
        for k in range(K):
            lb[k] = nlb[k]
    return total


@nb.njit(cache=True)
def _forward_backward(ll, starts, stops, pi0, P):
    T, K = ll.shape
    post = np.zeros((T, K))
    xi = np.zeros((K, K))
    seq_ll = np.empty(starts.shape[0])
    log_pi0 = np.log(pi0)
    log_P = np.log(P)
    xs = np.zeros((K, K))
    for s in range(starts.shape[0]):
        a, b = starts[s], stops[s]
        xs[:, :] = 0.0
        v = _fb_scaled_one(ll, a, b, pi0, P, post, xs)
        if np.isnan(v):
            xs[:, :] = 0.0
            v = _fb_log_one(ll, a, b, log_pi0, log_P, post, xs)
        seq_ll[s] = v
        xi += xs
    return post, xi, seq_ll


@nb.njit(cache=True)
def _forward_loglik(ll, starts, stops, pi0, P):
    """Forward pass only (scaled, log fallback): log p(y) per sequence."""
    K = ll.shape[1]
    out = np.empty(starts.shape[0])
    log_pi0 = np.log(pi0)
    log_P = np.log(P)
    alpha = np.empty(K)
    nxt = np.empty(K)
    em = np.empty(K)
    v = np.empty(K)
    for s in range(starts.shape[0]):
        a, b = starts[s], stops[s]
        total = 0.0
        ok = True
        for t in range(a, b):
            m = ll[t].max()
            for k in range(K):
                em[k] = np.exp(ll[t, k] - m)
            tot = 0.0
            for j in range(K):
                if t == a:
                    acc = pi0[j]
                else:
                    acc = 0.0
                    for i in range(K):
                        acc += alpha[i] * P[i, j]
                nxt[j] = acc * em[j]
                tot += nxt[j]
            if not tot > _TINY:
                ok = False
                break
            for k in range(K):
                alpha[k] = nxt[k] / tot
            total += m + np.log(tot)
        if not ok:
            la = np.empty(K)
            for k in range(K):
                la[k] = log_pi0[k] + ll[a, k]
            for t in range(a + 1, b):
                for j in range(K):
                    for i in range(K):
                        v[i] = la[i] + log_P[i, j]
                    nxt[j] = _logsumexp(v) + ll[t, j]
                for k in range(K):
                    la[k] = nxt[k]
            total = _logsumexp(la)
        out[s] = total
    return out


@nb.njit(cache=True)
def _viterbi(ll, starts, stops, log_pi0, log_P):
    T, K = ll.shape
    path = np.empty(T, dtype=np.int64)
    back = np.empty((T, K), dtype=np.int32)
    delta = np.empty(K)
    nd = np.empty(K)
    for s in range(starts.shape[0]):
        a, b = starts[s], stops[s]
        for k in range(K):
            delta[k] = log_pi0[k] + ll[a, k]
        for t in range(a + 1, b):
            for j in range(K):
                best = -np.inf
                arg = 0
                for i in range(K):
                    v = delta[i] + log_P[i, j]
                    if v > best:
                        best = v
                        arg = i
                nd[j] = best + ll[t, j]
                back[t, j] = arg
            for k in range(K):
                delta[k] = nd[k]
        k = int(np.argmax(delta))
        path[b - 1] = k
        for t in range(b - 1, a, -1):
            k = back[t, k]
            path[t - 1] = k
    return path


def _segments(T: int, starts: np.ndarray | None, stops: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if starts is None:
        return np.array([0], dtype=np.int64), np.array([T], dtype=np.int64)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    stops = np.ascontiguousarray(stops, dtype=np.int64)
    if starts.shape != stops.shape or np.any(stops <= starts) or starts.min() < 0 or stops.max() > T:
        raise ValueError("segments must be non-empty ranges inside [0, T)")
    return starts, stops


def forward_backward(
    log_lik: np.ndarray,
    pi0: np.ndarray,
    P: np.ndarray,
    starts: np.ndarray | None = None,
    stops: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior state probabilities and expected transition counts.

    Parameters
    ----------
    log_lik : array (T, K)
        ``log p(y_t | z_t = k)`` (nats).
    pi0 : array (K,)
        Initial state distribution (each sequence starts from it).
    P : array (K, K)
        Transition matrix, rows sum to 1 (``P[i, j] = p(z_{t+1}=j | z_t=i)``).
    starts, stops : int arrays (S,), optional
        Sequence ranges ``[starts[s], stops[s])``; default one sequence over all T.

    Returns
    -------
    posterior : array (T, K)
        ``p(z_t = k | y)``; rows outside every sequence are 0.
    xi : array (K, K)
        Expected transition counts summed over time and sequences.
    seq_loglik : array (S,)
        ``log p(y)`` of each sequence (nats).
    """
    ll = np.ascontiguousarray(log_lik, dtype=np.float64)
    a, b = _segments(ll.shape[0], starts, stops)
    return _forward_backward(ll, a, b, np.asarray(pi0, np.float64), np.ascontiguousarray(P, np.float64))


def forward_loglik(
    log_lik: np.ndarray,
    pi0: np.ndarray,
    P: np.ndarray,
    starts: np.ndarray | None = None,
    stops: np.ndarray | None = None,
) -> np.ndarray:
    """``log p(y)`` of each sequence (S,) by the forward pass alone (nats)."""
    ll = np.ascontiguousarray(log_lik, dtype=np.float64)
    a, b = _segments(ll.shape[0], starts, stops)
    return _forward_loglik(ll, a, b, np.asarray(pi0, np.float64), np.ascontiguousarray(P, np.float64))


def viterbi(
    log_lik: np.ndarray,
    pi0: np.ndarray,
    P: np.ndarray,
    starts: np.ndarray | None = None,
    stops: np.ndarray | None = None,
) -> np.ndarray:
    """Most probable state path (T,) int64 per sequence (entries outside sequences undefined)."""
    ll = np.ascontiguousarray(log_lik, dtype=np.float64)
    a, b = _segments(ll.shape[0], starts, stops)
    with np.errstate(divide="ignore"):
        lp0 = np.log(np.asarray(pi0, np.float64))
        lP = np.log(np.ascontiguousarray(P, np.float64))
    return _viterbi(ll, a, b, lp0, lP)
