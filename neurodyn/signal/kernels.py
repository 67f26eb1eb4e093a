"""Pure array kernels of signal processing: arrays in, arrays out, no I/O, no Recording.

Time runs along axis 0 and channels along axis 1. The ``preprocess`` stage composes these
per contiguous segment and per block of :data:`CHANNEL_BLOCK` channels (:func:`by_channels`).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np
import scipy.signal

from neurodyn.guard import check_alloc

CHANNEL_BLOCK = 16  # channels processed together in float64 by :func:`by_channels`


def resample_linear(
    time: np.ndarray, traces: np.ndarray, fs: float, start: float | None = None, *,
    param: str = "fs",
) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate irregular samples onto a regular grid.

    Parameters
    ----------
    time : array (T,)
        Strictly increasing sample times in seconds.
    traces : array (T, N)
    fs : float
        Target rate in Hz.
    start : float, optional
        First grid time (default ``time[0]``).
    param : str
        The parameter that set ``fs``, named when the grid would not fit in memory.

    Returns
    -------
    grid : array (T',) seconds, ``start + k / fs`` up to ``time[-1]``
    out : array (T', N) float32
    """
    t0 = time[0] if start is None else start
    n_float = np.floor((time[-1] - t0) * fs + 1e-9) + 1
    check_alloc((n_float, traces.shape[1] + 2), np.float32, "the resampled traces", param=param)
    n = int(n_float)
    grid = t0 + np.arange(n) / fs
    out = np.empty((n, traces.shape[1]), dtype=np.float32)
    for j in range(traces.shape[1]):
        out[:, j] = np.interp(grid, time, traces[:, j])
    return grid, out


