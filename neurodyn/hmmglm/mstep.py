"""M-step: expected complete-data log posterior of the GLM weights, with analytic gradients.

For each state ``k`` only the bins with posterior weight ``gamma[t, k] > GAMMA_FLOOR`` enter
its objective (the dropped mass is negligible and the sums get ~K times cheaper once the
posterior is confident). Objectives are scaled by ``1 / (T N)`` for the optimiser.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from scipy.optimize import minimize

from neurodyn.hmmglm.model import ModelSpec, Params, _ll_and_grad, weighted_terms
from neurodyn.hmmglm.priors import PriorState

GAMMA_FLOOR = 1e-6


def state_subsets(y: np.ndarray, h: np.ndarray, gamma: np.ndarray,
                  floor: float = GAMMA_FLOOR) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per state, the bins it plausibly explains: ``(y_k (T_k, N), h_k (T_k, N), w_k (T_k,))``."""
    out = []
    for k in range(gamma.shape[1]):
        idx = np.flatnonzero(gamma[:, k] > floor)
        out.append((np.ascontiguousarray(y[idx]), np.asarray(h[idx], np.float64),
                    np.ascontiguousarray(gamma[idx, k])))
    return out


def _unpack_free(theta: np.ndarray, K: int, N: int, mask: np.ndarray):
    bias = theta[:K * N].reshape(K, N)
    W = theta[K * N:].reshape(K, N, N) * mask[None]
    return bias, W


def free_objective(theta: np.ndarray, subsets, spec: ModelSpec, var: np.ndarray,
                   prior: PriorState, mask: np.ndarray, scale: float) -> tuple[float, np.ndarray]:
    """Negative expected log posterior in ``theta = (bias (K, N), W (K, N, N))`` and its gradient.

    Used for the ``none`` (ridge) and ``gaussian`` (``N(W0, sigma2)``, W0 fixed) priors.
    """
    K = len(subsets)
    N = mask.shape[0]
    bias, W = _unpack_free(theta, K, N, mask)
    f = 0.0
    gb = np.zeros((K, N))
    gW = np.zeros((K, N, N))
    for k, (yk, hk, wk) in enumerate(subsets):
        if wk.size == 0:
            continue
        eta = hk @ W[k].T + bias[k]
        tot, G = weighted_terms(eta, yk, wk, spec.code, spec.rate_cap, var)
        f -= tot
        gb[k] = -G.sum(axis=0)
        gW[k] = -(G.T @ hk)
    if prior.kind == "gaussian":
        d = W - prior.W0[None]
        f += 0.5 * float(np.sum(d * d)) / prior.sigma2
        gW += d / prior.sigma2
    else:
        f += 0.5 * prior.l2 * float(np.sum(W * W))
        gW += prior.l2 * W
    gW *= mask[None]
    return f * scale, np.concatenate([gb.ravel(), gW.ravel()]) * scale


def onehot_objective(theta: np.ndarray, subsets, spec: ModelSpec, var: np.ndarray,
                     A: np.ndarray, mask: np.ndarray, scale: float) -> tuple[float, np.ndarray]:
    """Negative expected log-likelihood in ``theta = (bias (K, N), strength (N, N))`` given classes
    ``A`` (K, N, N) in {-1, 0, 1}; ``W[k] = A[k] * strength``. Returns value and gradient."""
    K = len(subsets)
    N = mask.shape[0]
    bias = theta[:K * N].reshape(K, N)
    S = theta[K * N:].reshape(N, N) * mask
    f = 0.0
    gb = np.zeros((K, N))
    gS = np.zeros((N, N))
    for k, (yk, hk, wk) in enumerate(subsets):
        if wk.size == 0:
            continue
        Wk = A[k] * S
        eta = hk @ Wk.T + bias[k]
        tot, G = weighted_terms(eta, yk, wk, spec.code, spec.rate_cap, var)
        f -= tot
        gb[k] = -G.sum(axis=0)
        gS += -(G.T @ hk) * A[k]
    gS *= mask
    return f * scale, np.concatenate([gb.ravel(), gS.ravel()]) * scale


def _scale(subsets, N: int) -> float:
    tot = sum(float(w.sum()) for _, _, w in subsets)
    return 1.0 / max(tot * N, 1.0)


def update_weights(params: Params, prior: PriorState, subsets, spec: ModelSpec,
                   mask: np.ndarray, maxiter: int = 50) -> None:
    """Quasi-Newton (L-BFGS) update of biases and couplings in place, warm-started."""
    K, N = params.bias.shape
    scale = _scale(subsets, N)
    var = np.asarray(params.noise_var, np.float64)
    if prior.kind == "onehot":
        A = prior.adjacency.astype(np.float64)
        x0 = np.concatenate([params.bias.ravel(), prior.strength.ravel()])
        bounds = [(None, None)] * (K * N) + [(0.0, None)] * (N * N)
        res = minimize(onehot_objective, x0, args=(subsets, spec, var, A, mask, scale), jac=True,
                       method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter})
        params.bias = res.x[:K * N].reshape(K, N).copy()
        prior.strength = res.x[K * N:].reshape(N, N) * mask
        params.W = A * prior.strength[None]
        return
    x0 = np.concatenate([params.bias.ravel(), params.W.ravel()])
    res = minimize(free_objective, x0, args=(subsets, spec, var, prior, mask, scale), jac=True,
                   method="L-BFGS-B", options={"maxiter": maxiter})
    bias, W = _unpack_free(res.x, K, N, mask)
    params.bias, params.W = bias.copy(), W.copy()


