"""Events tables (onset, offset, label, animal) in stage files, same layout as recordings use."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd

from neurodyn.io.store import put, strings


def write_events(group: h5py.Group, events: pd.DataFrame) -> None:
    """Write a table as one dataset per column plus a ``columns`` attribute (JSON list)."""
    group.attrs["columns"] = json.dumps([str(c) for c in events.columns])
    for col in events.columns:
        values = events[col].to_numpy()
        if values.dtype.kind in "biuf":
            put(group, str(col), values)
        else:
            put(group, str(col), np.array(["" if pd.isna(x) else str(x) for x in values], dtype=object))


def read_events(group: h5py.Group) -> pd.DataFrame:
    """Read a table written by :func:`write_events` (empty onset/offset/label table if none)."""
    cols = json.loads(group.attrs.get("columns", "[]"))
    if not cols:
        return pd.DataFrame({"onset": [], "offset": [], "label": []})
    data = {c: (strings(group[c]) if group[c].dtype.kind == "O" else group[c][()]) for c in cols}
    return pd.DataFrame(data, columns=cols)


def copy_events(src: h5py.File, dst: h5py.File) -> None:
    """Copy ``/events`` from one stage file to another when present."""
    if "events" in src:
        src.copy(src["events"], dst, name="events")
