"""Per-neuron signal preparation before the pairwise kernels (smoothing, derivative, scaling)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

#: Consistency constant turning a median absolute deviation into a Gaussian standard deviation.
MAD_TO_SD = 1.4826


def fill_unobserved(x: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Linearly interpolate unobserved samples from observed neighbours (per column).

    Parameters
    ----------
    x : array (T, N)
    obs : bool array (T, N)

    Returns
    -------
    array (T, N) float64; columns without any observed sample become 0.
    """
    out = np.array(x, dtype=np.float64)
    t = np.arange(out.shape[0])
    for j in range(out.shape[1]):
        ok = obs[:, j]
        if ok.all():
            continue
        if not ok.any():
            out[:, j] = 0.0
            continue
        out[~ok, j] = np.interp(t[~ok], t[ok], out[ok, j])
    return out


def robust_scale(x: np.ndarray, obs: np.ndarray, center: bool) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD-based scale (``1.4826 * MAD``) of each column over observed samples.

    Returns
    -------
    loc : array (N,) (zeros when ``center`` is False)
    scale : array (N,) > 0 (columns with zero MAD fall back to their standard deviation, then 1)
    """
    N = x.shape[1]
    loc = np.zeros(N)
    scale = np.ones(N)
    for j in range(N):
        v = x[obs[:, j], j]
        if v.size == 0:
            continue
        m = float(np.median(v))
        if center:
            loc[j] = m
        s = MAD_TO_SD * float(np.median(np.abs(v - m)))
        if not s > 0:
            s = float(np.std(v))
        scale[j] = s if s > 0 else 1.0
    return loc, scale


def prepare(
    x: np.ndarray, obs: np.ndarray, fs: float, kind: str, smooth_s: float
) -> np.ndarray:
    """Signal each kernel compares, per neuron.

    Parameters
    ----------
    x : array (T, N)
        Traces of one animal on a regular grid at ``fs`` Hz (values at unobserved samples ignored).
    obs : bool array (T, N)
        Observed samples.
    fs : float
        Sampling rate in Hz.
    kind : {"differential", "pearson", "gaussian"}
    smooth_s : float
        Standard deviation in seconds of the Gaussian smoothing applied first (0: none).

    Returns
    -------
    array (N, T) float64, neuron-major:
        differential: ``d = (dx/dt) / (1.4826 * MAD(dx/dt))``, the smoothed derivative (central
        differences, per second) in robust-scale units, so ``sigma`` is unit-free;
        gaussian: robust z-score ``(x - median) / (1.4826 * MAD)`` of the smoothed values;
        pearson: the smoothed values.
    """
    y = fill_unobserved(x, obs)
    if smooth_s > 0:
        y = gaussian_filter1d(y, sigma=smooth_s * fs, axis=0, mode="nearest")
    if kind == "differential":
        y = np.gradient(y, axis=0) * fs if y.shape[0] > 1 else np.zeros_like(y)
        _, scale = robust_scale(y, obs, center=False)
        y = y / scale
    elif kind == "gaussian":
        loc, scale = robust_scale(y, obs, center=True)
        y = (y - loc) / scale
    return np.ascontiguousarray(y.T)