@nb.njit(cache=True)
def _sweep(h, y, w, eta, S, A, logtab, code, cap, var, self_history, probs):
    T, N = eta.shape
    Q = np.empty(3)
    for n in range(N):
        for m in range(N):
            if m == n and not self_history:
                probs[n, m, 0] = 0.0
                probs[n, m, 1] = 1.0
                probs[n, m, 2] = 0.0
                continue
            c0 = A[n, m]
            for ci in range(3):
                Q[ci] = logtab[n, m, ci]
            s = S[n, m]
            for t in range(T):
                hv = h[t, m]
                if hv == 0.0:
                    continue
                yv = float(y[t, n])
                e0 = eta[t, n] - c0 * s * hv
                for ci in range(3):
                    v, _ = _ll_and_grad(yv, e0 + (ci - 1) * s * hv, code, cap, var[n])
                    Q[ci] += w[t] * v
            best = 0
            for ci in range(1, 3):
                if Q[ci] > Q[best]:
                    best = ci
            mx = Q[best]
            z = 0.0
            for ci in range(3):
                z += math.exp(Q[ci] - mx)
            for ci in range(3):
                probs[n, m, ci] = math.exp(Q[ci] - mx) / z
            c1 = best - 1
            if c1 != c0:
                d = (c1 - c0) * s
                for t in range(T):
                    eta[t, n] += d * h[t, m]
                A[n, m] = c1


def onehot_sweep(params: Params, prior: PriorState, subsets, spec: ModelSpec) -> None:
    """One coordinate sweep over the adjacency classes of every state and pair, in place.

    For each pair ``(n, m)`` of state ``k`` the three classes are scored exactly by the
    expected complete-data log-likelihood of neuron ``n`` (all other pairs held at their
    current class) plus ``log table[n, m, class]``; the pair takes the best class (iterated
    conditional modes, so the EM objective never decreases) and its normalised conditional
    posterior over the 3 classes is stored in ``prior.adjacency_prob``.
    """
    K, N = params.bias.shape
    var = np.asarray(params.noise_var, np.float64)
    logtab = np.log(prior.table)
    for k, (yk, hk, wk) in enumerate(subsets):
        if wk.size == 0:
            continue
        eta = hk @ params.W[k].T + params.bias[k]
        A = prior.adjacency[k].astype(np.int64)
        _sweep(hk, yk, wk, eta, prior.strength, A, logtab, spec.code, spec.rate_cap, var,
               spec.self_history, prior.adjacency_prob[k])
        prior.adjacency[k] = A
    params.W = prior.adjacency * prior.strength[None]


def update_noise_var(params: Params, subsets, floor: float = 1e-4) -> None:
    """Closed-form update of the Gaussian observation noise variance per neuron."""
    N = params.n_neurons
    num = np.zeros(N)
    den = 0.0
    for k, (yk, hk, wk) in enumerate(subsets):
        if wk.size == 0:
            continue
        r = yk - (hk @ params.W[k].T + params.bias[k])
        num += wk @ (r * r)
        den += float(wk.sum())
    params.noise_var = np.maximum(num / max(den, 1e-12), floor)


def update_transitions(xi: np.ndarray, sticky: float, alpha: float = 1.0) -> np.ndarray:
    """MAP transition matrix under the sticky Dirichlet prior ``Dir(alpha + sticky * e_i)`` per row.

    ``P[i, j] ∝ xi[i, j] + alpha - 1 + sticky * [i == j]`` (``alpha >= 1``).
    """
    K = xi.shape[0]
    counts = xi + (alpha - 1.0) + sticky * np.eye(K) + 1e-10
    return counts / counts.sum(axis=1, keepdims=True)


def log_transition_prior(P: np.ndarray, sticky: float, alpha: float = 1.0) -> float:
    """Log density (up to constants) of ``P`` under the sticky Dirichlet prior."""
    K = P.shape[0]
    return float(np.sum(((alpha - 1.0) + sticky * np.eye(K)) * np.log(P)))


def update_initial(post: np.ndarray, starts: np.ndarray, pseudo: float = 1.0) -> np.ndarray:
    """Initial distribution from the posteriors at sequence starts, with a pseudo-count."""
    c = post[starts].sum(axis=0) + pseudo
    return c / c.sum()
