"""The one in-memory recording type shared by every modality and stage."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from neurodyn.errors import InputError

MODALITIES = ("calcium", "spikes", "eeg", "other")
EVENT_COLUMNS = ("onset", "offset", "label")


def empty_events() -> pd.DataFrame:
    """An events table with no rows: columns onset, offset (seconds) and label."""
    return pd.DataFrame(
        {
            "onset": pd.Series(dtype="float64"),
            "offset": pd.Series(dtype="float64"),
            "label": pd.Series(dtype="str"),
        }
    )


@dataclasses.dataclass(frozen=True, eq=False)
class Recording:
    """Multichannel activity of one subject in one session.

    Parameters
    ----------
    traces : array (T, N)
        Activity, time by channel, float32 (calcium dF/F or z-score, spike counts per bin,
        EEG volts). May be a lazy HDF5-backed array (``neurodyn.io.store.LazyArray``); use
        :attr:`data` to load it.
    labels : sequence of str (N,)
        Unique channel names (canonical neuron names for C. elegans, unit ids for spikes,
        electrode names for EEG).
    modality : {"calcium", "spikes", "eeg", "other"}
    fs : float, optional
        Sampling rate in Hz of a regular grid. Either ``fs`` or ``time`` must be given.
    time : array (T,), optional
        Time stamps in seconds, strictly increasing. Derived from ``fs`` when omitted.
    units : str
        Physical unit of ``traces`` ("V", "counts", "dF/F", "z", "a.u.").
    id : str
        Identifier, unique within a store (e.g. ``"Dag2023/worm0"``).
    subject, dataset, source_file : str
        Animal/subject id, source collection, file the data came from.
    events : DataFrame
        Intervals with columns ``onset``, ``offset`` (seconds, same clock as ``time``) and
        ``label``; further columns are kept.
    mask : bool array (T, N), optional
        True where a sample was observed. Traces may be NaN only where the mask is False.
    channel_info : DataFrame, optional
        One row per channel (e.g. region, is_labeled, electrode position).
    meta : dict
        Free-form JSON-serialisable metadata.
    """

    traces: Any
    labels: Sequence[str]
    modality: str
    fs: float | None = None
    time: np.ndarray | None = None
    units: str = "a.u."
    id: str = ""
    subject: str = ""
    dataset: str = ""
    source_file: str = ""
    events: pd.DataFrame = dataclasses.field(default_factory=empty_events)
    mask: np.ndarray | None = None
    channel_info: pd.DataFrame | None = None
    meta: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        src = self.source_file or self.id or None
        set_ = object.__setattr__
        traces = self.traces
        if isinstance(traces, np.ndarray) or not hasattr(traces, "shape"):
            traces = np.asarray(traces)
            if traces.dtype != np.float32:
                traces = traces.astype(np.float32)
            set_(self, "traces", traces)
        if len(traces.shape) != 2:
            raise InputError(src, f"traces must be 2-D (time x channels), got shape {traces.shape}")
        T, N = traces.shape
        if T == 0 or N == 0:
            raise InputError(src, f"recording is empty (shape {traces.shape})")
        labels = [str(x) for x in self.labels]
        if len(labels) != N:
            raise InputError(src, f"{len(labels)} labels for {N} channels")
        if len(set(labels)) != N:
            dup = sorted({x for x in labels if labels.count(x) > 1})
            raise InputError(src, f"duplicate channel labels: {', '.join(dup[:5])}")
        set_(self, "labels", tuple(labels))
        if self.modality not in MODALITIES:
            raise InputError(src, f"unknown modality {self.modality!r}; one of {MODALITIES}")
        if self.time is None:
            if self.fs is None or not np.isfinite(self.fs) or self.fs <= 0:
                raise InputError(src, "either a positive sampling rate or time stamps are needed")
            set_(self, "fs", float(self.fs))
        else:
            time = np.asarray(self.time, dtype=np.float64)
            if time.shape != (T,):
                raise InputError(src, f"time has shape {time.shape}, traces have {T} samples")
            if not np.all(np.isfinite(time)):
                raise InputError(src, "time stamps contain NaN or infinity")
            if T > 1 and not np.all(np.diff(time) > 0):
                raise InputError(src, "time stamps are not strictly increasing")
            set_(self, "time", time)
            if self.fs is None:
                set_(self, "fs", float(1.0 / np.median(np.diff(time))) if T > 1 else 1.0)
        if self.mask is not None:
            mask = np.asarray(self.mask, dtype=bool)
            if mask.shape != (T, N):
                raise InputError(src, f"mask has shape {mask.shape}, traces have {(T, N)}")
            set_(self, "mask", mask)
        events = self.events if self.events is not None else empty_events()
        missing = [c for c in EVENT_COLUMNS if c not in events.columns]
        if missing:
            raise InputError(src, f"events table lacks columns {missing}")
        set_(self, "events", events.reset_index(drop=True))
        if self.channel_info is not None and len(self.channel_info) != N:
            raise InputError(src, f"channel_info has {len(self.channel_info)} rows for {N} channels")
        if isinstance(traces, np.ndarray):
            self._check_values(traces)

    def _check_values(self, traces: np.ndarray) -> None:
        src = self.source_file or self.id or None
        finite = np.isfinite(traces)
        if self.mask is None:
            if not finite.all():
                bad = [self.labels[i] for i in np.flatnonzero(~finite.all(axis=0))[:5]]
                raise InputError(
                    src, f"non-finite values in channels {', '.join(bad)} (give a mask to allow NaN)"
                )
        else:
            if np.any(~finite & self.mask):
                raise InputError(src, "non-finite values where the mask says observed")
            empty = ~self.mask.any(axis=0)
            if empty.any():
                bad = [self.labels[i] for i in np.flatnonzero(empty)[:5]]
                raise InputError(src, f"channels with no observed sample: {', '.join(bad)}")

    # -- derived views -------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.traces.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.traces.shape[1])

    @property
    def times(self) -> np.ndarray:
        """Time stamps in seconds (T,), from ``time`` or ``fs``."""
        if self.time is not None:
            return self.time
        return np.arange(self.n_samples, dtype=np.float64) / self.fs

    @property
    def duration(self) -> float:
        """Span in seconds, first to last sample plus one sampling period."""
        t = self.times
        return float(t[-1] - t[0] + 1.0 / self.fs)

    @property
    def is_lazy(self) -> bool:
        return not isinstance(self.traces, np.ndarray)

    @property
    def data(self) -> np.ndarray:
        """Traces as an in-memory float32 array (T, N); loads a lazy array."""
        return np.asarray(self.traces[...], dtype=np.float32)

    @property
    def observed(self) -> np.ndarray:
        """Boolean (T, N) mask of observed samples (all True without a mask)."""
        if self.mask is None:
            return np.ones((self.n_samples, self.n_channels), dtype=bool)
        return self.mask

    def replace(self, **changes: Any) -> Recording:
        """A copy with fields changed, validated again."""
        return dataclasses.replace(self, **changes)

    def load(self) -> Recording:
        """An in-memory copy of a lazy recording (itself if already loaded)."""
        return self if not self.is_lazy else self.replace(traces=self.data)

    def select(self, labels: Sequence[str]) -> Recording:
        """Keep the named channels, in the given order; unknown names are an error."""
        index = {name: i for i, name in enumerate(self.labels)}
        unknown = [x for x in labels if x not in index]
        if unknown:
            raise InputError(self.source_file or self.id, f"no channels named {unknown[:5]}")
        cols = np.array([index[x] for x in labels], dtype=int)
        return self.replace(
            traces=self.data[:, cols],
            labels=list(labels),
            mask=None if self.mask is None else self.mask[:, cols],
            channel_info=None
            if self.channel_info is None
            else self.channel_info.iloc[cols].reset_index(drop=True),
        )

    def crop(self, start: float | None = None, stop: float | None = None) -> Recording:
        """Samples with ``start <= t < stop`` (seconds); events clipped to the window."""
        t = self.times
        keep = np.ones(t.shape, dtype=bool)
        if start is not None:
            keep &= t >= start
        if stop is not None:
            keep &= t < stop
        if not keep.any():
            raise InputError(self.source_file or self.id, f"crop [{start}, {stop}) keeps no sample")
        idx = np.flatnonzero(keep)
        sl = slice(idx[0], idx[-1] + 1)
        lo, hi = t[sl][0], t[sl][-1] + 1.0 / self.fs
        ev = self.events
        ev = ev[(ev["offset"] > lo) & (ev["onset"] < hi)].copy()
        ev["onset"] = ev["onset"].clip(lower=lo)
        ev["offset"] = ev["offset"].clip(upper=hi)
        return self.replace(
            traces=self.data[sl],
            time=t[sl],
            mask=None if self.mask is None else self.mask[sl],
            events=ev,
        )

    def summary(self) -> str:
        """One line: id, modality, shape, rate, duration."""
        return (
            f"{self.id or '?'}: {self.modality}, {self.n_samples} samples x {self.n_channels} "
            f"channels, {self.fs:.4g} Hz, {self.duration:.1f} s, {len(self.events)} events"
        )
