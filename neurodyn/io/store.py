"""HDF5 store: atomic writes with provenance, lazy reads, recordings and connectomes.

Every file written here carries root attributes ``stage``, ``neurodyn_version``,
``versions`` (JSON), ``command``, ``parameters`` (JSON), ``inputs`` (JSON path -> sha256),
``input_digest``, ``seed``, ``started``, ``finished`` and, written last, ``complete = True``.
Files are opened without HDF5 file locking so they work on NFS/Lustre.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from neurodyn import provenance as prov
from neurodyn.connectome import Connectome
from neurodyn.errors import InputError
from neurodyn.io import layout
from neurodyn.io.layout import group_name, recording_id  # noqa: F401 (re-exported)
from neurodyn.io.outputs import (
    check_output,
    check_writes,
    guarded,
    make_parent,
    os_problem,
    temp_name,
)
from neurodyn.recording import Recording, empty_events

COMPRESS_ABOVE = 1 << 16  # bytes; smaller datasets are stored contiguous


def _open(path: str | os.PathLike, mode: str) -> h5py.File:
    try:
        return h5py.File(path, mode, locking=False)
    except OSError as exc:
        # already open in this process with default locking (e.g. by the user's own h5py)
        if "locking flag values don't match" not in str(exc):
            raise
        return h5py.File(path, mode)


def open_h5(path: str | os.PathLike, *, require_complete: bool = True) -> h5py.File:
    """Open a neurodyn HDF5 file read-only, with a clear error if it is unusable.

    Raises
    ------
    InputError
        Missing, not HDF5 (truncated/corrupt), or lacking the completion flag.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    try:
        f = _open(p, "r")
    except OSError as exc:
        raise InputError(p, f"not a readable HDF5 file (truncated or corrupt?): {_short(exc)}") from None
    if require_complete and not bool(f.attrs.get("complete", False)):
        f.close()
        raise InputError(p, "incomplete output (its writer was interrupted); rerun the stage")
    return f


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


def put(group: h5py.Group, name: str, data: Any, **kwargs: Any) -> h5py.Dataset:
    """Create a dataset, chunked and gzip-compressed when large; strings stored as UTF-8."""
    check_writes()  # stop at the first failed write (disk full) instead of computing on
    arr = np.asarray(data)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    if arr.dtype.kind in "UO":
        arr = arr.astype(object)
        return group.create_dataset(name, data=arr, dtype=h5py.string_dtype(), **kwargs)
    if arr.nbytes > COMPRESS_ABOVE and arr.ndim >= 1:
        kwargs.setdefault("chunks", True)
        kwargs.setdefault("compression", "gzip")
        kwargs.setdefault("compression_opts", 4)
        kwargs.setdefault("shuffle", True)
    return group.create_dataset(name, data=arr, **kwargs)


def strings(ds: h5py.Dataset) -> list[str]:
    """Read a string dataset as a list of str."""
    return [x.decode() if isinstance(x, bytes) else str(x) for x in ds[()]]


