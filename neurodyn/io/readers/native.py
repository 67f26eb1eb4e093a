"""neurodyn's own recordings files as ingest inputs (re-selection, merging, pipelines)."""

from __future__ import annotations

from pathlib import Path

from neurodyn.io import store
from neurodyn.io.formats import Item, register
from neurodyn.io.readers._util import h5_has


def _sniff(path: Path) -> bool:
    return h5_has(path, "recordings")


@register("neurodyn", [".h5", ".hdf5"], _sniff, "neurodyn recordings file (output of ingest/simulate)")
def read_native(path: Path) -> list[Item]:
    """Every recording and connectome of a complete neurodyn recordings file."""
    items: list[Item] = list(store.read_recordings(path))
    with store.open_h5(path) as f:
        if "connectome" in f:
            items += [store.read_connectome(g) for g in f["connectome"].values()]
    return items
