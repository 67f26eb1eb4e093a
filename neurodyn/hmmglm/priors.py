"""Priors over the per-state coupling matrices ``W[k]``: one class per prior, in a registry.

``none`` (:class:`NoPrior`)
    Each ``W[k]`` free, with a weak ridge ``l2 / 2 * ||W[k]||^2`` that only keeps the
    optimiser away from infinity when a neuron's history never varies.
``gaussian`` (:class:`GaussianPrior`)
    ``W[k] ~ N(W0, sigma^2 I)`` independently per state, with the shared mean ``W0`` (the
    state-constant, "anatomical" interaction) learned by its closed-form M-step (the mean of
    the ``W[k]``) and ``sigma`` fixed (default 0.1) or learned under an inverse-gamma prior
    with a floor.
``onehot`` (:class:`OneHotPrior`)
    ``W[k][n, m] = c[k, n, m] * strength[n, m]`` with ``c`` a one-hot choice among
    inhibitory (-1), none (0), excitatory (+1), a non-negative ``strength`` shared by states,
    and a learnable prior table ``table[n, m, :]`` of class probabilities shared by all states
    (the connectome prior). The classes are updated by exact per-pair conditional posteriors
    over the 3 classes (see :func:`neurodyn.hmmglm.mstep.onehot_sweep`), not by a Gumbel-
    softmax relaxation.

Each class holds its hyper-parameters and learned quantities and says how EM treats it:
``log_prior`` (the objective's prior term), ``update_weights`` (the Newton M-step of the
couplings), ``after_weights`` (the prior's own M-step), ``from_weights`` (initialisation from
an unconstrained fit) and ``outputs`` (what the ``states`` stage stores). A new prior is one
more class with ``@register``; no caller compares prior names.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from neurodyn.hmmglm import mstep
from neurodyn.hmmglm.model import ModelSpec, Params

CLASSES = ("inhibitory", "none", "excitatory")
REGISTRY: dict[str, type[WeightPrior]] = {}


def register(cls: type[WeightPrior]) -> type[WeightPrior]:
    """Class decorator: make a prior available under its ``kind``."""
    REGISTRY[cls.kind] = cls
    return cls


@dataclasses.dataclass
class WeightPrior:
    """Interface of a weight prior (the base class is never used directly).

    Attributes
    ----------
    l2 : float
        Ridge strength on W where the prior itself adds none.
    """

    kind: ClassVar[str] = ""
    l2: float = 1e-2

    def log_prior(self, W: np.ndarray) -> float:
        """Log prior density of the couplings (up to constants), for the EM objective."""
        raise NotImplementedError

    def penalty(self, N: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quadratic penalty ``lam / 2 * (beta - center)^2`` on each neuron's ``(W[k, n, :],
        bias)`` (``lam``, ``center`` (N, N + 1)) used by the free Newton M-step."""
        lam = np.zeros((N, N + 1))
        lam[:, :N] = self.l2 * mask
        return lam, np.zeros((N, N + 1))

    def update_weights(self, params: Params, data: mstep.WeightedData, spec: ModelSpec,
                       mask: np.ndarray, maxiter: int = 25, rtol: float = 1e-7) -> None:
        """Newton M-step of the couplings and biases, in place."""
        mstep.newton_free(params, self, data, spec, mask, maxiter, rtol)

    def after_weights(self, params: Params, data: mstep.WeightedData, spec: ModelSpec,
                      mask: np.ndarray) -> None:
        """The prior's own M-step after the couplings were updated (none by default)."""

    @classmethod
    def from_weights(cls, W: np.ndarray, mask: np.ndarray, *, l2: float = 1e-2,
                     sigma: float | None = None, table_alpha: float = 0.5) -> WeightPrior:
        """A prior initialised from an unconstrained fit's couplings ``W`` (K, N, N)."""
        return cls(l2=l2)

    def start_weights(self, W: np.ndarray) -> np.ndarray:
        """The couplings EM starts from under this prior."""
        return W

    def outputs(self) -> dict[str, Any]:
        """Learned quantities the ``states`` stage writes (arrays, ``@`` attributes)."""
        return {}


