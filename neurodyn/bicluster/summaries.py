"""Posterior summaries accumulated on the fly (memory flat in the number of iterations) and
point estimates of partitions that minimise posterior expected loss.

Identifiability: each cluster's latent is defined up to a shift (absorbed by d_i) and an
invertible linear map of x (absorbed by c_i). Before accumulating, each sample is put in a
canonical form: mu_k and x_k are centred in time (the means move into d_i), x_k is rotated to
its principal axes (SVD), and each axis is signed so that the members' loadings sum to >= 0.
Trajectory moments are kept per neuron, so they need no alignment of cluster labels across
samples; the posterior mean of a point-estimate cluster is the average over its members.
Partition summaries (co-clustering matrices) are invariant to label switching.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform


def canonical_form(X: np.ndarray, theta: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical (centred, rotated, signed) trajectories and coefficients.

    Parameters
    ----------
    X : (K, T, q) trajectories (column 0 = mu).   theta : (N, q) (d_i, c_i).   z : (N,) labels.

    Returns
    -------
    Xc : (K, T, q), thetac : (N, q) with the same linear predictor up to a constant per neuron
    that is moved into d_i (so psi is unchanged).
    """
    Xc = X.copy()
    th = theta.copy()
    for k in range(X.shape[0]):
        mem = np.flatnonzero(z == k)
        mean = Xc[k].mean(axis=0)
        Xc[k] -= mean
        th[mem, 0] += mean[0] + th[mem, 1:] @ mean[1:]
        lat = Xc[k, :, 1:]
        if lat.shape[1] == 0:
            continue
        # principal axes: eigenvectors of the (q-1, q-1) Gram matrix, largest first (the right
        # singular vectors of lat, without an SVD of the (T, q-1) matrix)
        rot = np.linalg.eigh(lat.T @ lat)[1][:, ::-1]
        Xc[k, :, 1:] = lat @ rot
        c = th[mem, 1:] @ rot
        sign = np.where(c.sum(axis=0) < 0, -1.0, 1.0)
        Xc[k, :, 1:] *= sign
        th[mem, 1:] = c * sign
    return Xc, th


@njit(cache=True)
def _add_moments(lat_sum: np.ndarray, lat_sq: np.ndarray, X: np.ndarray, z: np.ndarray) -> None:
    """lat_sum[i] += X[z[i]] and lat_sq[i] += X[z[i]]**2 in place (no (N, T, q) temporaries)."""
    N, T, q = lat_sum.shape
    for i in range(N):
        k = z[i]
        for t in range(T):
            for j in range(q):
                v = X[k, t, j]
                lat_sum[i, t, j] += v
                lat_sq[i, t, j] += v * v


