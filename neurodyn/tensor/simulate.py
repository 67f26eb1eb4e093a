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


def component_members(matrices: np.ndarray, frac: float = 0.7) -> np.ndarray:
    """Neurons whose strength (row sum) in a component is at least ``frac`` of its maximum.

    A deliberately simple stand-in for community detection, used to score recovery.

    Parameters
    ----------
    matrices : array (R, N, N)

    Returns
    -------
    bool array (R, N)
    """
    strength = matrices.sum(axis=2)
    return strength >= frac * np.maximum(strength.max(axis=1, keepdims=True), 1e-300)


def match_components(matrices: np.ndarray, membership: np.ndarray, frac: float = 0.7) -> np.ndarray:
    """For each planted group, the component whose strong neurons best match it.

    Parameters
    ----------
    matrices : array (R, N, N)
        Component patterns (non-negative, symmetric).
    membership : int array (N,)
        Planted group per neuron, -1 for background.

    Returns
    -------
    int array (G,): component per group, from Hungarian matching on the Jaccard index between
    the group and the component's members (:func:`component_members`).
    """
    from scipy.optimize import linear_sum_assignment

    members = component_members(matrices, frac)
    groups = np.unique(membership[membership >= 0])
    score = np.zeros((len(groups), matrices.shape[0]))
    for gi, g in enumerate(groups):
        truth = membership == g
        inter = (members & truth).sum(axis=1)
        union = (members | truth).sum(axis=1)
        score[gi] = inter / np.maximum(union, 1)
    rows, cols = linear_sum_assignment(-score)
    out = np.full(len(groups), -1, dtype=np.int64)
    out[rows] = cols
    return out


def threshold_groups(matrices: np.ndarray, components: np.ndarray, frac: float = 0.7) -> np.ndarray:
    """Neuron -> index ``g`` of the component ``components[g]`` in which it is a member with the
    largest normalised strength, or -1 when it is a member of none of them. (N,) int."""
    strength = np.stack([matrices[c].sum(axis=1) for c in components])
    strength = strength / np.maximum(strength.max(axis=1, keepdims=True), 1e-300)
    best = np.argmax(strength, axis=0)
    return np.where(strength.max(axis=0) >= frac, best, -1)
