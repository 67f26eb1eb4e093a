"""M-step: per (state, neuron) Newton solvers on the expected complete-data log posterior.

The expected complete-data objective of the GLM weights decomposes over (state ``k``,
postsynaptic neuron ``n``): each term is a posterior-weighted Poisson / Bernoulli / Gaussian
regression of ``y[:, n]`` on the history features ``x_t = (h_t, 1)`` with weights
``gamma[:, k]``. Each is solved by damped Newton steps (analytic gradient and the
``(N+1) x (N+1)`` Hessian, Armijo step halving), warm-started from the previous EM iteration;
all ``N`` neurons of a state share one pass over the data per step (BLAS products on time
chunks), and every neuron stops on its own Newton decrement. The Hessian of a state with
more than ``HESSIAN_ROWS`` bins is summed over a strided subsample of them (rescaled); values
and gradients, which decide step acceptance and convergence, always use every bin.

Priors: ``none`` adds a ridge and ``gaussian`` the quadratic ``N(W0, sigma^2)`` penalty with
``W0`` held fixed (its closed-form update alternates with this step, in
:meth:`neurodyn.hmmglm.priors.GaussianPrior.update_gaussian`). ``onehot`` (classes fixed here) is one problem per
postsynaptic neuron over the shared non-negative strengths and the per-state biases, solved
by projected Newton with the Hessian assembled from the per-state terms by the chain rule;
the classes are then updated by the exact ICM sweep :func:`onehot_sweep`.

Memory: no per-state copy of ``y`` or ``h`` is made. For each state only the indices of the
bins it plausibly explains (``gamma[t, k] > GAMMA_FLOOR``; the dropped mass is negligible) are
kept, and the data are visited in chunks of rows gathered on the fly, so the M-step's working
memory is ``O(chunk * N^2)`` plus the ``(N, N+1, N+1)`` Hessians.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numba as nb
import numpy as np

from neurodyn.hmmglm.model import ModelSpec, Params, _ll_and_grad, _ll_grad_curv

if TYPE_CHECKING:  # the priors call into this module
    from neurodyn.hmmglm.priors import OneHotPrior, WeightPrior

GAMMA_FLOOR = 1e-6
_CHUNK_ELEMS = 1 << 21  # rows * N * (N + 1) per chunk of the Hessian product (16 MiB float64)
_ARMIJO = 1e-4
HESSIAN_ROWS = 8192  # rows per state the Hessian is summed over (strided subsample beyond)


@dataclasses.dataclass
class WeightedData:
    """Data of one M-step, referenced (not copied).

    Attributes
    ----------
    y : array (T, N)
        Observations.
    h : array (T, N)
        Filtered history (float32 is kept as is).
    gamma : array (T, K) float64
        Posterior state probabilities, 0 on rows outside the fitted sequences.
    rows : list of int64 arrays
        Per state, the bins with ``gamma[t, k] > floor``.
    """

    y: np.ndarray
    h: np.ndarray
    gamma: np.ndarray
    rows: list

    @property
    def n_states(self) -> int:
        return int(self.gamma.shape[1])

    @property
    def n_neurons(self) -> int:
        return int(self.y.shape[1])


def weighted_data(y: np.ndarray, h: np.ndarray, gamma: np.ndarray,
                  floor: float = GAMMA_FLOOR) -> WeightedData:
    """Bundle ``y (T, N)``, ``h (T, N)`` and posterior weights ``gamma (T, K)`` for the M-step."""
    gamma = np.asarray(gamma, np.float64)
    rows = [np.flatnonzero(gamma[:, k] > floor) for k in range(gamma.shape[1])]
    return WeightedData(y, h, gamma, rows)


def _chunk_rows(N: int) -> int:
    return int(max(256, min(1 << 15, _CHUNK_ELEMS // (N * (N + 1)))))


@nb.njit(cache=True, error_model="numpy")
def _glm_block(y, w, idx, eta, code, cap, var, order, fisher, G, C):
    """Weighted log-likelihood per neuron of the rows ``idx`` and, by ``order``, the weighted
    first derivatives ``G = w * dl/deta`` and curvatures ``C = w * (-d2l/deta2)`` (c, N)."""
    c, N = eta.shape
    vals = np.zeros(N)
    for i in range(c):
        t = idx[i]
        wt = w[t]
        for n in range(N):
            yv = float(y[t, n])
            if order >= 2:
                v, g, cv = _ll_grad_curv(yv, eta[i, n], code, cap, var[n], fisher)
                G[i, n] = wt * g
                C[i, n] = wt * cv
            else:
                v, g = _ll_and_grad(yv, eta[i, n], code, cap, var[n])
                if order >= 1:
                    G[i, n] = wt * g
            vals[n] += wt * v
    return vals


def state_terms(data: WeightedData, k: int, beta: np.ndarray, spec: ModelSpec, var: np.ndarray,
                order: int = 2, fisher: bool = True, exact_hessian: bool = False):
    """Negative expected log-likelihood of state ``k``, per postsynaptic neuron, up to constants.

    Parameters
    ----------
    data : WeightedData
    k : int
    beta : array (N, N+1)
        Row ``n`` holds ``(W[k, n, :], bias[k, n])``.
    spec : ModelSpec
    var : array (N,)
        Gaussian noise variance (ignored by the other models).
    order : {0, 1, 2}
        Value only; value and gradient; value, gradient and Hessian.
    fisher : bool
        Use the Fisher curvature for the (non-concave) rate-capped sigmoid link.
    exact_hessian : bool
        Sum the Hessian over every row; by default a state with more than
        ``HESSIAN_ROWS`` rows uses a strided subsample of them, rescaled to the full count
        (the Hessian only shapes Newton steps; values and gradients always use every row).

    Returns
    -------
    f : array (N,)
    g : array (N, N+1) or None
    H : array (N, N+1, N+1) or None
    """
    idx_all = data.rows[k]
    N = data.n_neurons
    w = data.gamma[:, k]
    f = np.zeros(N)
    g = np.zeros((N, N + 1)) if order >= 1 else None
    H = np.zeros((N + 1, N, N + 1)) if order >= 2 else None
    step = _chunk_rows(N)
    bT = np.ascontiguousarray(beta.T)
    # Hessian on a strided subsample of at most ~HESSIAN_ROWS rows, rescaled: it only shapes
    # the Newton steps, while values and gradients (acceptance, convergence) use every row
    stride = 1 if exact_hessian else max(1, -(-idx_all.size // HESSIAN_ROWS))
    phase = stride // 2
    hrows = 0
    for a in range(0, idx_all.size, step):
        idx = idx_all[a:a + step]
        c = idx.size
        X = np.empty((c, N + 1))
        X[:, :N] = data.h[idx]
        X[:, N] = 1.0
        eta = X @ bT
        G = np.empty((c, N)) if order >= 1 else np.empty((0, 0))
        Cw = np.empty((c, N)) if order >= 2 else np.empty((0, 0))
        f -= _glm_block(data.y, w, idx, eta, spec.code, spec.rate_cap, var, order, fisher, G, Cw)
        if order >= 1:
            g -= G.T @ X
        if order >= 2:
            sel = slice(None) if stride == 1 else (idx % stride) == phase
            Xs, Cs = X[sel], Cw[sel]
            Z = (Cs[:, :, None] * Xs[:, None, :]).reshape(Xs.shape[0], N * (N + 1))
            H += (Xs.T @ Z).reshape(N + 1, N, N + 1)
            hrows += Xs.shape[0]
    if H is not None:
        H = np.ascontiguousarray(H.transpose(1, 0, 2))
        if stride > 1 and hrows:
            H *= idx_all.size / hrows
    return f, g, H


def _solve(H: np.ndarray, g: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Newton directions ``-H^-1 g`` per row, on the free coordinates only (others 0)."""
    H = H.copy()
    g = np.where(free, g, 0.0)
    fixed = ~free
    H[fixed[:, :, None] | fixed[:, None, :]] = 0.0
    n_idx, j_idx = np.nonzero(fixed)
    H[n_idx, j_idx, j_idx] = 1.0
    d = np.einsum("nii->ni", H)
    jitter = 1e-10 * (1.0 + np.abs(d).mean(axis=1))
    H[:, np.arange(H.shape[1]), np.arange(H.shape[1])] += jitter[:, None]
    try:
        return -np.linalg.solve(H, g[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return -np.stack([np.linalg.lstsq(Hn, gn, rcond=None)[0] for Hn, gn in zip(H, g)])


def _newton(fun, x: np.ndarray, free: np.ndarray, maxiter: int, rtol: float,
            lower: np.ndarray | None = None) -> np.ndarray:
    """Damped (projected) Newton on independent problems, one per row of ``x``.

    ``fun(x, order)`` returns ``f (R,)``, ``g (R, P) | None``, ``H (R, P, P) | None`` for
    all rows (``order`` 0, 1 or 2). Rows stop on their own Newton decrement
    ``-g.d <= rtol * (1 + |f|)``; each step halves until the Armijo condition holds.

    Rows that took the full step get the Hessian at their new point from the same pass over
    the data; rows that took a shorter step are re-evaluated; rows that took no step keep theirs.
    At most ``maxiter`` steps. ``lower`` (R, P), optional, are bounds (``-inf`` for none):
    coordinates at a bound whose gradient pushes outwards are held (projected Newton).
    """
    f, g, H = fun(x, 2)
    active = np.ones(x.shape[0], dtype=bool)
    for it in range(maxiter + 1):
        fr = free.copy()
        if lower is not None:
            fr &= ~((x <= lower) & (g > 0))
        d = _solve(H, g, fr)
        dec = -(g * d).sum(axis=1)
        active &= dec > rtol * (1.0 + np.abs(f))
        if not active.any() or it == maxiter:
            break
        pending = active.copy()
        x_new, f_new, g_new = x.copy(), f.copy(), g.copy()
        full_ok = np.zeros_like(active)
        a = 1.0
        for i in range(40):
            trial = x + a * d
            if lower is not None:
                trial = np.maximum(trial, lower)
            # the full step is usually accepted: evaluate it with its Hessian right away
            ft, gt, Ht = fun(trial, 2 if i == 0 else 1)
            pred = (g * (x - trial)).sum(axis=1)
            ok = pending & np.isfinite(ft) & (ft <= f - _ARMIJO * pred)
            x_new[ok], f_new[ok], g_new[ok] = trial[ok], ft[ok], gt[ok]
            if i == 0:
                full_ok = ok
                H = H.copy()
                H[ok] = Ht[ok]
            pending &= ~ok
            if not pending.any():
                break
            a *= 0.5
        active &= ~pending  # no acceptable step: this row is at its optimum numerically
        x, f, g = x_new, f_new, g_new
        stale = active & ~full_ok
        if stale.any():
            H[stale] = fun(x, 2)[2][stale]
    return x


def free_terms(data: WeightedData, k: int, beta: np.ndarray, spec: ModelSpec, var: np.ndarray,
               prior: WeightPrior, mask: np.ndarray, order: int = 2, fisher: bool = True):
    """:func:`state_terms` plus the ``none`` / ``gaussian`` prior's penalty on ``W[k]``
    (``W0`` held fixed): the per-neuron objectives the Newton M-step minimises."""
    N = data.n_neurons
    lam, center = prior.penalty(N, mask)
    f, g, H = state_terms(data, k, beta, spec, var, order, fisher)
    d = beta - center
    f = f + 0.5 * np.sum(lam * d * d, axis=1)
    if order >= 1:
        g = g + lam * d
    if order >= 2:
        H = H.copy()
        H[:, np.arange(N + 1), np.arange(N + 1)] += lam
    return f, g, H


def free_objective(theta: np.ndarray, data: WeightedData, spec: ModelSpec, var: np.ndarray,
                   prior: WeightPrior, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative expected log posterior in ``theta = (bias (K, N), W (K, N, N))`` and its
    gradient (``none`` ridge or ``gaussian`` prior with ``W0`` fixed); for tests and checks."""
    K, N = data.n_states, data.n_neurons
    bias = theta[:K * N].reshape(K, N)
    W = theta[K * N:].reshape(K, N, N) * mask[None]
    f = 0.0
    gb = np.zeros((K, N))
    gW = np.zeros((K, N, N))
    for k in range(K):
        beta = np.concatenate([W[k], bias[k][:, None]], axis=1)
        fk, gk, _ = free_terms(data, k, beta, spec, var, prior, mask, order=1)
        f += float(fk.sum())
        gb[k] = gk[:, N]
        gW[k] = gk[:, :N] * mask
    return f, np.concatenate([gb.ravel(), gW.ravel()])


def onehot_terms(data: WeightedData, bias: np.ndarray, S: np.ndarray, A: np.ndarray,
                 spec: ModelSpec, var: np.ndarray, order: int = 2, fisher: bool = True):
    """Negative expected log-likelihood per postsynaptic neuron ``n`` as a function of
    ``x[n] = (S[n, :] (N), bias[:, n] (K))`` with ``W[k] = A[k] * S``.

    Returns ``f (N,)``, ``g (N, N+K)`` and ``H (N, N+K, N+K)`` (chain rule from the per-state
    terms of :func:`state_terms`).
    """
    K, N = bias.shape
    f = np.zeros(N)
    g = np.zeros((N, N + K)) if order >= 1 else None
    H = np.zeros((N, N + K, N + K)) if order >= 2 else None
    for k in range(K):
        if data.rows[k].size == 0:
            continue
        Ak = A[k]
        beta = np.concatenate([Ak * S, bias[k][:, None]], axis=1)
        fk, gk, Hk = state_terms(data, k, beta, spec, var, order, fisher)
        f += fk
        if order >= 1:
            g[:, :N] += Ak * gk[:, :N]
            g[:, N + k] = gk[:, N]
        if order >= 2:
            H[:, :N, :N] += Ak[:, :, None] * Ak[:, None, :] * Hk[:, :N, :N]
            cross = Ak * Hk[:, :N, N]
            H[:, :N, N + k] = cross
            H[:, N + k, :N] = cross
            H[:, N + k, N + k] = Hk[:, N, N]
    return f, g, H


def update_weights(params: Params, prior: WeightPrior, data: WeightedData, spec: ModelSpec,
                   mask: np.ndarray, maxiter: int = 25, rtol: float = 1e-7) -> None:
    """Newton update of biases and couplings in place, warm-started from ``params``, by the
    prior's own method (:func:`newton_free` or :func:`newton_onehot`)."""
    prior.update_weights(params, data, spec, mask, maxiter, rtol)


def newton_onehot(params: Params, prior: OneHotPrior, data: WeightedData, spec: ModelSpec,
                  mask: np.ndarray, maxiter: int = 25, rtol: float = 1e-7) -> None:
    """``onehot``: classes held fixed, one problem per neuron ``n`` over the shared
    non-negative strengths ``S[n, :]`` and the biases ``bias[:, n]`` (projected Newton).
    ``maxiter`` caps the Newton steps per M-step."""
    K, N = params.bias.shape
    var = np.asarray(params.noise_var, np.float64)
    A = prior.adjacency.astype(np.float64)
    used = np.any(A != 0, axis=0) & mask
    free = np.concatenate([used, np.ones((N, K), dtype=bool)], axis=1)
    lower = np.concatenate([np.zeros((N, N)), np.full((N, K), -np.inf)], axis=1)
    x0 = np.concatenate([np.maximum(prior.strength, 0.0), params.bias.T], axis=1)

    def fun(x, order):
        return onehot_terms(data, x[:, N:].T, x[:, :N], A, spec, var, order, True)

    x = _newton(fun, x0, free, maxiter, rtol, lower)
    prior.strength = x[:, :N] * mask
    params.bias = np.ascontiguousarray(x[:, N:].T)
    params.W = A * prior.strength[None]


def newton_free(params: Params, prior: WeightPrior, data: WeightedData, spec: ModelSpec,
                mask: np.ndarray, maxiter: int = 25, rtol: float = 1e-7) -> None:
    """``none`` / ``gaussian``: one independent problem per (state, neuron) over
    ``(W[k, n, :], bias[k, n])`` with the prior's quadratic penalty (``W0`` held fixed; the
    prior updates it in closed form afterwards). ``maxiter`` caps the Newton steps."""
    K, N = params.bias.shape
    var = np.asarray(params.noise_var, np.float64)
    free = np.concatenate([mask, np.ones((N, 1), dtype=bool)], axis=1)
    W = params.W * mask[None]
    bias = params.bias.copy()
    for k in range(K):
        if data.rows[k].size == 0:
            continue
        x0 = np.concatenate([W[k], bias[k][:, None]], axis=1)

        def fun(x, order, k=k):
            return free_terms(data, k, x, spec, var, prior, mask, order, True)

        x = _newton(fun, x0, free, maxiter, rtol)
        W[k] = x[:, :N] * mask
        bias[k] = x[:, N]
    params.W, params.bias = W, bias


@nb.njit(cache=True)
def _sweep(h, y, w, idx, eta, S, A, logtab, code, cap, var, self_history, probs):
    """ICM sweep over the classes of one state; ``eta`` (len(idx), N) is the drive of the
    rows ``idx`` and is kept up to date as classes change.

    The weighted log-likelihood of every row under the current classes is cached per
    neuron, so scoring a pair evaluates only the two alternative classes.
    """
    c, N = eta.shape
    Q = np.empty(3)
    cur = np.empty(c)
    for n in range(N):
        for i in range(c):
            t = idx[i]
            v, _ = _ll_and_grad(float(y[t, n]), eta[i, n], code, cap, var[n])
            cur[i] = w[t] * v
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
            for i in range(c):
                t = idx[i]
                hv = float(h[t, m])
                if hv == 0.0:
                    continue
                yv = float(y[t, n])
                e0 = eta[i, n] - c0 * s * hv
                for ci in range(3):
                    if ci - 1 == c0:
                        Q[ci] += cur[i]
                    else:
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
                for i in range(c):
                    t = idx[i]
                    hv = float(h[t, m])
                    if hv == 0.0:
                        continue
                    eta[i, n] += d * hv
                    v, _ = _ll_and_grad(float(y[t, n]), eta[i, n], code, cap, var[n])
                    cur[i] = w[t] * v
                A[n, m] = c1


def _drive(data: WeightedData, k: int, W: np.ndarray, bias: np.ndarray,
           idx: np.ndarray) -> np.ndarray:
    """``eta (len(idx), N)`` of state ``k`` on the rows ``idx``, built in chunks."""
    N = data.n_neurons
    eta = np.empty((idx.size, N))
    step = _chunk_rows(N)
    WT = np.ascontiguousarray(W.T)
    for a in range(0, idx.size, step):
        eta[a:a + step] = data.h[idx[a:a + step]] @ WT + bias
    return eta


def onehot_sweep(params: Params, prior: OneHotPrior, data: WeightedData, spec: ModelSpec) -> None:
    """One coordinate sweep over the adjacency classes of every state and pair, in place.

    For each pair ``(n, m)`` of state ``k`` the three classes are scored exactly by the
    expected complete-data log-likelihood of neuron ``n`` (all other pairs held at their
    current class) plus ``log table[n, m, class]``; the pair takes the best class (iterated
    conditional modes, so the EM objective never decreases) and its normalised conditional
    posterior over the 3 classes is stored in ``prior.adjacency_prob``.
    """
    var = np.asarray(params.noise_var, np.float64)
    logtab = np.log(prior.table)
    for k in range(data.n_states):
        idx = data.rows[k]
        if idx.size == 0:
            continue
        eta = _drive(data, k, params.W[k], params.bias[k], idx)
        A = prior.adjacency[k].astype(np.int64)
        _sweep(data.h, data.y, data.gamma[:, k], idx, eta, prior.strength, A, logtab,
               spec.code, spec.rate_cap, var, spec.self_history, prior.adjacency_prob[k])
        prior.adjacency[k] = A
    params.W = prior.adjacency * prior.strength[None]


def update_noise_var(params: Params, data: WeightedData, floor: float = 1e-4) -> None:
    """Closed-form update of the Gaussian observation noise variance per neuron."""
    N = params.n_neurons
    num = np.zeros(N)
    den = 0.0
    step = _chunk_rows(N)
    for k in range(data.n_states):
        idx_all = data.rows[k]
        WT = np.ascontiguousarray(params.W[k].T)
        for a in range(0, idx_all.size, step):
            idx = idx_all[a:a + step]
            r = data.y[idx] - (data.h[idx] @ WT + params.bias[k])
            wk = data.gamma[idx, k]
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
