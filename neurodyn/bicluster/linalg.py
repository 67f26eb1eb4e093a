"""Tiny dense linear-algebra kernels (numba) for the q x q matrices of the sampler.

LAPACK calls carry microseconds of overhead each; the sampler does thousands per sweep on
3 x 3 matrices, so these loops are much faster. All matrices are symmetric positive definite
where stated; results are written into new arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LOG2PI = float(np.log(2.0 * np.pi))


@njit(cache=True, error_model="numpy")
def chol(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of an SPD matrix (q, q); tiny jitter if it is numerically singular."""
    low = np.zeros(a.shape)
    chol_into(a, low)
    return low


@njit(cache=True, error_model="numpy")
def tri_inv(low: np.ndarray) -> np.ndarray:
    """Inverse of a lower-triangular matrix."""
    n = low.shape[0]
    inv = np.zeros((n, n))
    for j in range(n):
        inv[j, j] = 1.0 / low[j, j]
        for i in range(j + 1, n):
            s = 0.0
            for k in range(j, i):
                s -= low[i, k] * inv[k, j]
            inv[i, j] = s / low[i, i]
    return inv


@njit(cache=True, error_model="numpy")
def logdet_chol(low: np.ndarray) -> float:
    """log|A| from the Cholesky factor of A."""
    s = 0.0
    for i in range(low.shape[0]):
        s += np.log(low[i, i])
    return 2.0 * s


@njit(cache=True, error_model="numpy")
def mvn_logpdf_chol(x: np.ndarray, mean: np.ndarray, low: np.ndarray) -> float:
    """log N(x; mean, L L^T) given the lower Cholesky factor L."""
    n = x.shape[0]
    z = np.empty(n)
    for i in range(n):
        t = x[i] - mean[i]
        for k in range(i):
            t -= low[i, k] * z[k]
        z[i] = t / low[i, i]
    return -0.5 * (z @ z) - 0.5 * logdet_chol(low) - 0.5 * n * LOG2PI


@njit(cache=True, error_model="numpy")
def mv(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """a @ x for a small matrix and vector."""
    n, k = a.shape
    out = np.zeros(n)
    for i in range(n):
        s = 0.0
        for l in range(k):
            s += a[i, l] * x[l]
        out[i] = s
    return out


@njit(cache=True, error_model="numpy")
def dot(x: np.ndarray, y: np.ndarray) -> float:
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * y[i]
    return s


# -- allocation-free variants (write into ``out``) used in the FFBS inner loops ---------------
@njit(cache=True, error_model="numpy")
def chol_into(a: np.ndarray, low: np.ndarray) -> None:
    """Lower Cholesky factor of SPD ``a`` written into ``low``."""
    n = a.shape[0]
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s -= low[j, k] * low[j, k]
        if s <= 1e-300:
            s = 1e-300
        d = np.sqrt(s)
        low[j, j] = d
        for i in range(j + 1, n):
            t = a[i, j]
            for k in range(j):
                t -= low[i, k] * low[j, k]
            low[i, j] = t / d
        for i in range(j):
            low[i, j] = 0.0


@njit(cache=True, error_model="numpy")
def chol_solve_into(low: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """Solve (L L^T) out = b given the lower Cholesky factor L."""
    n = low.shape[0]
    for i in range(n):
        t = b[i]
        for k in range(i):
            t -= low[i, k] * out[k]
        out[i] = t / low[i, i]
    for i in range(n - 1, -1, -1):
        t = out[i]
        for k in range(i + 1, n):
            t -= low[k, i] * out[k]
        out[i] = t / low[i, i]


@njit(cache=True, error_model="numpy")
def tri_inv_into(low: np.ndarray, inv: np.ndarray) -> None:
    """Inverse of a lower-triangular matrix written into ``inv`` (lower triangular)."""
    n = low.shape[0]
    for j in range(n):
        inv[j, j] = 1.0 / low[j, j]
        for i in range(j):
            inv[i, j] = 0.0
        for i in range(j + 1, n):
            s = 0.0
            for k in range(j, i):
                s -= low[i, k] * inv[k, j]
            inv[i, j] = s / low[i, i]


@njit(cache=True, error_model="numpy")
def gram_t_into(li: np.ndarray, out: np.ndarray) -> None:
    """``out = li' li`` for lower-triangular ``li`` (so (L L')^-1 from li = L^-1)."""
    n = li.shape[0]
    for i in range(n):
        for j in range(i + 1):
            acc = 0.0
            for k in range(i, n):
                acc += li[k, i] * li[k, j]
            out[i, j] = acc
            out[j, i] = acc
