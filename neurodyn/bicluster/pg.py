"""Polya-Gamma augmentation of the negative-binomial likelihood (Polson, Scott & Windle 2013).

For y ~ NB(r, sigmoid(psi)),  p(y | psi) ∝ e^{kappa psi} E[e^{-omega psi^2 / 2}] with
omega ~ PG(y + r, 0) and kappa = (y - r) / 2. Conditional on omega ~ PG(y + r, psi), the
likelihood in psi is Gaussian: exp(kappa psi - omega psi^2 / 2). Drawing omega from this
conditional is an exact Gibbs block.
"""

from __future__ import annotations

import numpy as np
from polyagamma import random_polyagamma


def draw_omega(y: np.ndarray, r: np.ndarray, psi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """omega[i, t] ~ PG(y[i, t] + r[i], psi[i, t]); shapes (N, T), (N,), (N, T)."""
    h = y + r[:, None]
    return random_polyagamma(h, psi, random_state=rng)


def kappa(y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """kappa[i, t] = (y[i, t] - r[i]) / 2."""
    return 0.5 * (y - r[:, None])
