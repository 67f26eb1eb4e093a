"""Preprocessing of recordings: resampling to a common rate (more steps in later stages)."""

from __future__ import annotations

import numpy as np

from neurodyn.errors import InputError
from neurodyn.recording import Recording


def resample_linear(
    time: np.ndarray, traces: np.ndarray, fs: float, start: float | None = None
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

    Returns
    -------
    grid : array (T',) seconds, ``start + k / fs`` up to ``time[-1]``
    out : array (T', N) float32
    """
    t0 = time[0] if start is None else start
    n = int(np.floor((time[-1] - t0) * fs + 1e-9)) + 1
    grid = t0 + np.arange(n) / fs
    out = np.empty((n, traces.shape[1]), dtype=np.float32)
    for j in range(traces.shape[1]):
        out[:, j] = np.interp(grid, time, traces[:, j])
    return grid, out


def resample(rec: Recording, fs: float) -> Recording:
    """Resample a recording to ``fs`` Hz on a regular grid (linear interpolation).

    Masked (unobserved) samples are interpolated from observed neighbours and the mask is
    carried to the nearest new sample.
    """
    if fs <= 0:
        raise InputError(rec.source_file or rec.id, f"resampling rate must be positive, got {fs}")
    x = rec.data.astype(np.float64)
    t = rec.times
    mask = rec.mask
    if mask is not None:
        x = x.copy()
        for j in range(x.shape[1]):
            ok = mask[:, j]
            x[~ok, j] = np.interp(t[~ok], t[ok], x[ok, j])
    grid, out = resample_linear(t, x, fs)
    new_mask = None
    if mask is not None:
        nearest = np.clip(np.searchsorted(t, grid), 0, len(t) - 1)
        new_mask = mask[nearest]
    return rec.replace(
        traces=out, time=grid, fs=float(fs), mask=new_mask, meta={**rec.meta, "resampled_from_hz": rec.fs}
    )
