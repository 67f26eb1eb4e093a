"""Slow, obviously correct affinity implementations (tests and benchmark baselines).

``affinity_loop`` walks pair by pair and window by window in plain Python/numpy;
``affinity_vectorised`` materialises the ``pair x time`` array for a block of pairs and averages
it with cumulative sums (the straightforward fast-numpy approach the numba kernel replaces).
Both take the same arguments as :func:`neurodyn.affinity.kernels.windowed_affinity` and return
``(out, ok)`` instead of writing into arrays.
"""

from __future__ import annotations

import numpy as np


def _instant(x: np.ndarray, y: np.ndarray, kind: int, sigma: float) -> np.ndarray:
    gauss = np.exp(-((x - y) ** 2) / (2.0 * sigma**2))
    if kind == 0:
        return np.sqrt(np.maximum(0.0, x * y)) * gauss
    return gauss


def affinity_loop(s, obs, pair_i, pair_j, win_start, win_stop, min_count, kind, sigma):
    """Per-pair, per-window reference. Returns ``out`` (P, W) float64 and ``ok`` (P, W) bool."""
    P, W = len(pair_i), len(win_start)
    out = np.zeros((P, W))
    ok = np.zeros((P, W), dtype=bool)
    for p in range(P):
        i, j = pair_i[p], pair_j[p]
        for w in range(W):
            sl = slice(win_start[w], win_stop[w])
            both = obs[i, sl] & obs[j, sl]
            n = int(both.sum())
            if n == 0 or n < min_count[w]:
                continue
            ok[p, w] = True
            x, y = s[i, sl][both], s[j, sl][both]
            if kind == 1:
                if x.std() > 0 and y.std() > 0:
                    out[p, w] = max(0.0, float(np.corrcoef(x, y)[0, 1]))
            else:
                out[p, w] = float(np.mean(_instant(x, y, kind, sigma)))
    return out, ok


def affinity_vectorised(
    s, obs, pair_i, pair_j, win_start, win_stop, min_count, kind, sigma, block: int = 2048
):
    """Vectorised numpy: full-resolution pair x time per block of pairs, window sums by cumsum.

    Returns ``out`` (P, W) float64 and ``ok`` (P, W) bool.
    """
    P, W = len(pair_i), len(win_start)
    out = np.zeros((P, W))
    ok = np.zeros((P, W), dtype=bool)
    for b0 in range(0, P, block):
        bi, bj = pair_i[b0:b0 + block], pair_j[b0:b0 + block]
        both = obs[bi] & obs[bj]
        x, y = s[bi], s[bj]

        def wsum(v):
            c = np.concatenate([np.zeros((v.shape[0], 1)), np.cumsum(v, axis=1)], axis=1)
            return c[:, win_stop] - c[:, win_start]

        n = wsum(both.astype(np.float64))
        valid = (n > 0) & (n >= min_count[None, :])
        safe = np.where(n > 0, n, 1.0)
        if kind == 1:
            mx, my = wsum(np.where(both, x, 0)) / safe, wsum(np.where(both, y, 0)) / safe
            sxy = wsum(np.where(both, x * y, 0)) / safe - mx * my
            sxx = wsum(np.where(both, x * x, 0)) / safe - mx * mx
            syy = wsum(np.where(both, y * y, 0)) / safe - my * my
            den = np.sqrt(np.maximum(sxx, 0) * np.maximum(syy, 0))
            r = np.where(den > 0, sxy / np.where(den > 0, den, 1.0), 0.0)
            val = np.clip(r, 0.0, 1.0)
        else:
            val = wsum(np.where(both, _instant(x, y, kind, sigma), 0.0)) / safe
        out[b0:b0 + block] = np.where(valid, val, 0.0)
        ok[b0:b0 + block] = valid
    return out, ok