def fill_gaps(
    x: np.ndarray, observed: np.ndarray, max_gap: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Interpolate short runs of missing samples; keep long runs masked.

    Parameters
    ----------
    x : array (T, N)
        Values; entries where ``observed`` is False are ignored (may be NaN).
    observed : bool array (T, N)
    max_gap : int
        Longest run (in samples) that is interpolated and marked observed.

    Returns
    -------
    y : array (T, N) float64, every entry finite: missing values linearly interpolated from
        the nearest observed neighbours (held constant beyond the first/last observation;
        0 in a channel with no observation at all).
    new_observed : bool array (T, N), True also on the interpolated short runs.
    n_interpolated : int, samples newly marked observed.
    n_masked : int, samples still unobserved.
    """
    y = np.array(x, dtype=np.float64)
    obs = np.array(observed, dtype=bool)
    T, N = y.shape
    idx = np.arange(T)
    n_interp = 0
    for j in range(N):
        ok = obs[:, j]
        if ok.all():
            continue
        if not ok.any():  # nothing to interpolate from: zeros, left masked
            y[:, j] = 0.0
            continue
        y[~ok, j] = np.interp(idx[~ok], idx[ok], y[ok, j])
        # run lengths of missing samples
        miss = np.concatenate(([False], ~ok, [False]))
        edges = np.flatnonzero(np.diff(miss.astype(np.int8)))
        for a, b in zip(edges[::2], edges[1::2]):
            if b - a <= max_gap:
                obs[a:b, j] = True
                n_interp += b - a
    return y, obs, n_interp, int((~obs).sum())


def rereference(x: np.ndarray, ref: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Subtract the mean of channels ``ref`` from channels ``targets``.

    Parameters
    ----------
    x : array (T, N)
    ref, targets : int arrays of channel indices

    Returns
    -------
    array (T, N) float64; columns not in ``targets`` unchanged.
    """
    y = np.array(x, dtype=np.float64)
    y[:, targets] -= channel_mean(x, ref)[:, None]
    return y


def channel_mean(x: np.ndarray, channels: np.ndarray, block: int = CHANNEL_BLOCK) -> np.ndarray:
    """Mean (T,) float64 of the columns ``channels`` of ``x``, summed ``block`` columns at a time."""
    total = np.zeros(x.shape[0], dtype=np.float64)
    for a in range(0, len(channels), block):
        total += x[:, channels[a:a + block]].sum(axis=1, dtype=np.float64)
    return total / max(len(channels), 1)


def by_channels(x: np.ndarray, fn: Callable[[np.ndarray, slice], np.ndarray],
                block: int = CHANNEL_BLOCK) -> np.ndarray:
    """Apply a channel-wise ``fn`` to float64 blocks of ``block`` columns of ``x``.

    Parameters
    ----------
    x : array (T, N)
    fn : callable
        ``fn(xb, cols) -> (T', n)``: ``xb`` is ``x[:, cols]`` as a float64 copy it may modify.
        ``T'`` must be the same for every block.
    block : int

    Returns
    -------
    array (T', N) float32
    """
    out = None
    for a in range(0, x.shape[1], block):
        cols = slice(a, min(a + block, x.shape[1]))
        y = fn(np.array(x[:, cols], dtype=np.float64), cols)
        if out is None:
            out = np.empty((y.shape[0], x.shape[1]), dtype=np.float32)
        out[:, cols] = y
    return np.empty((x.shape[0], 0), dtype=np.float32) if out is None else out


def bandpass_sos(fs: float, low: float | None, high: float | None, order: int = 4) -> np.ndarray:
    """Second-order sections of a Butterworth band-, high- or low-pass filter (Hz)."""
    nyq = fs / 2.0
    if low is not None and high is not None:
        if not 0 < low < high < nyq:
            raise ValueError(f"band {low}-{high} Hz must satisfy 0 < low < high < {nyq} Hz")
        return scipy.signal.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    if low is not None:
        if not 0 < low < nyq:
            raise ValueError(f"high-pass {low} Hz must lie in (0, {nyq}) Hz")
        return scipy.signal.butter(order, low, btype="highpass", fs=fs, output="sos")
    if high is not None:
        if not 0 < high < nyq:
            raise ValueError(f"low-pass {high} Hz must lie in (0, {nyq}) Hz")
        return scipy.signal.butter(order, high, btype="lowpass", fs=fs, output="sos")
    raise ValueError("a band-pass needs a low or a high cut-off")


def apply_sos(x: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """Zero-phase filtering along time (axis 0) with ``scipy.signal.sosfiltfilt``."""
    padlen = min(3 * (2 * len(sos) + 1), x.shape[0] - 1)
    return scipy.signal.sosfiltfilt(sos, x, axis=0, padlen=max(padlen, 0))


def notch(x: np.ndarray, fs: float, freq: float, q: float = 30.0) -> np.ndarray:
    """Zero-phase IIR notch at ``freq`` Hz (``scipy.signal.iirnotch`` + ``filtfilt``)."""
    if not 0 < freq < fs / 2:
        raise ValueError(f"notch {freq} Hz must lie in (0, {fs / 2}) Hz")
    b, a = scipy.signal.iirnotch(freq, q, fs=fs)
    padlen = min(3 * max(len(a), len(b)), x.shape[0] - 1)
    return scipy.signal.filtfilt(b, a, x, axis=0, padlen=max(padlen, 0))


def rate_ratio(fs: float, target: float, max_denominator: int = 1000) -> tuple[int, int] | None:
    """``(up, down)`` with ``target / fs == up / down`` (rel. 1e-9), or None if not rational."""
    frac = Fraction(target / fs).limit_denominator(max_denominator)
    if frac.numerator == 0 or abs(frac.numerator / frac.denominator - target / fs) > 1e-9 * (
        target / fs
    ):
        return None
    return frac.numerator, frac.denominator


def resample_polyphase(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Polyphase resampling along axis 0 by ``up/down`` (``scipy.signal.resample_poly``)."""
    return scipy.signal.resample_poly(x, up, down, axis=0)


def rebin_sum(x: np.ndarray, factor: int) -> np.ndarray:
    """Sum consecutive groups of ``factor`` rows (a trailing partial group is summed too)."""
    T = x.shape[0]
    n = -(-T // factor)
    pad = n * factor - T
    if pad:
        x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], dtype=x.dtype)])
    return x.reshape(n, factor, *x.shape[1:]).sum(axis=1)


def zscore(x: np.ndarray, observed: np.ndarray | None = None) -> np.ndarray:
    """Per-channel z-score using observed samples; constant channels become 0."""
    x = np.asarray(x, dtype=np.float64)
    if observed is None:
        mu, sd = x.mean(axis=0), x.std(axis=0)
    else:
        xm = np.ma.masked_array(x, ~observed)
        mu, sd = xm.mean(axis=0).filled(0.0), xm.std(axis=0).filled(0.0)
    sd = np.where(sd > 0, sd, 1.0)
    return (x - mu) / sd


def dff_baseline(x: np.ndarray, percentile: float = 8.0, observed: np.ndarray | None = None
                 ) -> np.ndarray:
    """F0 (N,): the ``percentile`` of each channel's observed samples."""
    if observed is None:
        return np.percentile(x, percentile, axis=0)
    return np.array([np.percentile(x[observed[:, j], j], percentile) for j in range(x.shape[1])])


def dff(x: np.ndarray, percentile: float = 8.0, observed: np.ndarray | None = None
        ) -> tuple[np.ndarray, np.ndarray]:
    """``(F - F0) / F0`` per channel, F0 the ``percentile`` of the observed samples.

    Returns the normalised array and F0 (N,). Raises ValueError where F0 is 0.
    """
    x = np.asarray(x, dtype=np.float64)
    f0 = dff_baseline(x, percentile, observed)
    if np.any(np.abs(f0) < 1e-12):
        raise ValueError(f"dF/F baseline is zero in channels {np.flatnonzero(np.abs(f0) < 1e-12)[:5]}")
    return (x - f0) / f0, f0


def derivative(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Time derivative along axis 0 (``numpy.gradient`` with the time stamps, units/s)."""
    if x.shape[0] < 2:
        return np.zeros_like(x, dtype=np.float64)
    return np.gradient(np.asarray(x, dtype=np.float64), t, axis=0)


def segments(time: np.ndarray, fs: float) -> list[slice]:
    """Contiguous runs of ``time`` (a step over 1.5 sampling periods starts a new one)."""
    if len(time) < 2:
        return [slice(0, len(time))]
    breaks = np.flatnonzero(np.diff(time) > 1.5 / fs) + 1
    bounds = np.concatenate(([0], breaks, [len(time)]))
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def is_regular(time: np.ndarray, fs: float, rtol: float = 1e-3) -> bool:
    """True when every step of ``time`` equals ``1/fs`` within ``rtol``."""
    if len(time) < 2:
        return True
    return bool(np.allclose(np.diff(time), 1.0 / fs, rtol=rtol, atol=0))
