"""netCDF-4 export: the whole run in one file, readable by xarray, netCDF-C and MATLAB.

``<run>.nc`` has one group per recording under ``/recordings/<id>`` (``traces (time,
channel)`` with channel labels, time in seconds and units; events on an ``event`` axis) and one
group per stage result: ``/<stage>`` for whole-run results (affinity, ntf, communities) and
``/<stage>/<id>`` for per-recording ones (states, bicluster), each exactly the
``xarray.Dataset`` that ``neurodyn.load`` returns. Group names use
:func:`neurodyn.io.layout.group_name` (``/`` as ``%2F``). Open one group with
``xarray.open_dataset(path, group="states/spikes%2Fall_unit")`` or all of them with
``xarray.open_datatree(path)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurodyn.export.bundle import Bundle
from neurodyn.io.layout import group_name
from neurodyn.io.outputs import atomic_path
from neurodyn.recording import Recording


def recording_dataset(rec: Recording):
    """One recording as an ``xarray.Dataset``: traces (time, channel), mask, events."""
    import xarray as xr

    ds = xr.Dataset(
        {"traces": (("time", "channel"), rec.data, {"units": rec.units})},
        coords={"time": ("time", rec.times, {"units": "s"}),
                "channel": ("channel", np.array(rec.labels, dtype=object))},
        attrs={"id": rec.id, "modality": rec.modality, "fs": float(rec.fs),
               "subject": rec.subject, "dataset": rec.dataset, "source_file": rec.source_file},
    )
    if rec.mask is not None:
        ds["mask"] = (("time", "channel"), rec.mask.astype(np.int8), {"units": ""})
    ev = rec.events
    for col in ev.columns:
        v = ev[col].to_numpy()
        v = v if v.dtype.kind in "biuf" else np.array([str(x) for x in v], dtype=object)
        ds[f"events_{col}"] = ("event", v, {"units": "s" if col in ("onset", "offset") else ""})
    if rec.channel_info is not None:
        for col in rec.channel_info.columns:
            v = rec.channel_info[col].to_numpy()
            v = v if v.dtype.kind in "biuf" else np.array([str(x) for x in v], dtype=object)
            ds[f"channel_{col}"] = ("channel", v, {"units": ""})
    return ds


def write(bundle: Bundle, outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{bundle.name}.nc"
    groups: list[tuple[str, Any]] = [
        (f"recordings/{group_name(it.recording.id)}", recording_dataset(it.recording))
        for it in bundle.items]
    for stem in sorted(bundle.files):
        res = bundle.result(stem)
        if isinstance(res, dict) and all(hasattr(v, "data_vars") for v in res.values()):
            groups += [(f"{stem}/{group_name(k)}", v) for k, v in res.items()]
        elif hasattr(res, "data_vars"):
            groups.append((stem, res))
    with atomic_path(path, bundle.inputs) as tmp:
        tmp.unlink()
        for i, (group, ds) in enumerate(groups):
            ds.to_netcdf(tmp, group=group, mode="w" if i == 0 else "a", engine="h5netcdf")
    return [path]
