"""Events tables (onset, offset, label, animal) in stage files, the layout recordings use."""

from __future__ import annotations

import h5py

from neurodyn.io.store import read_frame as read_events
from neurodyn.io.store import write_frame as write_events

__all__ = ["copy_events", "read_events", "write_events"]


def copy_events(src: h5py.File, dst: h5py.File) -> None:
    """Copy ``/events`` from one stage file to another when present."""
    if "events" in src:
        src.copy(src["events"], dst, name="events")
