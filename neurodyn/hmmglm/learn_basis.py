"""Learning the decay ``tau`` of the normalised exponential history basis inside EM.

After each M-step, with the GLM parameters fixed, ``tau`` maximises the expected
complete-data log-likelihood of the observations

    Q(u) = sum_k sum_t gamma[t, k] sum_n log p(y[t, n] | bias[k, n] + W[k, n, :] . h_u[t, :])

over ``u = log tau``, where ``h_u`` is the history filtered by ``exp_basis(n_lags, e^u)``;
the weight priors, transitions and initial distribution do not depend on ``tau``. One
``tau`` is shared by all neurons and states (a per-neuron decay would make the basis, and
hence the scale of ``W``, differ between presynaptic neurons; not offered).

The history is linear in the basis, so ``dh/du`` and ``d2h/du2`` are the observations
filtered by ``db/du`` and ``d2b/du2`` (:func:`basis_derivatives`), and ``Q``, ``dQ/du``
and ``d2Q/du2`` come from one pass over the data (:func:`tau_derivatives`, exact
curvature). :func:`update_tau` takes a few damped Newton steps in ``u`` (gradient steps
where ``Q`` is not concave), each at most ``step`` long in ``log tau`` and accepted only
when ``Q`` rises (Armijo), within :attr:`HistorySpec.tau_bounds`; so an EM iteration never
lowers the objective (generalised EM).
"""

from __future__ import annotations

import math

import numpy as np

from neurodyn.hmmglm.basis import HistorySpec, exp_basis, filter_history
from neurodyn.hmmglm.model import ModelSpec, Params
from neurodyn.hmmglm.mstep import WeightedData, _chunk_rows, _glm_block

_ARMIJO = 1e-4


def basis_derivatives(n_lags: int, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The basis ``b`` (L,) and its first and second derivatives in ``u = log tau``.

    With ``a_l = l / tau`` (lag index ``l = 0..L-1``) and ``b_l ∝ exp(-a_l)``:
    ``db_l/du = b_l (a_l - abar)`` and
    ``d2b_l/du2 = b_l ((a_l - abar)^2 - (a_l - abar) - var_b(a))``, where ``abar`` and
    ``var_b(a)`` are the mean and variance of ``a`` under weights ``b``.
    """
    b = exp_basis(n_lags, tau)
    a = np.arange(n_lags) / float(tau)
    d = a - float(b @ a)
    var = float(b @ (d * d))
    return b, b * d, b * (d * d - d - var)


def tau_derivatives(h: np.ndarray, hu: np.ndarray, huu: np.ndarray, data: WeightedData,
                    params: Params, spec: ModelSpec, order: int = 2
                    ) -> tuple[float, float, float]:
    """``Q``, ``dQ/du`` and ``d2Q/du2`` (nats; without terms constant in the drive).

    Parameters
    ----------
    h, hu, huu : arrays (T, N)
        History at ``u`` and its first and second derivatives in ``u`` (``hu``, ``huu``
        ignored when ``order`` is 0).
    data : WeightedData
        Observations and posterior weights (``data.h`` is not used).
    params : Params
        GLM parameters (held fixed).
    spec : ModelSpec
    order : {0, 2}
        0: ``Q`` only (derivatives returned as NaN).

    Notes
    -----
    ``dQ/du = sum gamma * l'(eta) * deta`` and
    ``d2Q/du2 = sum gamma * (l'(eta) * d2eta + l''(eta) * deta^2)`` with
    ``deta = W hu`` and ``d2eta = W huu`` (exact ``l''``, also for the sigmoid link).
    """
    N = data.n_neurons
    var = np.asarray(params.noise_var, np.float64)
    q = q1 = q2 = 0.0
    step = _chunk_rows(N)
    for k in range(data.n_states):
        idx_all = data.rows[k]
        if idx_all.size == 0:
            continue
        WT = np.ascontiguousarray(params.W[k].T)
        for a in range(0, idx_all.size, step):
            idx = idx_all[a:a + step]
            eta = h[idx] @ WT + params.bias[k]
            G = np.empty(eta.shape) if order else np.empty((0, 0))
            C = np.empty(eta.shape) if order else np.empty((0, 0))
            q += float(_glm_block(data.y, data.gamma[:, k], idx, eta, spec.code, spec.rate_cap,
                                  var, 2 if order else 0, False, G, C).sum())
            if order:
                deta = hu[idx] @ WT
                q1 += float(np.sum(G * deta))
                q2 += float(np.sum(G * (huu[idx] @ WT)) - np.sum(C * deta * deta))
    return q, (q1 if order else np.nan), (q2 if order else np.nan)


def _at(u: float, history: HistorySpec, data: WeightedData, params: Params, spec: ModelSpec,
        h: np.ndarray | None = None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """History at ``u`` (filtered unless given) and ``Q`` with its derivatives there."""
    _, bu, buu = basis_derivatives(history.n_lags, math.exp(u))
    if h is None:
        h = history.filter(data.y, math.exp(u))
    hu = filter_history(data.y, bu, history.starts, history.stops)
    huu = filter_history(data.y, buu, history.starts, history.stops)
    return h, tau_derivatives(h, hu, huu, data, params, spec)


def update_tau(tau: float, history: HistorySpec, data: WeightedData, params: Params,
               spec: ModelSpec, step: float = 1.0, newton_iter: int = 2, utol: float = 1e-3
               ) -> tuple[float, np.ndarray | None]:
    """Generalised M-step over ``tau`` (bins): damped Newton steps in ``log tau``.

    Parameters
    ----------
    tau : float
        Current decay; ``data.h`` must be the history filtered with it.
    history : HistorySpec
    data : WeightedData
        Observations, current history and posterior weights of this M-step.
    params : Params
        GLM parameters just updated by the M-step (held fixed).
    spec : ModelSpec
    step : float
        Longest step in ``log tau`` (1: a factor ``e``).
    newton_iter : int
        Newton steps per call (EM calls this once per iteration).
    utol : float
        Stop when the step in ``log tau`` is shorter.

    Returns
    -------
    tau : float
        The new decay (the old one when no step raised ``Q``).
    h : array (T, N) float32 or None
        History filtered with the new ``tau``; None when ``tau`` did not change.
    """
    lo, hi = (math.log(b) for b in history.tau_bounds)
    u = u0 = math.log(tau)
    h, (q, d1, d2) = _at(u, history, data, params, spec, data.h)
    for _ in range(newton_iter):
        du = -d1 / d2 if d2 < 0 else math.copysign(step, d1)
        du = float(np.clip(du, max(-step, lo - u), min(step, hi - u)))
        accepted = False
        while abs(du) >= utol:
            h_t, (q_t, d1_t, d2_t) = _at(u + du, history, data, params, spec)
            if np.isfinite(q_t) and q_t >= q + _ARMIJO * du * d1 and q_t > q:
                u, h, q, d1, d2 = u + du, h_t, q_t, d1_t, d2_t
                accepted = True
                break
            du *= 0.5
        if not accepted:
            break
    if u == u0:
        return tau, None
    return math.exp(u), h
