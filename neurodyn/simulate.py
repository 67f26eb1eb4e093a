"""Ground-truth generators for multi-animal calcium data with planted interacting groups."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurodyn.recording import Recording


def _smooth_bumps(rng: np.random.Generator, T: int, fs: float, rate_hz: float, tau_s: float) -> np.ndarray:
    """A non-negative latent made of random calcium-like transients (rise then decay)."""
    spikes = rng.random(T) < rate_hz / fs
    amp = rng.gamma(4.0, 0.5, size=T) * spikes
    k = np.arange(int(6 * tau_s * fs) + 1) / fs
    kernel = (1 - np.exp(-k / (0.3 * tau_s))) * np.exp(-k / tau_s)
    return np.convolve(amp, kernel)[:T]


def simulate_calcium(
    n_animals: int = 4,
    n_neurons: int = 30,
    n_frames: int = 1200,
    fs: float = 4.0,
    n_groups: int = 3,
    missing_fraction: float = 0.1,
    noise: float = 0.15,
    seed: int = 0,
) -> tuple[list[Recording], dict]:
    """Simulate animals whose neurons form planted groups that co-activate in known intervals.

    Each group owns one interval (a contiguous stretch of the recording, the same in all
    animals). Inside it, its members follow one shared latent transient train (so their
    derivatives agree); outside it, and for non-members, each neuron follows its own weaker
    independent transients. A fraction of neurons is missing in each animal (not recorded).

    Returns
    -------
    recordings : list of Recording
        One per animal, ``id = "sim/animal<k>"``, units ``dF/F``; events mark the intervals.
    truth : dict
        ``membership`` (N,) int group per neuron (-1 = background), ``intervals``
        (n_groups, 2) seconds, ``labels`` (N,), ``present`` (A, N) bool.
    """
    rng = np.random.default_rng(seed)
    labels = [f"n{i:03d}" for i in range(n_neurons)]
    n_members = n_neurons // (n_groups + 1)
    perm = rng.permutation(n_neurons)
    membership = np.full(n_neurons, -1)
    for g in range(n_groups):
        membership[perm[g * n_members:(g + 1) * n_members]] = g
    seg = n_frames // n_groups
    intervals = np.array([[g * seg, (g + 1) * seg] for g in range(n_groups)], dtype=float) / fs
    t = np.arange(n_frames) / fs
    recs, present = [], np.ones((n_animals, n_neurons), dtype=bool)
    for a in range(n_animals):
        drive = np.stack([_smooth_bumps(rng, n_frames, fs, 0.05, 2.0) * 0.4 for _ in range(n_neurons)], 1)
        for g in range(n_groups):
            on = (t >= intervals[g, 0]) & (t < intervals[g, 1])
            shared = _smooth_bumps(rng, n_frames, fs, 0.15, 2.0)
            members = np.flatnonzero(membership == g)
            gains = rng.uniform(0.8, 1.2, size=members.size)
            drive[np.ix_(on, members)] += shared[on, None] * gains
        x = drive + noise * rng.standard_normal(drive.shape)
        keep = rng.random(n_neurons) >= missing_fraction
        present[a] = keep
        events = pd.DataFrame(
            {"onset": intervals[:, 0], "offset": intervals[:, 1], "label": [f"group{g}" for g in range(n_groups)]}
        )
        recs.append(
            Recording(
                traces=x[:, keep], labels=[labels[i] for i in np.flatnonzero(keep)], modality="calcium",
                fs=fs, units="dF/F", id=f"sim/animal{a}", subject=f"animal{a}", dataset="simulated",
                events=events, meta={"simulator": "calcium", "seed": seed},
            )
        )
    truth = {"membership": membership, "intervals": intervals, "labels": np.array(labels, dtype=object), "present": present}
    return recs, truth
