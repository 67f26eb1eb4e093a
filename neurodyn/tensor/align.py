"""Aligning the components of two CP models and scoring their similarity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment


def _unit(f: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(f, axis=0)
    return f / np.where(n > 0, n, 1.0)


def congruence(factors1: Sequence[np.ndarray], factors2: Sequence[np.ndarray]) -> np.ndarray:
    """Product over modes of the cosine similarities between components, (R1, R2)."""
    out = np.ones((factors1[0].shape[1], factors2[0].shape[1]))
    for f1, f2 in zip(factors1, factors2, strict=True):
        out *= _unit(f1).T @ _unit(f2)
    return out


def factor_match_score(
    factors1: Sequence[np.ndarray],
    factors2: Sequence[np.ndarray],
    weights1: np.ndarray | None = None,
    weights2: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Factor match score of two CP models after optimal (Hungarian) component matching.

    Each matched pair ``(r, s)`` scores the product over modes of the cosines of its
    components; when both weight vectors are given it is further multiplied by
    ``1 - |w_r - w_s| / max(w_r, w_s)`` (the FMS of Acar et al. 2011). The score is the mean
    over ``max(R1, R2)`` components (unmatched components count 0), in [0, 1] for
    non-negative factors.

    Returns
    -------
    score : float
    perm : int array (R1,)
        ``perm[r]`` = component of model 2 matched to component ``r`` of model 1 (-1 if none).
    """
    sim = congruence(factors1, factors2)
    if weights1 is not None and weights2 is not None:
        w1, w2 = np.asarray(weights1)[:, None], np.asarray(weights2)[None, :]
        big = np.maximum(np.maximum(w1, w2), 1e-300)
        sim = sim * (1.0 - np.abs(w1 - w2) / big)
    rows, cols = linear_sum_assignment(-sim)
    perm = np.full(sim.shape[0], -1, dtype=np.int64)
    perm[rows] = cols
    return float(sim[rows, cols].sum() / max(sim.shape)), perm


def align_to(
    reference: Sequence[np.ndarray], factors: Sequence[np.ndarray], weights: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """Reorder the components of ``factors`` to best match ``reference`` (same rank)."""
    _, perm = factor_match_score(reference, factors)
    return [f[:, perm] for f in factors], np.asarray(weights)[perm]
