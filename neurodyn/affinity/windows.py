"""Time windows in seconds and their sample ranges in each recording."""

from __future__ import annotations

import numpy as np

#: Defaults: 8 s windows every 4 s give ~300 windows for a 20-minute recording.
DEFAULT_WIDTH_S = 8.0
DEFAULT_STEP_S = 4.0


def make_windows(t_start: float, t_stop: float, width_s: float, step_s: float) -> np.ndarray:
    """Windows ``[start, start + width)`` every ``step_s`` seconds that fit in ``[t_start, t_stop]``.

    Parameters
    ----------
    t_start, t_stop : float
        Span covered (seconds); ``t_stop`` is exclusive (last sample time + one period).
    width_s, step_s : float
        Window width and step in seconds (both > 0).

    Returns
    -------
    array (W, 2) float64
        Start and end time of each window in seconds. A span shorter than one window gives
        the single window ``[t_start, t_stop)``.
    """
    if not width_s > 0:
        raise ValueError(f"window width must be positive, got {width_s}")
    if not step_s > 0:
        raise ValueError(f"window step must be positive, got {step_s}")
    span = t_stop - t_start
    if span <= width_s:
        return np.array([[t_start, t_stop]], dtype=np.float64)
    n = int(np.floor((span - width_s) / step_s + 1e-9)) + 1
    starts = t_start + step_s * np.arange(n)
    return np.stack([starts, starts + width_s], axis=1)


def window_samples(times: np.ndarray, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample index ranges ``[start, stop)`` of the samples with ``w0 <= t < w1`` per window.

    Parameters
    ----------
    times : array (T,) increasing seconds
    windows : array (W, 2) seconds

    Returns
    -------
    start, stop : int64 arrays (W,); empty ranges for windows outside the recording.
    """
    start = np.searchsorted(times, windows[:, 0] - 1e-9, side="left").astype(np.int64)
    stop = np.searchsorted(times, windows[:, 1] - 1e-9, side="left").astype(np.int64)
    return start, stop
