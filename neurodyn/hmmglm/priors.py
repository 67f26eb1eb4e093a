"""Priors over the per-state coupling matrices ``W[k]``.

``none``
    Each ``W[k]`` free, with a weak ridge ``l2 / 2 * ||W[k]||^2`` that only keeps the
    optimiser away from infinity when a neuron's history never varies.
``gaussian``
    ``W[k] ~ N(W0, sigma^2 I)`` independently per state, with the shared mean ``W0`` (the
    state-constant, "anatomical" interaction) learned by its closed-form M-step (the mean of
    the ``W[k]``) and ``sigma`` fixed (default 0.1) or learned under an inverse-gamma prior
    with a floor.
``onehot``
    ``W[k][n, m] = c[k, n, m] * strength[n, m]`` with ``c`` a one-hot choice among
    inhibitory (-1), none (0), excitatory (+1), a non-negative ``strength`` shared by states,
    and a learnable prior table ``table[n, m, :]`` of class probabilities shared by all states
    (the connectome prior). The classes are updated by exact per-pair conditional posteriors
    over the 3 classes (see :func:`neurodyn.hmmglm.mstep.onehot_sweep`), not by a Gumbel-
    softmax relaxation.
"""

from __future__ import annotations

import dataclasses

import numpy as np

PRIORS = ("none", "gaussian", "onehot")
CLASSES = ("inhibitory", "none", "excitatory")


@dataclasses.dataclass
class PriorState:
    """Hyper-parameters and learned quantities of a weight prior.

    Attributes
    ----------
    kind : {"none", "gaussian", "onehot"}
    l2 : float
        Ridge strength (``none``) on W.
    W0 : array (N, N) or None
        Shared mean (``gaussian``).
    sigma2 : float
        Prior variance of ``W[k] - W0`` (``gaussian``).
    learn_sigma : bool
        Learn ``sigma2`` (inverse-gamma(a, b) prior) or keep it fixed.
    sigma_a, sigma_b : float
        Inverse-gamma hyper-parameters of ``sigma2``.
    sigma_min : float
        Floor of a learned ``sigma``: the joint MAP of ``(W, W0, sigma)`` is degenerate
        (all ``W[k] -> W0``, ``sigma -> 0``), so a learned sigma is kept above this floor.
    strength : array (N, N) or None
        Non-negative coupling magnitudes (``onehot``).
    adjacency : int8 array (K, N, N) or None
        Class per state and pair, -1/0/+1 (``onehot``).
    adjacency_prob : array (K, N, N, 3) or None
        Conditional class probabilities (inh, none, exc) from the last sweep.
    table : array (N, N, 3) or None
        Learned prior class probabilities shared by states.
    table_alpha : float
        Dirichlet pseudo-count of the table's M-step.
    """

    kind: str = "none"
    l2: float = 1e-2
    W0: np.ndarray | None = None
    sigma2: float = 0.1
    learn_sigma: bool = True
    sigma_a: float = 2.0
    sigma_b: float = 0.01
    sigma_min: float = 0.05
    strength: np.ndarray | None = None
    adjacency: np.ndarray | None = None
    adjacency_prob: np.ndarray | None = None
    table: np.ndarray | None = None
    table_alpha: float = 0.5

    def log_prior(self, W: np.ndarray) -> float:
        """Log prior density of the couplings (up to constants), for the EM objective."""
        if self.kind == "none":
            return -0.5 * self.l2 * float(np.sum(W * W))
        if self.kind == "gaussian":
            d = W - self.W0[None]
            lp = -0.5 * float(np.sum(d * d)) / self.sigma2 - 0.5 * d.size * np.log(self.sigma2)
            if self.learn_sigma:
                lp += -(self.sigma_a + 1.0) * np.log(self.sigma2) - self.sigma_b / self.sigma2
            return float(lp)
        K = self.adjacency.shape[0]
        logt = np.log(self.table)
        c = self.adjacency.astype(np.int64) + 1
        n, m = np.indices(c.shape[1:])
        lp = sum(float(np.sum(logt[n, m, c[k]])) for k in range(K))
        lp += self.table_alpha * float(np.sum(logt))
        return lp

    def update_gaussian(self, W: np.ndarray, mask: np.ndarray) -> None:
        """Closed-form M-step of ``W0`` and (if learned) ``sigma2`` given ``W`` (K, N, N)."""
        self.W0 = W.mean(axis=0) * mask
        if self.learn_sigma:
            d = (W - self.W0[None]) * mask[None]
            n = W.shape[0] * mask.sum()
            s2 = float((np.sum(d * d) + 2 * self.sigma_b) / (n + 2 * (self.sigma_a + 1)))
            self.sigma2 = max(s2, self.sigma_min ** 2)

    def update_table(self, mask: np.ndarray) -> None:
        """Dirichlet-MAP update of the class table from the conditional class probabilities."""
        counts = self.adjacency_prob.sum(axis=0) + self.table_alpha
        self.table = counts / counts.sum(axis=-1, keepdims=True)
        self.table[~mask] = (0.0, 1.0, 0.0)
        self.table = np.clip(self.table, 1e-6, 1.0)
        self.table /= self.table.sum(axis=-1, keepdims=True)


def init_prior(kind: str, W: np.ndarray, mask: np.ndarray, *, l2: float = 1e-2,
               sigma: float | None = None, table_alpha: float = 0.5) -> PriorState:
    """A prior initialised from an unconstrained fit's couplings ``W`` (K, N, N).

    ``mask`` (N, N) is False where couplings are fixed to 0 (the diagonal without self-history).
    """
    if kind not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}")
    ps = PriorState(kind=kind, l2=l2, table_alpha=table_alpha)
    if kind == "gaussian":
        ps.learn_sigma = sigma is None
        ps.update_gaussian(W, mask)
        if sigma is not None:
            ps.sigma2 = float(sigma) ** 2
    elif kind == "onehot":
        K, N, _ = W.shape
        absw = np.abs(W) * mask[None]
        big = absw[absw > 0]
        thr = 0.5 * np.quantile(big, 0.9) if big.size else 0.1
        typical = float(np.median(absw[absw > thr])) if np.any(absw > thr) else 0.5
        ps.strength = np.maximum(absw.max(axis=0), typical) * mask
        ps.adjacency = (np.sign(W) * (absw > thr)).astype(np.int8)
        probs = np.zeros((K, N, N, 3))
        probs[..., 0] = ps.adjacency == -1
        probs[..., 1] = ps.adjacency == 0
        probs[..., 2] = ps.adjacency == 1
        ps.adjacency_prob = probs
        ps.update_table(mask)
    return ps
