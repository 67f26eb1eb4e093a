"""Data-driven starting values (no effect on the validity of the chain, only on where it starts).

* neurons (``init_factor``): factor analysis with varimax rotation of smoothed, standardised
  log counts; neurons whose loadings fall on the same factors (cosine distance of normalised
  squared loadings, average linkage) start together (3 starting groups by default);
* neurons (``init_labels``): spectral clustering of |correlation| (kept as an alternative);
* states: k-means on a smoothed, PCA-reduced population activity with a few groups, in blocks.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def _smooth(y: np.ndarray, sigma: float) -> np.ndarray:
    z = gaussian_filter1d(np.log1p(y), sigma, axis=1)
    z = z - z.mean(axis=1, keepdims=True)
    sd = z.std(axis=1, keepdims=True)
    return z / np.where(sd > 0, sd, 1.0)


def init_labels(y: np.ndarray, seed: int, max_groups: int = 10) -> np.ndarray:
    """Starting neuron labels (N,) from counts y (N, T)."""
    from sklearn.cluster import SpectralClustering

    N = y.shape[0]
    if N < 3:
        return np.zeros(N, dtype=np.int64)
    z = _smooth(y, 3.0)
    aff = np.abs(np.corrcoef(z)) ** 2
    np.fill_diagonal(aff, 0.0)
    deg = aff.sum(axis=1)
    dinv = 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0))
    ev = np.sort(np.linalg.eigvalsh(dinv[:, None] * aff * dinv[None, :]))[::-1]
    kmax = min(max_groups, N - 1)
    k = int(np.argmax(ev[: kmax] - ev[1: kmax + 1])) + 1
    if k == 1:
        return np.zeros(N, dtype=np.int64)
    sc = SpectralClustering(k, affinity="precomputed", random_state=seed, assign_labels="discretize")
    return sc.fit_predict(aff + 1e-6).astype(np.int64)


def init_states(y: np.ndarray, n_states: int, seed: int) -> np.ndarray:
    """Starting state sequence (T,) from counts y (N, T): k-means of smoothed activity."""
    from sklearn.cluster import KMeans

    T = y.shape[1]
    k = max(1, min(n_states, 3))
    if k == 1 or T < 2 * k:
        return np.zeros(T, dtype=np.int64)
    z = _smooth(y, 5.0).T
    u, s, _ = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    feat = u[:, : min(5, u.shape[1])] * s[: min(5, u.shape[1])]
    return KMeans(k, n_init=4, random_state=seed).fit_predict(feat).astype(np.int64)


def init_factor(y: np.ndarray, seed: int, latent_dim: int = 2, groups: int = 3) -> np.ndarray:
    """Starting neuron labels (N,) from counts y (N, T) by varimax factor loadings.

    Uses m = groups * (latent_dim + 1) factors (capped by N // 3) and cuts the loading tree into
    m // (latent_dim + 1) starting groups; the sampler then opens and closes clusters freely, so
    ``groups`` is a starting point, not a choice of the number of clusters.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.decomposition import FactorAnalysis

    N, T = y.shape
    m = min(groups * (latent_dim + 1), N // 3, T - 1)
    k = m // (latent_dim + 1)
    if k <= 1:
        return np.zeros(N, dtype=np.int64)
    z = _smooth(y, 1.5).T
    W = FactorAnalysis(m, rotation="varimax", random_state=seed).fit(z).components_.T
    F = (W**2 + 1e-12) / ((W**2).sum(axis=1, keepdims=True) + 1e-12 * m)  # a zero row: uniform
    tree = linkage(F, method="average", metric="cosine")
    return (fcluster(tree, k, criterion="maxclust") - 1).astype(np.int64)


def similarity(y: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """(N, N) absolute correlation of smoothed log counts (data only; zero diagonal)."""
    if y.shape[0] < 2:
        return np.zeros((y.shape[0], y.shape[0]))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.nan_to_num(np.abs(np.corrcoef(_smooth(y, sigma))))
    np.fill_diagonal(c, 0.0)
    return c


def init_latents(y: np.ndarray, z: np.ndarray, latent_dim: int, d0: np.ndarray,
                 sigma: float = 2.0) -> tuple[list[np.ndarray], np.ndarray]:
    """Starting trajectories and loadings from the data: per cluster, mu_k is the members'
    mean smoothed log rate around their own means (d0, the prior means of d_i) and x_k the top
    ``latent_dim`` principal components of the rest, scaled so the loadings c_i are O(1).

    Without it every chain starts from X = 0, c = 0 and climbs for hundreds of sweeps, because
    the Gibbs blocks of X and of its noise covariance Q move each other in small steps.

    Returns (K trajectories (T, q), theta (N, q))."""
    N, T = y.shape
    lr = gaussian_filter1d(np.log(y + 0.5), sigma, axis=1)
    dev = lr - lr.mean(axis=1, keepdims=True)
    theta = np.zeros((N, latent_dim + 1))
    theta[:, 0] = d0
    xs = []
    for k in range(int(z.max()) + 1):
        mem = np.flatnonzero(z == k)
        x = np.zeros((T, latent_dim + 1))
        x[:, 0] = dev[mem].mean(axis=0)
        res = dev[mem] - x[:, 0]
        u, s, vt = np.linalg.svd(res, full_matrices=False)
        p = min(latent_dim, s.size)
        scale = np.sqrt(max(mem.size, 1))
        x[:, 1:1 + p] = (vt[:p] * s[:p, None]).T / scale
        theta[mem, 1:1 + p] = u[:, :p] * scale
        xs.append(x)
    return xs, theta
