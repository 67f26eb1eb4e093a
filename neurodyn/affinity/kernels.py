"""Numba kernels: pairwise affinities computed and window-averaged in one pass.

The kernels work on plain arrays. Signals are laid out neuron-major, ``(N, T)``, so the inner
loop over time reads contiguous memory. The full-resolution ``pair x time`` array is never
formed: each pair's instantaneous affinities go into a running sum of length T (one buffer per
pair being processed, so extra memory is O(threads x T)); window means are its differences.

Kernels (``KINDS``)
-------------------
differential (0)
    ``a_ij(t) = sqrt(max(0, d_i(t) d_j(t))) * exp(-(d_i(t) - d_j(t))^2 / (2 sigma^2))`` on
    robust-scaled smoothed derivatives ``d`` (see :func:`neurodyn.affinity.signals`). This is
    the documented stand-in for the "differential affinity" of Dyballa et al. (ICLR 2024,
    arXiv 2402.14102), whose exact published formula we could not retrieve: non-negative,
    symmetric, large when both neurons change in the same direction at similar scaled rates,
    zero when either is flat or they move in opposite directions.
pearson (1)
    Rectified Pearson correlation of the (smoothed) values inside each window, ``max(0, r)``.
gaussian (2)
    ``exp(-(z_i(t) - z_j(t))^2 / (2 sigma^2))`` on robust z-scored values, window-averaged.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

KINDS = {"differential": 0, "pearson": 1, "gaussian": 2}


@njit(parallel=True, cache=True, fastmath=True)
def windowed_affinity(
    s: np.ndarray,
    obs: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    win_start: np.ndarray,
    win_stop: np.ndarray,
    min_count: np.ndarray,
    kind: int,
    sigma: float,
    out: np.ndarray,
    ok: np.ndarray,
) -> None:
    """Window-averaged pairwise affinities of one animal, parallel over pairs.

    Parameters
    ----------
    s : float64 array (N, T)
        Prepared signal per neuron (scaled derivative, smoothed value or z-score).
    obs : bool array (N, T)
        True where the sample is observed; a pair's sample counts when both are observed.
    pair_i, pair_j : int64 arrays (P,)
        Neuron indices of each pair.
    win_start, win_stop : int64 arrays (W,)
        Sample range ``[start, stop)`` of each window.
    min_count : int64 array (W,)
        Jointly observed samples a window needs to be valid (else masked, value 0).
    kind : int
        0 differential, 1 rectified Pearson, 2 Gaussian (``KINDS``).
    sigma : float
        Kernel width in scaled units (kinds 0 and 2).
    out : float32 array (P, W), written
        Window means (rectified correlation for kind 1); 0 where invalid.
    ok : bool array (P, W), written
        True where the window had at least ``min_count`` jointly observed samples.
    """
    P = pair_i.shape[0]
    W = win_start.shape[0]
    T = 0
    for w in range(W):
        T = max(T, win_stop[w])
    inv2s2 = 1.0 / (2.0 * sigma * sigma)
    N = s.shape[0]
    root = np.empty((N, T)) if kind == 0 else np.empty((0, 0))
    if kind == 0:  # sqrt(d_i d_j) = sqrt|d_i| sqrt|d_j| when signs agree: one sqrt per sample
        for n in prange(N):
            for t in range(T):
                root[n, t] = math.sqrt(abs(s[n, t]))
    for p in prange(P):
        i = pair_i[p]
        j = pair_j[p]
        if kind != 1:
            # each sample's affinity once, then window sums as differences of running sums
            csum = np.empty(T + 1)
            ccount = np.empty(T + 1, dtype=np.int64)
            csum[0] = 0.0
            ccount[0] = 0
            for t in range(T):
                if obs[i, t] and obs[j, t]:
                    x = s[i, t]
                    y = s[j, t]
                    v = 0.0
                    if kind == 2:
                        v = math.exp(-(x - y) * (x - y) * inv2s2)
                    elif x * y > 0.0:
                        v = root[i, t] * root[j, t] * math.exp(-(x - y) * (x - y) * inv2s2)
                    csum[t + 1] = csum[t] + v
                    ccount[t + 1] = ccount[t] + 1
                else:
                    csum[t + 1] = csum[t]
                    ccount[t + 1] = ccount[t]
            for w in range(W):
                n = ccount[win_stop[w]] - ccount[win_start[w]]
                if n == 0 or n < min_count[w]:
                    out[p, w] = 0.0
                    ok[p, w] = False
                else:
                    out[p, w] = (csum[win_stop[w]] - csum[win_start[w]]) / n
                    ok[p, w] = True
            continue
        for w in range(W):
            _pearson_window(s, obs, i, j, win_start[w], win_stop[w], min_count[w], out, ok, p, w)


@njit(cache=True)
def _pearson_window(s, obs, i, j, a, b, min_count, out, ok, p, w):
    """Rectified Pearson correlation of one pair in one window (two passes, centred)."""
    n = 0
    sx = 0.0
    sy = 0.0
    for t in range(a, b):
        if obs[i, t] and obs[j, t]:
            n += 1
            sx += s[i, t]
            sy += s[j, t]
    if n == 0 or n < min_count:
        out[p, w] = 0.0
        ok[p, w] = False
        return
    ok[p, w] = True
    mx = sx / n
    my = sy / n
    cxy = 0.0
    cxx = 0.0
    cyy = 0.0
    for t in range(a, b):
        if obs[i, t] and obs[j, t]:
            dx = s[i, t] - mx
            dy = s[j, t] - my
            cxy += dx * dy
            cxx += dx * dx
            cyy += dy * dy
    if cxx > 0.0 and cyy > 0.0 and cxy > 0.0:
        out[p, w] = min(cxy / math.sqrt(cxx * cyy), 1.0)
    else:
        out[p, w] = 0.0
