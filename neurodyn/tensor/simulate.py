"""Ground truth for the affinity -> NTF pipeline: simulated animals and recovery scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodyn.io.store import write_recordings
from neurodyn.simulate import simulate_calcium


def write_connectome_simulation(out: Path, *, seed: int = 0, **params) -> Path:
    """Simulate with :func:`neurodyn.simulate.simulate_calcium` and write recordings + truth.

    ``params`` are those of ``simulate_calcium`` (n_animals, n_neurons, n_frames, fs, n_groups,
    missing_fraction, noise). Stage ``"simulate-connectome"``; truth under ``/ground_truth``.
    """
    p = dict(n_animals=4, n_neurons=30, n_frames=1200, fs=4.0, n_groups=3, missing_fraction=0.1,
             noise=0.15)
    p.update(params)
    recs, truth = simulate_calcium(seed=seed, **p)
    return write_recordings(out, recs, params={**p, "seed": seed}, seed=seed,
                            stage="simulate-connectome", extra={"ground_truth": truth})


def match_components(matrices: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """For each planted group, the component whose N x N pattern is most concentrated on it.

    Parameters
    ----------
    matrices : array (R, N, N)
        Component patterns (non-negative, symmetric).
    membership : int array (N,)
        Planted group per neuron, -1 for background.

    Returns
    -------
    int array (G,): component index per group (Hungarian matching on the mean within-group
    affinity divided by the component's mean affinity).
    """
    from scipy.optimize import linear_sum_assignment

    groups = np.unique(membership[membership >= 0])
    score = np.zeros((len(groups), matrices.shape[0]))
    for gi, g in enumerate(groups):
        idx = np.flatnonzero(membership == g)
        for r, m in enumerate(matrices):
            total = m.mean()
            score[gi, r] = m[np.ix_(idx, idx)].mean() / total if total > 0 else 0.0
    rows, cols = linear_sum_assignment(-score)
    out = np.full(len(groups), -1, dtype=np.int64)
    out[rows] = cols
    return out


def threshold_groups(matrices: np.ndarray, components: np.ndarray, frac: float = 0.7) -> np.ndarray:
    """A simple stand-in clustering: neuron -> group whose component gives it the largest
    (max-normalised) strength, or -1 when that strength is below ``frac``. (N,) int."""
    strength = np.stack([matrices[c].sum(axis=1) for c in components])
    strength = strength / np.maximum(strength.max(axis=1, keepdims=True), 1e-300)
    best = np.argmax(strength, axis=0)
    return np.where(strength.max(axis=0) >= frac, best, -1)
