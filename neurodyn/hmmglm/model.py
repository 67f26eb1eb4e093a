"""HMM-GLM parameters, observation models and per-state log-likelihoods.

Drive of neuron ``n`` in state ``k`` at bin ``t``::

    eta[t, k, n] = bias[k, n] + sum_m W[k, n, m] * h[t, m]

with ``h`` the spike history filtered by a temporal basis (:mod:`neurodyn.hmmglm.basis`).
``W[k, n, m]`` is the influence of presynaptic neuron ``m`` on postsynaptic ``n``.

Observation models (``code`` used by the kernels):

=====  ==========  =========  ===========================================================
code   observation  link       mean
=====  ==========  =========  ===========================================================
0      poisson      softplus   ``log(1 + exp(eta))`` counts/bin
1      poisson      exp        ``exp(eta)``
2      poisson      sigmoid    ``rate_cap * sigmoid(eta)`` (rate-capped, as in Li et al. 2024)
3      bernoulli    logistic   ``p = sigmoid(eta)`` for binary events
4      gaussian     identity   ``eta``, noise variance ``noise_var[n]`` shared by states
=====  ==========  =========  ===========================================================
"""

from __future__ import annotations

import dataclasses
import math

import numba as nb
import numpy as np

OBSERVATIONS = ("poisson", "bernoulli", "gaussian")
LINKS = ("softplus", "exp", "sigmoid")
_LOG2PI = math.log(2.0 * math.pi)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Structural choices that are not fitted.

    Parameters
    ----------
    observation : {"poisson", "bernoulli", "gaussian"}
    link : {"softplus", "exp", "sigmoid"}
        Link of the Poisson model (ignored otherwise).
    rate_cap : float
        Maximum rate (counts/bin) of the ``sigmoid`` link.
    self_history : bool
        Whether ``W[k, n, n]`` (a neuron's own history) is free; if False it is fixed to 0.
    """

    observation: str = "poisson"
    link: str = "softplus"
    rate_cap: float = 5.0
    self_history: bool = True

    def __post_init__(self) -> None:
        if self.observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {OBSERVATIONS}")
        if self.link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}")
        if self.rate_cap <= 0:
            raise ValueError("rate_cap must be > 0")

    @property
    def code(self) -> int:
        if self.observation == "poisson":
            return LINKS.index(self.link)
        return 3 if self.observation == "bernoulli" else 4


@dataclasses.dataclass
class Params:
    """Fitted HMM-GLM parameters.

    Attributes
    ----------
    pi0 : array (K,)
        Initial state distribution.
    P : array (K, K)
        Transition matrix (rows sum to 1).
    bias : array (K, N)
        Per-state baseline drive.
    W : array (K, N, N)
        Per-state couplings ``W[k, post, pre]``.
    noise_var : array (N,)
        Observation noise variance (Gaussian model only; ones otherwise).
    """

    pi0: np.ndarray
    P: np.ndarray
    bias: np.ndarray
    W: np.ndarray
    noise_var: np.ndarray

    @property
    def n_states(self) -> int:
        return int(self.P.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.bias.shape[1])

    def copy(self) -> Params:
        return Params(*(np.array(getattr(self, f.name)) for f in dataclasses.fields(self)))


# -- elementwise kernels --------------------------------------------------------------------
@nb.njit(cache=True, inline="always")
def _softplus(x):
    if x > 30.0:
        return x
    if x < -30.0:
        return math.exp(x)
    return math.log1p(math.exp(x))


@nb.njit(cache=True, inline="always")
def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@nb.njit(cache=True, inline="always")
def _ll_and_grad(y, eta, code, cap, var):
    """Log-likelihood of one observation without terms constant in ``eta``, and its derivative.

    The dropped constants are ``-lgamma(y + 1)`` (Poisson) and ``-log(2 pi var) / 2``
    (Gaussian); :func:`_const` adds them back.
    """
    if code == 0:
        if eta < -30.0:
            r = math.exp(eta)
            return y * eta - r, y - r
        e = math.exp(-abs(eta))
        if eta >= 0:
            r = eta + math.log1p(e)
            s = 1.0 / (1.0 + e)
        else:
            r = math.log1p(e)
            s = e / (1.0 + e)
        if y == 0.0:
            return -r, -s
        return y * math.log(r) - r, (y / r - 1.0) * s
    if code == 1:
        e = min(eta, 50.0)
        r = math.exp(e)
        return y * e - r, y - r
    if code == 2:
        s = _sigmoid(eta)
        r = cap * s
        logr = math.log(cap) - _softplus(-eta)
        return y * logr - r, (y - r) * (1.0 - s)
    if code == 3:
        return y * eta - _softplus(eta), y - _sigmoid(eta)
    d = y - eta
    return -0.5 * d * d / var, d / var


@nb.njit(cache=True, inline="always")
def _ll_grad_curv(y, eta, code, cap, var, fisher):
    """``(l, dl/deta, curvature)`` of one observation, sharing exponentials and logarithms.

    ``l`` and ``dl/deta`` are those of :func:`_ll_and_grad`; the curvature is
    ``-d2l/deta2``, non-negative for every model except the rate-capped sigmoid link
    (code 2), whose log-likelihood is not concave in ``eta``: with ``fisher`` True that case
    returns the expected (Fisher) curvature ``cap * s * (1 - s)**2 >= 0``, as Newton steps
    need.
    """
    if code == 0:
        if eta < -30.0:
            r = math.exp(eta)
            return y * eta - r, y - r, r
        e = math.exp(-abs(eta))
        if eta >= 0:
            r = eta + math.log1p(e)
            s = 1.0 / (1.0 + e)
            s1 = e * s
        else:
            r = math.log1p(e)
            s1 = 1.0 / (1.0 + e)
            s = e * s1
        if y == 0.0:
            return -r, -s, s * s1
        q = y / r
        return y * math.log(r) - r, (q - 1.0) * s, (1.0 - q) * s * s1 + q * s * s / r
    if code == 1:
        e = min(eta, 50.0)
        r = math.exp(e)
        return y * e - r, y - r, r
    if code == 2:
        s = _sigmoid(eta)
        r = cap * s
        logr = math.log(cap) - _softplus(-eta)
        if fisher:
            c = r * (1.0 - s) * (1.0 - s)
        else:
            c = s * (1.0 - s) * (cap - 2.0 * r + y)
        return y * logr - r, (y - r) * (1.0 - s), c
    if code == 3:
        s = _sigmoid(eta)
        return y * eta - _softplus(eta), y - s, s * (1.0 - s)
    d = y - eta
    return -0.5 * d * d / var, d / var, 1.0 / var


@nb.njit(cache=True, inline="always")
def _const(y, code, var):
    if code <= 2:
        return -math.lgamma(y + 1.0)
    if code == 4:
        return -0.5 * (_LOG2PI + math.log(var))
    return 0.0


@nb.njit(cache=True)
def row_loglik(eta, y, code, cap, var, with_const=True):
    """Per-bin log-likelihood summed over neurons: ``(T,)`` from ``eta, y`` of shape (T, N).

    ``with_const=False`` leaves out the terms constant in ``eta`` (see :func:`row_const`).
    """
    T, N = eta.shape
    out = np.zeros(T)
    for t in range(T):
        acc = 0.0
        for n in range(N):
            yv = float(y[t, n])
            v, _ = _ll_and_grad(yv, eta[t, n], code, cap, var[n])
            acc += v
            if with_const:
                acc += _const(yv, code, var[n])
        out[t] = acc
    return out


@nb.njit(cache=True)
def row_const(y, code, var):
    """The per-bin terms of the log-likelihood that do not depend on the drive: ``(T,)``."""
    T, N = y.shape
    out = np.zeros(T)
    for t in range(T):
        acc = 0.0
        for n in range(N):
            acc += _const(float(y[t, n]), code, var[n])
        out[t] = acc
    return out


def mean_of(eta: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Expected observation for drive ``eta`` (counts/bin, probability or trace value)."""
    c = spec.code
    if c == 0:
        return np.logaddexp(0.0, eta)
    if c == 1:
        return np.exp(np.minimum(eta, 50.0))
    if c == 2:
        return spec.rate_cap / (1.0 + np.exp(-eta))
    if c == 3:
        return 1.0 / (1.0 + np.exp(-eta))
    return eta


CHUNK = 1 << 15


def state_loglik(y: np.ndarray, h: np.ndarray, params: Params, spec: ModelSpec) -> np.ndarray:
    """Per-state emission log-likelihoods ``log p(y_t | z_t = k)`` (nats).

    Parameters
    ----------
    y : array (T, N)
        Observations (counts, 0/1 events or traces).
    h : array (T, N)
        Filtered history.
    params : Params
    spec : ModelSpec

    Returns
    -------
    array (T, K) float64
        Computed in time chunks, so memory beyond the output is ``O(chunk * N)``.
    """
    T = y.shape[0]
    K = params.n_states
    out = np.empty((T, K))
    var = np.asarray(params.noise_var, np.float64)
    for a in range(0, T, CHUNK):
        b = min(T, a + CHUNK)
        hc = np.asarray(h[a:b], np.float64)
        yc = np.ascontiguousarray(y[a:b])
        const = row_const(yc, spec.code, var)  # shared by all states
        for k in range(K):
            eta = hc @ params.W[k].T + params.bias[k]
            out[a:b, k] = row_loglik(eta, yc, spec.code, spec.rate_cap, var, False) + const
    return out
