"""Polya-Gamma augmentation of the negative-binomial likelihood (Polson, Scott & Windle 2013).

For y ~ NB(r, sigmoid(psi)),  p(y | psi) ∝ e^{kappa psi} E[e^{-omega psi^2 / 2}] with
omega ~ PG(y + r, 0) and kappa = (y - r) / 2. Conditional on omega ~ PG(y + r, psi), the
likelihood in psi is Gaussian: exp(kappa psi - omega psi^2 / 2). Drawing omega from this
conditional is an exact Gibbs block.

Tempering: the likelihood raised to a power beta in (0, 1] has the same form with y + r and
kappa scaled by beta, so ``beta`` gives exact Gibbs blocks of the tempered posterior
prior x likelihood^beta (used by :mod:`.evidence`).
"""

from __future__ import annotations

import numpy as np
from polyagamma import random_polyagamma


def draw_omega(y: np.ndarray, r: np.ndarray, psi: np.ndarray, rng: np.random.Generator,
               beta: float = 1.0) -> np.ndarray:
    """omega[i, t] ~ PG(beta (y[i, t] + r[i]), psi[i, t]); shapes (N, T), (N,), (N, T)."""
    h = y + r[:, None]
    if beta != 1.0:
        h = beta * h
    return random_polyagamma(h, psi, random_state=rng)


def kappa(y: np.ndarray, r: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """kappa[i, t] = beta (y[i, t] - r[i]) / 2."""
    return (0.5 * beta) * (y - r[:, None])
