"""pynapple export: NPZ files in the layout ``pynapple.load_file`` reads (no pynapple needed).

Per recording: ``<recording>_traces.npz`` (a ``TsdFrame``: time in seconds, one column per
channel, named by label; spike counts for spike recordings); ``<recording>_hmmglm_states.npz``
and ``<recording>_bicluster_states.npz`` (``IntervalSet`` of the state runs with a ``state``
metadata column); ``<recording>_events.npz`` (``IntervalSet`` with a ``label`` column).
Intervals are closed in pynapple, so each ends one microsecond early: a run of bins i..j
becomes [t_i, t_j + dt - 1 us] and ``traces.restrict(states[states.state == k])`` keeps
exactly the bins of state k; an event [onset, offset) becomes [onset, offset - 1 us].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodyn.bicluster.result import PATH as BICLUSTER_PATH
from neurodyn.export.bundle import Bundle, states_of
from neurodyn.hmmglm.result import PATH as STATES_PATH
from neurodyn.io.outputs import atomic_path

EPS = 1e-6  # pynapple's time precision (s): closed intervals end one microsecond early


def write(bundle: Bundle, outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for item in bundle.items:
        rec = item.recording
        t = rec.times
        data = rec.data if rec.mask is None else np.where(rec.mask, rec.data, np.nan)
        written.append(_save(outdir / f"{item.name}_traces.npz", bundle, {
            "t": t, "d": data, "start": np.array([t[0]]), "end": np.array([t[-1]]),
            "columns": np.array(rec.labels, dtype=str), "type": np.array(["TsdFrame"]),
            "_metadata": {}}))
        for name, ds, var in (("hmmglm_states", item.states, STATES_PATH),
                              ("bicluster_states", item.bicluster, BICLUSTER_PATH)):
            iv = states_of(ds, var, rec.fs)
            if iv is not None:
                written.append(_intervals(outdir / f"{item.name}_{name}.npz", bundle,
                                          iv["start"], iv["stop"] - EPS,
                                          {"state": iv["state"].to_numpy()}))
        if len(rec.events):
            ev = rec.events.sort_values("onset")
            written.append(_intervals(outdir / f"{item.name}_events.npz", bundle,
                                      ev["onset"], ev["offset"] - EPS,
                                      {"label": ev["label"].astype(str).to_numpy()}))
    return written


def _intervals(path: Path, bundle: Bundle, start, end, metadata: dict) -> Path:
    return _save(path, bundle, {"start": np.asarray(start, float), "end": np.asarray(end, float),
                                "type": np.array(["IntervalSet"]), "_metadata": metadata})


def _save(path: Path, bundle: Bundle, arrays: dict) -> Path:
    arrays = {k: (np.array(v, dtype=object) if isinstance(v, dict) else v)
              for k, v in arrays.items()}
    with atomic_path(path, bundle.inputs) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path