@register
@dataclasses.dataclass
class NoPrior(WeightPrior):
    """``none``: free couplings with a weak ridge."""

    kind: ClassVar[str] = "none"

    def log_prior(self, W: np.ndarray) -> float:
        return -0.5 * self.l2 * float(np.sum(W * W))


@register
@dataclasses.dataclass
class GaussianPrior(WeightPrior):
    """``gaussian``: ``W[k] ~ N(W0, sigma2 I)``.

    Attributes
    ----------
    W0 : array (N, N) or None
        Shared mean.
    sigma2 : float
        Prior variance of ``W[k] - W0``.
    learn_sigma : bool
        Learn ``sigma2`` (inverse-gamma(a, b) prior) or keep it fixed.
    sigma_a, sigma_b : float
        Inverse-gamma hyper-parameters of ``sigma2``.
    sigma_min : float
        Floor of a learned ``sigma``: the joint MAP of ``(W, W0, sigma)`` is degenerate
        (all ``W[k] -> W0``, ``sigma -> 0``), so a learned sigma is kept above this floor.
    """

    kind: ClassVar[str] = "gaussian"
    W0: np.ndarray | None = None
    sigma2: float = 0.1
    learn_sigma: bool = True
    sigma_a: float = 2.0
    sigma_b: float = 0.01
    sigma_min: float = 0.05

    def log_prior(self, W: np.ndarray) -> float:
        d = W - self.W0[None]
        lp = -0.5 * float(np.sum(d * d)) / self.sigma2 - 0.5 * d.size * np.log(self.sigma2)
        if self.learn_sigma:
            lp += -(self.sigma_a + 1.0) * np.log(self.sigma2) - self.sigma_b / self.sigma2
        return float(lp)

    def penalty(self, N: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lam = np.zeros((N, N + 1))
        center = np.zeros((N, N + 1))
        lam[:, :N] = mask / self.sigma2
        center[:, :N] = self.W0
        return lam, center

    def update_gaussian(self, W: np.ndarray, mask: np.ndarray) -> None:
        """Closed-form M-step of ``W0`` and (if learned) ``sigma2`` given ``W`` (K, N, N)."""
        self.W0 = W.mean(axis=0) * mask
        if self.learn_sigma:
            d = (W - self.W0[None]) * mask[None]
            n = W.shape[0] * mask.sum()
            s2 = float((np.sum(d * d) + 2 * self.sigma_b) / (n + 2 * (self.sigma_a + 1)))
            self.sigma2 = max(s2, self.sigma_min ** 2)

    def after_weights(self, params, data, spec, mask) -> None:
        self.update_gaussian(params.W, mask)

    @classmethod
    def from_weights(cls, W, mask, *, l2=1e-2, sigma=None, table_alpha=0.5) -> GaussianPrior:
        ps = cls(l2=l2, learn_sigma=sigma is None)
        ps.update_gaussian(W, mask)
        if sigma is not None:
            ps.sigma2 = float(sigma) ** 2
        return ps

    def outputs(self) -> dict[str, Any]:
        return {"W0": self.W0, "@sigma": float(np.sqrt(self.sigma2))}


@register
@dataclasses.dataclass
class OneHotPrior(WeightPrior):
    """``onehot``: ``W[k] = class[k] * strength`` with a learned class table.

    Attributes
    ----------
    strength : array (N, N) or None
        Non-negative coupling magnitudes.
    adjacency : int8 array (K, N, N) or None
        Class per state and pair, -1/0/+1.
    adjacency_prob : array (K, N, N, 3) or None
        Conditional class probabilities (inh, none, exc) from the last sweep.
    table : array (N, N, 3) or None
        Learned prior class probabilities shared by states.
    table_alpha : float
        Dirichlet pseudo-count of the table's M-step.
    """

    kind: ClassVar[str] = "onehot"
    strength: np.ndarray | None = None
    adjacency: np.ndarray | None = None
    adjacency_prob: np.ndarray | None = None
    table: np.ndarray | None = None
    table_alpha: float = 0.5

    def log_prior(self, W: np.ndarray) -> float:
        K = self.adjacency.shape[0]
        logt = np.log(self.table)
        c = self.adjacency.astype(np.int64) + 1
        n, m = np.indices(c.shape[1:])
        lp = sum(float(np.sum(logt[n, m, c[k]])) for k in range(K))
        lp += self.table_alpha * float(np.sum(logt))
        return lp

    def penalty(self, N: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise TypeError("the onehot prior has no free-coupling penalty")

    def update_weights(self, params, data, spec, mask, maxiter=25, rtol=1e-7) -> None:
        mstep.newton_onehot(params, self, data, spec, mask, maxiter, rtol)

    def update_table(self, mask: np.ndarray) -> None:
        """Dirichlet-MAP update of the class table from the conditional class probabilities."""
        counts = self.adjacency_prob.sum(axis=0) + self.table_alpha
        self.table = counts / counts.sum(axis=-1, keepdims=True)
        self.table[~mask] = (0.0, 1.0, 0.0)
        self.table = np.clip(self.table, 1e-6, 1.0)
        self.table /= self.table.sum(axis=-1, keepdims=True)

    def after_weights(self, params, data, spec, mask) -> None:
        mstep.onehot_sweep(params, self, data, spec)
        self.update_table(mask)

    @classmethod
    def from_weights(cls, W, mask, *, l2=1e-2, sigma=None, table_alpha=0.5) -> OneHotPrior:
        K, N, _ = W.shape
        ps = cls(l2=l2, table_alpha=table_alpha)
        absw = np.abs(W) * mask[None]
        big = absw[absw > 0]
        thr = 0.5 * np.quantile(big, 0.9) if big.size else 0.1
        typical = float(np.median(absw[absw > thr])) if np.any(absw > thr) else 0.5
        ps.strength = np.maximum(absw.max(axis=0), typical) * mask
        ps.adjacency = (np.sign(W) * (absw > thr)).astype(np.int8)
        probs = np.zeros((K, N, N, 3))
        for c in range(3):
            probs[..., c] = ps.adjacency == c - 1
        ps.adjacency_prob = probs
        ps.update_table(mask)
        return ps

    def start_weights(self, W: np.ndarray) -> np.ndarray:
        return self.adjacency * self.strength[None]

    def outputs(self) -> dict[str, Any]:
        return {"adjacency": self.adjacency,
                "adjacency_prob": self.adjacency_prob.astype(np.float32),
                "adjacency_prior": self.table, "strength": self.strength,
                "@adjacency_classes": ",".join(CLASSES)}


PRIORS = tuple(REGISTRY)


def prior_class(kind: str) -> type[WeightPrior]:
    """The registered prior class of ``kind``; ``ValueError`` naming the choices otherwise."""
    try:
        return REGISTRY[str(kind)]
    except KeyError:
        raise ValueError(f"prior must be one of {', '.join(REGISTRY)}, got {kind!r}") from None


def init_prior(kind: str, W: np.ndarray, mask: np.ndarray, *, l2: float = 1e-2,
               sigma: float | None = None, table_alpha: float = 0.5) -> WeightPrior:
    """A prior of ``kind`` initialised from an unconstrained fit's couplings ``W`` (K, N, N).

    ``mask`` (N, N) is False where couplings are fixed to 0 (the diagonal without self-history).
    """
    return prior_class(kind).from_weights(W, mask, l2=l2, sigma=sigma, table_alpha=table_alpha)
