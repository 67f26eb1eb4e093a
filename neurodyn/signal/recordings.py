"""Operations on whole recordings shared by several stages (ingest, preprocess, readers, affinity).

Resampling onto a regular grid, keeping labelled intervals, and the events inside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurodyn.errors import InputError
from neurodyn.recording import Recording
from neurodyn.signal.kernels import resample_linear


def resample(rec: Recording, fs: float, *, param: str = "fs") -> Recording:
    """Resample a recording to ``fs`` Hz on a regular grid (linear interpolation).

    Masked (unobserved) samples are interpolated from observed neighbours and the mask is
    carried to the nearest new sample. ``param`` names the parameter that set ``fs`` when the
    result would not fit in memory.
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
    grid, out = resample_linear(t, x, fs, param=param)
    new_mask = None
    if mask is not None:
        nearest = np.clip(np.searchsorted(t, grid), 0, len(t) - 1)
        new_mask = mask[nearest]
    return rec.replace(
        traces=out, time=grid, fs=float(fs), mask=new_mask, meta={**rec.meta, "resampled_from_hz": rec.fs}
    )


def concat_intervals(rec: Recording, intervals: Any) -> Recording:
    """Keep only samples inside the intervals (DataFrame onset/offset, seconds).

    Samples of several intervals are concatenated with their own time stamps (gapped
    ``time``); ``meta["segments"]`` lists the kept ``[onset, offset]`` pairs and events
    overlapping none of them are dropped. Raises InputError when no sample falls inside.
    """
    t = rec.times
    keep = np.zeros(t.shape, dtype=bool)
    segs = []
    for on, off in zip(intervals["onset"], intervals["offset"]):
        inside = (t >= on) & (t < off)
        if inside.any():
            keep |= inside
            segs.append([float(on), float(off)])
    if not keep.any():
        raise InputError(rec.source_file or rec.id, "no sample inside the requested intervals")
    return rec.replace(
        traces=rec.data[keep],
        time=t[keep],
        mask=None if rec.mask is None else rec.mask[keep],
        events=events_within(rec.events, segs),
        meta={**rec.meta, "segments": segs},
    )


def events_within(events: Any, segs: list[list[float]]) -> Any:
    """Rows of an events table overlapping any ``[onset, offset)`` segment (seconds).

    A point event (offset == onset) is kept when it lies inside a segment.
    """
    if len(events) == 0 or not segs:
        return events.iloc[:0] if len(events) else events
    lo = np.array([s[0] for s in segs])
    hi = np.array([s[1] for s in segs])
    hit = [bool(np.any((o < hi) & ((f > lo) | ((f <= o) & (o >= lo)))))
           for o, f in zip(events["onset"], events["offset"])]
    return events[np.array(hit, dtype=bool)]