def similarity_grid(T: int, max_bins: int) -> np.ndarray:
    """Bins at which the state similarity matrix is accumulated: all T bins when T <= max_bins,
    else every ``ceil(T / max_bins)``-th bin (block-downsampled grid, first bin of each block).

    Returns (G,) int indices into 0..T-1, G <= max(max_bins, 1)."""
    step = max(1, -(-T // max(int(max_bins), 1)))
    return np.arange(0, T, step)


def expand_grid(labels: np.ndarray, grid: np.ndarray, T: int) -> np.ndarray:
    """Labels (G,) on a :func:`similarity_grid` spread to all T bins (each block takes the label
    of its first bin)."""
    idx = np.searchsorted(grid, np.arange(T), side="right") - 1
    return labels[idx]


class Accumulator:
    """Running sums of one chain's thinned post-burn-in samples.

    Holds co-clustering counts of neurons (N, N) and of time bins on the grid
    :func:`similarity_grid` (G, G) with G <= ``max_similarity_bins``, per-neuron first and
    second moments of the canonical trajectory (N, T, q), sums of d_i and r_i, and small traces.
    Memory is O(N^2 + G^2 + N T q), independent of the number of samples.
    """

    def __init__(self, N: int, T: int, q: int, max_states: int,
                 max_similarity_bins: int = 2000) -> None:
        self.n = 0
        self.grid = similarity_grid(T, max_similarity_bins)
        self.neuron_co = np.zeros((N, N))
        self.state_co = np.zeros((self.grid.size, self.grid.size), dtype=np.float32)
        self.lat_sum = np.zeros((N, T, q))
        self.lat_sq = np.zeros((N, T, q))
        self.d_sum = np.zeros(N)
        self.r_sum = np.zeros(N)
        self.state_occ = np.zeros(max_states)
        self.n_clusters: list[int] = []
        self.n_states: list[int] = []
        self.loglik: list[float] = []

    def add(self, z: np.ndarray, s: np.ndarray, X: np.ndarray, theta: np.ndarray, r: np.ndarray,
            loglik: float, L: int) -> None:
        """Add one sample (z (N,), s (T,), X (K, T, q), theta (N, q), r (N,))."""
        self.n += 1
        onehot = np.zeros((z.size, X.shape[0]))
        onehot[np.arange(z.size), z] = 1.0
        self.neuron_co += onehot @ onehot.T
        sg = s[self.grid]
        sh = np.zeros((sg.size, L), dtype=np.float32)
        sh[np.arange(sg.size), sg] = 1.0
        self.state_co += sh @ sh.T
        Xc, th = canonical_form(X, theta, z)
        _add_moments(self.lat_sum, self.lat_sq, Xc, z)
        self.d_sum += th[:, 0]
        self.r_sum += r
        self.state_occ += np.bincount(s, minlength=L)[: self.state_occ.size]
        self.n_clusters.append(int(X.shape[0]))
        self.n_states.append(int(np.unique(s).size))
        self.loglik.append(float(loglik))

    def merge(self, other: Accumulator) -> None:
        """Add another chain's sums into this one (traces are kept per chain by the caller)."""
        self.n += other.n
        for name in ("neuron_co", "state_co", "lat_sum", "lat_sq", "d_sum", "r_sum", "state_occ"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def binder_loss(labels: np.ndarray, psm: np.ndarray) -> float:
    """Posterior expected Binder loss (equal costs) of a partition: sum_{i<j} |1[c_i=c_j] - P_ij|."""
    same = labels[:, None] == labels[None, :]
    return float(np.abs(same - psm)[np.triu_indices(labels.size, 1)].sum())


def vi_lower_bound(labels: np.ndarray, psm: np.ndarray) -> float:
    """Lower bound of the posterior expected variation of information (Wade & Ghahramani 2018)."""
    same = (labels[:, None] == labels[None, :]).astype(float)
    a = np.log2(same.sum(axis=1))
    b = np.log2((same * psm).sum(axis=1))
    c = np.log2(psm.sum(axis=1))
    return float(np.mean(a - 2 * b + c))


def relabel(labels: np.ndarray) -> np.ndarray:
    """Relabel 0, 1, ... in order of first appearance."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inv]


def point_estimate(psm: np.ndarray, loss: str = "binder", max_clusters: int = 30) -> np.ndarray:
    """Partition minimising the posterior expected loss among candidates.

    Candidates are the cuts (1..max_clusters groups) of average- and complete-linkage trees of
    1 - psm, a standard search (as in mcclust / salso-style summaries) that needs no stored
    samples. ``loss`` is "binder" or "vi" (the VI lower bound).
    """
    n = psm.shape[0]
    if n == 1:
        return np.zeros(1, dtype=int)
    d = 1.0 - np.asarray(psm, dtype=float)
    np.fill_diagonal(d, 0.0)
    cond = squareform(np.clip(0.5 * (d + d.T), 0, 1), checks=False)
    f = binder_loss if loss == "binder" else vi_lower_bound
    best, best_loss = np.zeros(n, dtype=int), f(np.zeros(n, dtype=int), psm)
    for method in ("average", "complete"):
        tree = linkage(cond, method=method)
        for k in range(2, min(n, max_clusters) + 1):
            lab = fcluster(tree, k, criterion="maxclust") - 1
            val = f(lab, psm)
            if val < best_loss - 1e-12:
                best, best_loss = lab, val
    return relabel(best)


def trajectory_summary(acc: Accumulator, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean and 95% band (mean +- 1.96 sd, Gaussian approximation) of each
    point-estimate cluster's canonical trajectory, averaging the per-neuron moments of members.

    Returns mean, lower, upper, each (K, T, q).
    """
    K = int(labels.max()) + 1
    T, q = acc.lat_sum.shape[1:]
    mean, lo, hi = np.zeros((K, T, q)), np.zeros((K, T, q)), np.zeros((K, T, q))
    for k in range(K):
        mem = labels == k
        m1 = acc.lat_sum[mem].mean(axis=0) / acc.n
        m2 = acc.lat_sq[mem].mean(axis=0) / acc.n
        sd = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
        mean[k], lo[k], hi[k] = m1, m1 - 1.96 * sd, m1 + 1.96 * sd
    return mean, lo, hi
