"""What a run directory holds for export: recordings with their states, clusters, communities."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodyn.api import Run, load
from neurodyn.errors import InputError
from neurodyn.io.store import provenance
from neurodyn.recording import Recording

RECORDING_FILES = ("recordings.h5", "preprocessed.h5")


@dataclasses.dataclass
class Item:
    """One recording and the per-recording results fitted to it (``None`` when absent)."""

    recording: Recording
    states: Any = None      # xarray.Dataset of states.h5 for this recording
    bicluster: Any = None   # xarray.Dataset of bicluster.h5 for this recording

    @property
    def name(self) -> str:
        """A file-name-safe form of the recording id (``spikes/all_unit`` -> ``spikes_all_unit``)."""
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.recording.id)


@dataclasses.dataclass
class Bundle:
    """Everything :func:`gather` found in a run directory."""

    rundir: Path
    items: list[Item]
    files: dict[str, Path]   # result files by stem ("states": states.h5)
    inputs: list[Path]       # every file read (an output must be none of them)
    _loaded: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.rundir.resolve().name

    def result(self, stem: str) -> Any:
        """``neurodyn.load`` of ``<stem>.h5`` (cached), or None when the run has none."""
        if stem not in self.files:
            return None
        if stem not in self._loaded:
            self._loaded[stem] = load(self.files[stem])
        return self._loaded[stem]


def gather(rundir: str | os.PathLike, recordings: str | os.PathLike | None = None) -> Bundle:
    """Read a run directory: its recordings and every stage result in it."""
    run = Run(rundir)
    files = run.files
    if not files:
        units = sorted(run.units)
        hint = f"; it holds pipeline units {', '.join(units)}: export one ({Path(rundir) / units[0]})" \
            if units else ""
        raise InputError(rundir, "holds no neurodyn result files" + hint)
    rec_path = Path(recordings) if recordings is not None else _recordings_file(run.path, files)
    recs = load(rec_path, lazy=True)
    if not isinstance(recs, dict) or not all(isinstance(r, Recording) for r in recs.values()):
        raise InputError(rec_path, "is not a recordings file (give --recordings)")
    bundle = Bundle(run.path, [], files, [rec_path, *files.values()])
    states, bic = bundle.result("states") or {}, bundle.result("bicluster") or {}
    bundle.items = [Item(rec, states.get(rid), bic.get(rid)) for rid, rec in recs.items()]
    return bundle


def _recordings_file(rundir: Path, files: dict[str, Path]) -> Path:
    """The recordings the per-recording stages read (their first input), else recordings.h5."""
    for stem in ("states", "bicluster"):
        if stem in files:
            inputs = provenance(files[stem]).get("inputs") or {}
            for p in inputs:
                if Path(p).exists():
                    return Path(p)
                if (rundir / Path(p).name).exists():  # the run directory was moved
                    return rundir / Path(p).name
    for name in RECORDING_FILES:
        if (rundir / name).exists():
            return rundir / name
    raise InputError(rundir, "holds no recordings file (recordings.h5); give --recordings")


def state_intervals(time: np.ndarray, sequence: np.ndarray, dt: float,
                    offset: float = 0.0) -> pd.DataFrame:
    """Runs of one state as intervals: ``start`` (start of the first bin), ``stop`` (end of
    the last bin), ``state``; in seconds, sorted, non-overlapping. Bin i spans
    ``[time[i] + offset, time[i] + offset + dt)``."""
    seq = np.asarray(sequence)
    if seq.size == 0:
        return pd.DataFrame({"start": [], "stop": [], "state": np.array([], dtype=int)})
    edges = np.flatnonzero(np.diff(seq)) + 1
    first = np.r_[0, edges]
    last = np.r_[edges, seq.size] - 1
    t = np.asarray(time, dtype=float) + offset
    return pd.DataFrame({"start": t[first], "stop": t[last] + dt,
                         "state": seq[first].astype(int)})


def states_of(ds: Any, var: str, fs: float) -> pd.DataFrame | None:
    """State intervals of a states or bicluster result (``var``: its state sequence), on
    the result's own time grid: bins of the recording, or feature windows whose ``time``
    is their centre (``states --features bandpower``)."""
    if ds is None or var not in ds:
        return None
    time = ds["time"].values
    dt = float(np.median(np.diff(time))) if time.size > 1 else 1.0 / fs
    offset = -(dt - 1.0 / fs) / 2.0 if ds.attrs.get("features") == "bandpower" else 0.0
    return state_intervals(time, ds[var].values, dt, offset)


def community_table(communities: Any, labels: list[str]) -> pd.DataFrame | None:
    """Community of each of ``labels`` in every component (-1: neuron not in the analysis)."""
    if communities is None:
        return None
    names = [str(x) for x in communities["neuron"].values]
    index = {n: i for i, n in enumerate(names)}
    if not any(x in index for x in labels):
        return None
    out = {"label": list(labels)}
    for var in communities.data_vars:
        if var.startswith("component_") and var.endswith("_membership") and "levels" not in var:
            memb = communities[var].values
            out[var[: -len("_membership")]] = [int(memb[index[x]]) if x in index else -1
                                               for x in labels]
    return pd.DataFrame(out) if len(out) > 1 else None


def provenance_note(ds: Any) -> str:
    """One line of provenance of a stage result: stage, version, parameters."""
    a = ds.attrs if ds is not None else {}
    params = a.get("parameters", "{}")
    try:
        params = json.dumps(json.loads(params), sort_keys=True)
    except (TypeError, ValueError):
        pass
    return (f"neurodyn {a.get('neurodyn_version', '?')} stage {a.get('stage', '?')}, seed "
            f"{a.get('seed', '?')}, parameters {params}")
