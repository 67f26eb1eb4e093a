"""Ground-truth generator for the bi-clustering model (the published simulation setting)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurodyn.recording import Recording


def _rotation(theta: float, p: int) -> np.ndarray:
    """A p x p matrix rotating each consecutive coordinate pair by ``theta`` radians."""
    R = np.eye(p)
    for j in range(0, p - 1, 2):
        c, s = np.cos(theta), np.sin(theta)
        R[j:j + 2, j:j + 2] = [[c, -s], [s, c]]
    return R


def simulate_bicluster(
    n_neurons: int = 30,
    n_clusters: int = 3,
    n_bins: int = 500,
    latent_dim: int = 2,
    dispersion: float = 10.0,
    segment: int = 100,
    fs: float = 10.0,
    seed: int = 0,
) -> tuple[Recording, dict]:
    """Simulate spike counts with planted neuron clusters and two dynamical states.

    The published setting (defaults): 30 neurons in 3 clusters of 10, p = 2 latent dimensions per
    cluster plus an intercept trajectory mu_k, 500 bins, negative-binomial counts with r = 10.
    States alternate in segments of ``segment`` bins. State 0: A = 0.01 I (the latent resets to
    its offset b_k every bin, noise sd 0.3); state 1: a slow rotation (0.95 R(pi/20) on x, 0.98 on
    mu). Loadings c_i ~ N(0, 0.7^2 I); baseline rates about 3 counts per bin.

    Returns
    -------
    recording : Recording with (T, N) counts (modality "spikes", units "counts"), events marking
        the state-1 segments.
    truth : dict with ``clusters`` (N,), ``states`` (T,), ``latent`` (K, T, p + 1) (mu first),
        ``d`` (N,), ``c`` (N, p), ``r`` (N,), ``A`` (2, q, q), ``b`` (K, 2, q), ``Q`` (2, q, q).
    """
    rng = np.random.default_rng(seed)
    q = latent_dim + 1
    clusters = np.sort(np.arange(n_neurons) % n_clusters)
    states = (np.arange(n_bins) // segment) % 2
    A = np.stack([0.01 * np.eye(q), np.eye(q)])
    A[1, 0, 0] = 0.98
    A[1, 1:, 1:] = 0.95 * _rotation(np.pi / 20, latent_dim)
    Q = np.stack([0.09 * np.eye(q), 0.09 * np.eye(q)])
    Q[:, 0, 0] = 0.005
    b = np.zeros((n_clusters, 2, q))
    b[:, 0, 1:] = rng.normal(0, 0.5, (n_clusters, latent_dim))
    b[:, 0, 0] = rng.normal(0, 0.1, n_clusters)
    X = np.zeros((n_clusters, n_bins, q))
    for k in range(n_clusters):
        X[k, 0] = rng.normal(0, 0.5, q)
        for t in range(1, n_bins):
            s = states[t]
            X[k, t] = b[k, s] + A[s] @ X[k, t - 1] + rng.multivariate_normal(np.zeros(q), Q[s])
    d = rng.uniform(-0.5, 0.5, n_neurons) + np.log(3.0 / dispersion)
    c = rng.normal(0, 0.7, (n_neurons, latent_dim))
    psi = d[:, None] + X[clusters, :, 0] + np.einsum("ntj,nj->nt", X[clusters, :, 1:], c)
    r = np.full(n_neurons, float(dispersion))
    p = 1.0 / (1.0 + np.exp(-psi))
    y = rng.negative_binomial(r[:, None], 1.0 - p)
    on = np.flatnonzero(np.diff(np.r_[0, states, 0]) == 1)
    off = np.flatnonzero(np.diff(np.r_[0, states, 0]) == -1)
    events = pd.DataFrame({"onset": on / fs, "offset": off / fs, "label": ["state1"] * on.size})
    rec = Recording(
        traces=y.T.astype(np.float32), labels=[f"n{i:03d}" for i in range(n_neurons)],
        modality="spikes", fs=fs, units="counts", id="sim/bicluster", subject="sim",
        dataset="simulated", events=events, meta={"simulator": "bicluster", "seed": seed},
    )
    truth = {"clusters": clusters, "states": states, "latent": X, "d": d, "c": c, "r": r,
             "A": A, "b": b, "Q": Q}
    return rec, truth