@contextlib.contextmanager
def atomic_h5(
    path: str | os.PathLike,
    *,
    stage: str,
    params: Mapping[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    seed: int | None = None,
) -> Iterator[h5py.File]:
    """Write an HDF5 file under a temporary name and rename it into place when complete.

    Provenance attributes are written first; ``complete`` is set last, after the body ran
    without error and every dataset got dimension scales and units
    (:func:`neurodyn.io.layout.annotate`). On any exception (Ctrl-C included) the temporary
    file is removed and the final name is never touched. An output that is one of ``inputs`` is refused before
    anything is written, and a full disk or read-only directory becomes an
    :class:`InputError` (see :mod:`neurodyn.io.outputs`).

    Parameters
    ----------
    path : path-like
        Final file name.
    stage : str
        Name of the stage that produced it (``"ingest"``, ``"affinity"``...).
    params : mapping
        Parameters, stored as JSON; they enter ``input_digest``.
    inputs : iterable of path-like
        Input files, hashed (SHA-256) into ``inputs`` and ``input_digest``.
    seed : int, optional
        Random seed used.
    """
    inputs = list(inputs)
    final = check_output(path, inputs)
    make_parent(final)
    tmp = temp_name(final)
    params = dict(params or {})
    hashes = prov.hashes(inputs)
    fh = None
    try:
        with guarded(tmp) as fh:
            f = h5py.File(fh, "w", locking=False)
            try:
                a = f.attrs
                a["stage"] = stage
                a["neurodyn_version"] = prov.versions()["neurodyn"]
                a["versions"] = json.dumps(prov.versions())
                a["command"] = prov.command_line()
                a["parameters"] = prov.to_json(params)
                a["inputs"] = json.dumps(hashes)
                a["input_digest"] = prov.input_digest(params, hashes)
                a["seed"] = -1 if seed is None else int(seed)
                a["started"] = prov.now()
                a["complete"] = False
                yield f
                layout.annotate(f, stage)
                fh.raise_if_failed()
                a["finished"] = prov.now()
                a["complete"] = True
            finally:
                f.close()  # safe even after a failed write: the guard kept HDF5 consistent
            fh.fsync()
            fh.raise_if_failed()
        os.replace(tmp, final)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        # a failed write can surface later as another error: report the write failure
        failed = exc if isinstance(exc, OSError) else (fh.error if fh is not None else None)
        failed = failed if isinstance(exc, Exception) else None
        if failed is not None and os_problem(failed):
            raise InputError(final, os_problem(failed)) from None
        raise


def provenance(path: str | os.PathLike) -> dict[str, Any]:
    """Root attributes of a neurodyn file, JSON fields decoded; works on incomplete files."""
    with open_h5(path, require_complete=False) as f:
        out: dict[str, Any] = {}
        for k, v in f.attrs.items():
            if isinstance(v, bytes):
                v = v.decode()
            if k in ("versions", "parameters", "inputs") and isinstance(v, str):
                v = json.loads(v)
            elif hasattr(v, "item"):
                v = v.item()
            out[k] = v
        return out


def is_complete(path: str | os.PathLike) -> bool:
    """True when the file exists, opens, and carries ``complete = True``."""
    try:
        with _open(path, "r") as f:
            return bool(f.attrs.get("complete", False))
    except OSError:
        return False


# -- generic trees ------------------------------------------------------------------------
def write_tree(group: h5py.Group, tree: Mapping[str, Any]) -> None:
    """Write a nested mapping: dicts become groups, arrays datasets, scalars/str attributes.

    Keys starting with ``@`` are always written as attributes (``{"@rank": 3}``).
    """
    for key, value in tree.items():
        if key.startswith("@"):
            group.attrs[key[1:]] = _attr(value)
        elif isinstance(value, Mapping):
            write_tree(group.require_group(key), value)
        elif isinstance(value, (str, bool, int, float, np.integer, np.floating)) or value is None:
            group.attrs[key] = _attr(value)
        else:
            put(group, key, value)


def _attr(value: Any) -> Any:
    if value is None:
        return "null"
    if isinstance(value, (dict, list, tuple)):
        return prov.to_json(value)
    return value


def read_tree(group: h5py.Group) -> dict[str, Any]:
    """Read a group written by :func:`write_tree` eagerly into nested dicts (attrs as ``@k``)."""
    out: dict[str, Any] = {}
    for k, v in group.attrs.items():
        out["@" + k] = v.decode() if isinstance(v, bytes) else v
    for k, item in group.items():
        if isinstance(item, h5py.Group):
            out[k] = read_tree(item)
        elif layout.is_dimension_only(item):
            continue
        elif item.dtype.kind == "O":
            out[k] = np.array(strings(item), dtype=object)
        else:
            out[k] = item[()]
    return out


# -- lazy arrays --------------------------------------------------------------------------
class LazyArray:
    """A read-only view of one HDF5 dataset that opens the file only when sliced.

    Holds no open handle, so it pickles to worker processes and never keeps a file locked.
    """

    def __init__(self, path: str | os.PathLike, name: str) -> None:
        self.path = str(path)
        self.name = name
        with _open(self.path, "r") as f:
            ds = f[name]
            self.shape = tuple(ds.shape)
            self.dtype = ds.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        with _open(self.path, "r") as f:
            return f[self.name][key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[...]
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyArray({self.path!r}, {self.name!r}, shape={self.shape}, dtype={self.dtype})"


# -- recordings ---------------------------------------------------------------------------
def write_recording(group: h5py.Group, rec: Recording) -> None:
    """Write one recording under ``group`` (usually ``/recordings/<id>``)."""
    put(group, "traces", rec.data, chunks=(min(rec.n_samples, 4096), min(rec.n_channels, 64)),
        compression="gzip", compression_opts=4, shuffle=True)
    put(group, "labels", np.array(rec.labels, dtype=object))
    if rec.time is not None:
        put(group, "time", rec.time)
    if rec.mask is not None:
        put(group, "mask", rec.mask)
    write_frame(group.create_group("events"), rec.events)
    if rec.channel_info is not None:
        write_frame(group.create_group("channel_info"), rec.channel_info)
    a = group.attrs
    a["id"], a["modality"], a["units"] = rec.id, rec.modality, rec.units
    a["fs"] = float(rec.fs)
    a["subject"], a["dataset"], a["source_file"] = rec.subject, rec.dataset, rec.source_file
    a["meta"] = prov.to_json(rec.meta)


def write_frame(g: h5py.Group, frame: pd.DataFrame) -> None:
    """Write a table into group ``g``: one dataset per column plus a ``columns`` attribute."""
    g.attrs["columns"] = json.dumps([str(c) for c in frame.columns])
    for col in frame.columns:
        values = frame[col].to_numpy()
        if values.dtype.kind in "biuf":
            put(g, str(col), values)
        else:
            put(g, str(col), np.array(["" if pd.isna(x) else str(x) for x in values], dtype=object))


def read_frame(g: h5py.Group) -> pd.DataFrame:
    """Read a table written by :func:`write_frame`."""
    cols = json.loads(g.attrs["columns"])
    data = {}
    for c in cols:
        ds = g[c]
        data[c] = strings(ds) if ds.dtype.kind == "O" else ds[()]
    return pd.DataFrame(data, columns=cols)


def _data(group: h5py.Group, name: str) -> np.ndarray | None:
    """A dataset's values, or None when absent or only a dimension scale."""
    ds = group.get(name)
    if not isinstance(ds, h5py.Dataset) or layout.is_dimension_only(ds):
        return None
    return ds[()]


def read_recording(path: str | os.PathLike, group: h5py.Group, *, lazy: bool = False) -> Recording:
    """Read one recording group; ``lazy`` keeps traces on disk (:class:`LazyArray`)."""
    a = group.attrs
    traces = LazyArray(path, group["traces"].name) if lazy else group["traces"][()]
    events = read_frame(group["events"]) if "events" in group else empty_events()
    return Recording(
        traces=traces,
        labels=strings(group["labels"]),
        modality=str(a["modality"]),
        fs=float(a["fs"]),
        time=_data(group, "time"),
        units=str(a["units"]),
        id=str(a["id"]),
        subject=str(a["subject"]),
        dataset=str(a["dataset"]),
        source_file=str(a["source_file"]),
        events=events,
        mask=group["mask"][()] if "mask" in group else None,
        channel_info=read_frame(group["channel_info"]) if "channel_info" in group else None,
        meta=json.loads(a["meta"]),
    )


def write_connectome(group: h5py.Group, con: Connectome) -> None:
    """Store a connectome as an edge list ``pre, post, weight, type`` (0 chemical, 2 electrical)."""
    rows = []
    for code, m in ((0, con.chemical), (2, con.electrical)):
        i, j = np.nonzero(m)
        rows.append((i, j, m[i, j], np.full(i.size, code)))
    pre, post, weight, typ = (np.concatenate(x) for x in zip(*rows))
    put(group, "labels", np.array(con.labels, dtype=object))
    put(group, "pre", pre.astype(np.int32))
    put(group, "post", post.astype(np.int32))
    put(group, "weight", weight)
    put(group, "type", typ.astype(np.int8))
    group.attrs["name"] = con.name
    group.attrs["source_file"] = con.source_file


def read_connectome(group: h5py.Group) -> Connectome:
    """The connectome stored by :func:`write_connectome` in ``group``."""
    labels = strings(group["labels"])
    n = len(labels)
    chem, elec = np.zeros((n, n)), np.zeros((n, n))
    pre, post, w, typ = (group[k][()] for k in ("pre", "post", "weight", "type"))
    c = typ == 0
    chem[pre[c], post[c]] = w[c]
    elec[pre[~c], post[~c]] = w[~c]
    return Connectome(str(group.attrs["name"]), labels, chem, elec, str(group.attrs["source_file"]))


def write_recordings(
    path: str | os.PathLike,
    recordings: Iterable[Recording],
    connectomes: Sequence[Any] = (),
    *,
    params: Mapping[str, Any] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    seed: int | None = None,
    stage: str = "ingest",
    extra: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
) -> Path:
    """Write recordings (and connectomes) atomically to ``path`` with provenance.

    ``recordings`` may be a generator: each recording is written as it comes, so only one
    needs to be in memory. ``extra`` is a tree (see :func:`write_tree`) written at the root,
    e.g. ground truth, or a callable returning it, called after the recordings are written.
    """
    with atomic_h5(path, stage=stage, params=params, inputs=inputs, seed=seed) as f:
        root = f.create_group("recordings")
        for rec in recordings:
            if group_name(rec.id) in root:
                raise InputError(path, f"recording ids are not unique ({rec.id!r} twice)")
            write_recording(root.create_group(group_name(rec.id)), rec)
        if connectomes:
            cg = f.create_group("connectome")
            for con in connectomes:
                write_connectome(cg.create_group(con.name), con)
        tree = extra() if callable(extra) else extra
        if tree:
            write_tree(f, tree)
    return Path(path)


def recording_ids(path: str | os.PathLike) -> list[str]:
    """Ids of the recordings in a store, in stored order."""
    with open_h5(path) as f:
        if "recordings" not in f:
            raise InputError(path, "holds no /recordings group (is it a recordings file?)")
        return [str(g.attrs["id"]) for g in f["recordings"].values()]


def read_recordings(
    path: str | os.PathLike, ids: Sequence[str] | None = None, *, lazy: bool = False
) -> list[Recording]:
    """Read recordings from a store written by :func:`write_recordings`.

    Parameters
    ----------
    path : path-like
    ids : sequence of str, optional
        Recording ids to read (default all); unknown ids are an error.
    lazy : bool
        Keep traces on disk until sliced.
    """
    with open_h5(path) as f:
        if "recordings" not in f:
            raise InputError(path, "holds no /recordings group (is it a recordings file?)")
        groups = {str(g.attrs["id"]): g for g in f["recordings"].values()}
        wanted = list(groups) if ids is None else list(ids)
        unknown = [i for i in wanted if i not in groups]
        if unknown:
            raise InputError(path, f"no recordings {unknown[:5]}; it has {list(groups)[:10]}")
        try:
            return [read_recording(path, groups[i], lazy=lazy) for i in wanted]
        except (KeyError, OSError) as exc:
            raise InputError(path, f"malformed recording group: {_short(exc)}") from None
