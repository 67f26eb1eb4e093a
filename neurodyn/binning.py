"""Spike-time binning: spike times of many units -> a (bins x units) count matrix.

Bins are half-open, ``[t_start + k * width, t_start + (k + 1) * width)`` for
``k = 0 .. n_bins - 1``; spikes outside ``[t_start, t_start + n_bins * width)`` and outside
``[t_start, t_stop)`` are dropped, so the counts sum to the number of spikes in range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit

from neurodyn.guard import check_alloc


@njit(cache=True)
def _bin_kernel(times, units, n_units, t_start, t_stop, width, n_bins):  # pragma: no cover
    out = np.zeros((n_bins, n_units), dtype=np.float32)
    for i in range(times.shape[0]):
        t = times[i]
        if t < t_start or t >= t_stop:
            continue
        k = int(math.floor((t - t_start) / width))
        if k >= n_bins:  # rounding at the right edge; t < t_stop so it belongs to the last bin
            k = n_bins - 1
        out[k, units[i]] += 1.0
    return out


def bin_spikes(
    times: np.ndarray,
    units: np.ndarray,
    n_units: int,
    t_start: float,
    t_stop: float,
    width: float,
) -> np.ndarray:
    """Count spikes per bin and unit.

    Parameters
    ----------
    times : array (S,) float
        Spike times in seconds (any order).
    units : array (S,) int
        Unit index of each spike, in ``0 .. n_units - 1``.
    n_units : int
    t_start, t_stop : float
        Window in seconds; spikes with ``t_start <= t < t_stop`` are counted.
    width : float
        Bin width in seconds (> 0).

    Returns
    -------
    counts : array (n_bins, n_units) float32, ``n_bins = ceil((t_stop - t_start) / width)``.

    Raises
    ------
    ParamError
        Before allocating, when the counts would not fit in memory
        (:func:`neurodyn.guard.check_alloc`).
    """
    if width <= 0:
        raise ValueError(f"bin width must be positive, got {width}")
    if t_stop <= t_start:
        raise ValueError(f"empty window [{t_start}, {t_stop})")
    times = np.ascontiguousarray(times, dtype=np.float64)
    units = np.ascontiguousarray(units, dtype=np.int64)
    if times.shape != units.shape:
        raise ValueError("times and units differ in length")
    if units.size and (units.min() < 0 or units.max() >= n_units):
        raise ValueError("unit index out of range")
    n_bins = n_bins_for(t_start, t_stop, width)
    check_alloc((n_bins, n_units), np.float32, "the binned spike counts")  # ParamError
    return _bin_kernel(times, units, int(n_units), float(t_start), float(t_stop), float(width),
                       n_bins)


def n_bins_for(t_start: float, t_stop: float, width: float) -> int:
    """Number of bins of ``width`` covering ``[t_start, t_stop)`` (last one may be partial)."""
    n = math.ceil((t_stop - t_start) / width)
    return max(1, int(min(n, 2**62)))


def bin_trains(
    trains: Sequence[np.ndarray],
    width: float,
    t_start: float | None = None,
    t_stop: float | None = None,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Bin a list of per-unit spike-time arrays.

    Parameters
    ----------
    trains : sequence of arrays (n_i,)
        Spike times in seconds, one array per unit.
    width : float
        Bin width in seconds.
    t_start : float, optional
        Default: the first spike time, floored to a multiple of ``width``.
    t_stop : float, optional
        Default: just after the last spike, so every spike is counted.

    Returns
    -------
    counts : array (n_bins, U) float32
    bin_starts : array (n_bins,) seconds
    t_start, t_stop : float, the window used
    """
    lengths = [len(np.ravel(x)) for x in trains]
    times = (np.concatenate([np.ravel(x) for x in trains]).astype(np.float64)
             if trains else np.zeros(0))
    units = np.repeat(np.arange(len(trains)), lengths)
    finite = np.isfinite(times)
    times, units = times[finite], units[finite]
    if t_start is None:
        first = float(times.min()) if times.size else 0.0
        t_start = min(math.floor(first / width) * width, first)  # never past the first spike
    if t_stop is None:
        last = times.max() if times.size else t_start
        t_stop = t_start + (math.floor((last - t_start) / width) + 1) * width
    counts = bin_spikes(times, units, len(trains), t_start, t_stop, width)
    starts = t_start + np.arange(counts.shape[0], dtype=np.float64) * width
    return counts, starts, float(t_start), float(t_stop)
