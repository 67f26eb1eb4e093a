"""The public Python API: read what neurodyn wrote as typed objects.

``neurodyn.load(path)`` returns recordings as :class:`~neurodyn.recording.Recording` and stage
results as :class:`xarray.Dataset` (named dimensions, coordinates such as neuron names, time
in seconds, recording ids, and ``units`` on every variable); ``neurodyn.open_run(rundir)``
gives a run directory's results by stage name, its status as a pandas table, and the
factorization as a tensorly ``CPTensor``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import pandas as pd

from neurodyn.errors import InputError
from neurodyn.io import layout
from neurodyn.io.groups import recording_groups
from neurodyn.io.store import open_h5, provenance, read_recordings, strings
from neurodyn.recording import Recording
from neurodyn.tensor import result as ntf_result

if TYPE_CHECKING:
    import xarray as xr

# dims whose coordinate is the file's neuron names, and where those names are
_LABEL_DIMS = ("neuron", "neuron_j", "source", "channel")


def load(path: str | os.PathLike, *, lazy: bool = False
         ) -> dict[str, Recording] | dict[str, xr.Dataset] | xr.Dataset:
    """Read a neurodyn HDF5 file as typed results.

    Parameters
    ----------
    path : path-like
        A file written by neurodyn (``recordings.h5``, ``affinity.h5``, ``ntf.h5``,
        ``communities.h5``, ``states.h5``, ``bicluster.h5``, ``compare.h5``, a simulation).
    lazy : bool
        Recordings only: keep traces on disk until sliced.

    Returns
    -------
    dict of str to Recording
        For recordings files (ingest, preprocess, simulate), keyed by recording id.
    dict of str to xarray.Dataset
        For per-recording stage files (states, bicluster, compare), keyed by recording id
        (``"joint"`` for the shared parameters of a joint fit).
    xarray.Dataset
        For the other stage files. Subgroups become variables named ``<group>_<name>``
        (``factors_time``, ``rank_selection_error``), their attributes ``<group>_<attr>``.

    Every Dataset carries the file's provenance (``stage``, ``parameters``, ``versions``,
    ``inputs``, ``seed``...) in ``attrs`` and a ``units`` attribute on every variable.
    Files written before dimension scales existed are read with the same dimension names.

    Raises
    ------
    InputError
        Missing, corrupt or incomplete file.
    """
    p = Path(path)
    with open_h5(p) as f:
        stage = _str(f.attrs.get("stage", ""))
        if "recordings" in f and isinstance(f["recordings"], h5py.Group):
            return {rec.id: rec for rec in read_recordings(p, lazy=lazy)}
        prov = _provenance(p)
        if stage in layout.PER_RECORDING:
            return {rid: _dataset(g, stage, prov) for rid, g in recording_groups(f).items()}
        return _dataset(f, stage, prov)


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _provenance(path: Path) -> dict[str, Any]:
    out = {}
    for k, v in provenance(path).items():
        if isinstance(v, (dict, list)):
            v = json.dumps(v, sort_keys=True)
        elif isinstance(v, (bool, np.bool_)):
            v = int(v)
        out[k] = v
    return out


def _dims_of(path: str, ds: h5py.Dataset, stage: str) -> tuple[str, ...]:
    if ds.ndim and all(len(d) for d in ds.dims):
        try:
            return tuple(d[0].name.rsplit("/", 1)[-1] for d in ds.dims)
        except (KeyError, ValueError, RuntimeError):  # dangling scale references
            pass
    if ds.is_scale:
        return (path.rsplit("/", 1)[-1],)
    return layout.describe(path, ds.ndim, stage)[0]


def _value(ds: h5py.Dataset) -> np.ndarray:
    if ds.dtype.kind == "O" or ds.dtype.kind == "S":
        return np.array(strings(ds), dtype=object).reshape(ds.shape)
    return ds[()]


def _walk(group: h5py.Group) -> Iterator[tuple[str, h5py.Group | h5py.Dataset]]:
    """Datasets under ``group`` (parents first), then its subgroups."""
    for path, ds in layout.datasets(group):
        yield "/" + path, ds
    found: list[h5py.Group] = []
    group.visititems(lambda _n, o: found.append(o) if isinstance(o, h5py.Group) else None)
    for g in found:
        yield g.name, g


def _dataset(group: h5py.Group, stage: str, prov: dict[str, Any]) -> xr.Dataset:
    """One Dataset from an HDF5 group and its subgroups (flattened with ``_``)."""
    import xarray as xr

    root = group.name.rstrip("/") + "/"
    variables: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    attrs: dict[str, Any] = dict(prov)
    for k, v in group.attrs.items():
        attrs[k] = _attr(v)
    for name, obj in _walk(group):
        rel = name[len(root):] if name.startswith(root) else name.lstrip("/")
        flat = rel.replace("/", "_")
        if isinstance(obj, h5py.Group):
            for k, v in obj.attrs.items():
                if k != "columns":
                    attrs[f"{flat}_{k}"] = _attr(v)
            continue
        dims = list(_dims_of(name.lstrip("/"), obj, stage))
        prefix = rel.rsplit("/", 1)[0].replace("/", "_") if "/" in rel else ""
        for i, (d, n) in enumerate(zip(dims, obj.shape)):
            if sizes.setdefault(d, n) != n:  # the same name with another length elsewhere
                dims[i] = f"{prefix}_{d}" if prefix else f"{d}_{n}"
                sizes.setdefault(dims[i], n)
        units = obj.attrs.get("units")
        if units is None:
            units = layout.describe(name.lstrip("/"), obj.ndim, stage)[1] or ""
            if units.startswith("@"):
                units = obj.parent.attrs.get(units[1:], "")
        variables[flat] = xr.Variable(dims, _value(obj), attrs={"units": _str(units)})
    ds = xr.Dataset(variables, attrs=attrs)
    return _coordinates(ds, stage)


def _attr(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (np.bool_, bool)):
        return int(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def _coordinates(ds: xr.Dataset, stage: str) -> xr.Dataset:
    """Promote label-like variables to coordinates of their dimensions."""
    coords: dict[str, Any] = {}
    if "labels" in ds and ds["labels"].ndim == 1:
        lab = ds["labels"].values
        for d in _LABEL_DIMS:
            if ds.sizes.get(d) == lab.size:
                coords[d] = (d, lab)
        ds = ds.drop_vars("labels")
    if "animals" in ds and "recording" in ds.sizes:
        coords["recording"] = ("recording", ds["animals"].values)
        ds = ds.drop_vars("animals")
    if "windows" in ds and "window" in ds.sizes:
        w = ds["windows"].values
        coords["window"] = ("window", (w[:, 0] + w[:, 1]) / 2.0,
                            {"units": "s", "long_name": "window centre"})
    if "components_used" in ds and "component" in ds.sizes:
        coords["component"] = ("component", ds["components_used"].values.astype(int))
    if "rank_selection_ranks" in ds and "rank" in ds.sizes:
        coords["rank"] = ("rank", ds["rank_selection_ranks"].values.astype(int))
    for d in ("state", "next_state", "component", "chain", "cluster", "lag", "latent_dim"):
        if d in ds.sizes and d not in coords and d not in ds.coords:
            coords[d] = (d, np.arange(ds.sizes[d]))
    ds = ds.assign_coords(coords)
    if "time" in ds and "time" in ds.sizes:
        ds["time"].attrs.setdefault("units", "s")
    return ds


# -- run directories --------------------------------------------------------------------
class Run:
    """A run directory: its result files by stage name, its units, its status.

    ``run["states"]`` loads ``states.h5``; ``run["all_unit"]`` is the run of one pipeline
    unit (a subdirectory); ``run.recordings`` are the ingested recordings; ``run.status()``
    is a pandas table of every file; ``run.cp_tensor()`` the factorization as a tensorly
    ``CPTensor``.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(self.path, "not a run directory")

    @property
    def files(self) -> dict[str, Path]:
        """Result files here, by stem (``"states"``: ``states.h5``)."""
        return {p.stem: p for p in sorted(self.path.glob("*.h5"))}

    @property
    def units(self) -> dict[str, Run]:
        """Pipeline units: subdirectories holding result files."""
        return {d.name: Run(d) for d in sorted(self.path.iterdir())
                if d.is_dir() and not d.name.startswith(".") and any(d.glob("*.h5"))}

    def __getitem__(self, name: str) -> Any:
        if name in self.files:
            return load(self.files[name])
        if name in self.units:
            return self.units[name]
        raise KeyError(f"{self.path} has no {name!r}; it has {sorted(self.files) + sorted(self.units)}")

    def __contains__(self, name: str) -> bool:
        return name in self.files or name in self.units

    def keys(self) -> list[str]:
        return sorted(self.files) + sorted(self.units)

    @property
    def recordings(self) -> dict[str, Recording]:
        """The ingested recordings (``recordings.h5``)."""
        if "recordings" not in self.files:
            raise InputError(self.path, "holds no recordings.h5")
        return load(self.files["recordings"])  # type: ignore[return-value]

    def status(self) -> pd.DataFrame:
        """One row per result file (units included): unit, file, stage, complete, finished."""
        rows = []
        for unit, run in [("", self), *self.units.items()]:
            for stem, p in run.files.items():
                try:
                    a = provenance(p)
                except InputError:
                    a = {}
                rows.append({"unit": unit, "file": stem, "stage": a.get("stage", ""),
                             "complete": bool(a.get("complete", False)),
                             "finished": a.get("finished", ""), "path": str(p)})
        return pd.DataFrame(rows, columns=["unit", "file", "stage", "complete", "finished",
                                           "path"])

    def cp_tensor(self, name: str = "ntf"):
        """The factorization of ``<name>.h5`` as a ``tensorly.cp_tensor.CPTensor``."""
        if name not in self.files:
            raise InputError(self.path, f"holds no {name}.h5")
        return ntf_result.read(self.files[name]).cp_tensor()

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, files={sorted(self.files)}, units={sorted(self.units)})"


def open_run(rundir: str | os.PathLike) -> Run:
    """Open a run directory (written by ``neurodyn run`` or by the stage commands)."""
    return Run(rundir)
