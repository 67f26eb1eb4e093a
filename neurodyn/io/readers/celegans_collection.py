"""The published Homogenized C. elegans neural-activity collection (Simeon et al. 2024).

Two layouts of the same data (see ``shared/data/FORMATS.md`` section 1.1):

* the published long-format **parquet** (HuggingFace ``qsimeon/celegans_neural_data``), one
  row per (worm, neuron) with list columns ``calcium_data`` / ``original_calcium_data`` and
  their time axes;
* the intermediate **pickle** per source set (``<Dataset>.pickle``): a dict of worms, each
  with ``(max_timesteps, 300)`` arrays indexed by canonical neuron slot plus masks and maps.

Each worm becomes one :class:`Recording` with id ``"<source_dataset>/<worm>"`` (e.g.
``"Yemini2021/worm3"``): labelled neurons first in slot (alphabetical) order, then the
unlabelled ROIs (numeric names in the collection) as ``roi<name>``, told apart by
``channel_info.is_labeled``.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodyn.errors import InputError
from neurodyn.io.formats import register
from neurodyn.io.readers.celegans_worm import attach_stimuli
from neurodyn.names import CANONICAL_NEURONS, CANONICAL_SLOT, canonical_neuron_name
from neurodyn.recording import Recording

#: ``trace=`` choices: (parquet/pickle key of the traces, key of their time axis).
TRACES: dict[str, tuple[str, str]] = {
    "calcium": ("calcium_data", "time_in_seconds"),
    "original": ("original_calcium_data", "original_time_in_seconds"),
    "smooth": ("smooth_calcium_data", "time_in_seconds"),
    "original_smooth": ("original_smooth_calcium_data", "original_time_in_seconds"),
    "residual": ("residual_calcium", "time_in_seconds"),
    "smooth_residual": ("smooth_residual_calcium", "time_in_seconds"),
}
PARQUET_KEYS = ("source_dataset", "worm", "neuron", "is_labeled_neuron")
_META_COLUMNS = ("raw_data_file", "smooth_method", "interpolate_method", "normalization_method")


def as_list(value: str | Sequence[str] | None) -> list[str]:
    """Option value -> list of strings; a string is split on commas (CLI reader options)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value]


def as_bool(value: bool | str) -> bool:
    """``True``/``"true"``/``"1"``/``"yes"`` -> True (CLI reader options arrive as text)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _trace_keys(trace: str) -> tuple[str, str]:
    if trace not in TRACES:
        raise InputError("trace", f"unknown trace {trace!r}; one of {', '.join(TRACES)}")
    return TRACES[trace]


def _split_worms(worms: list[str]) -> tuple[set[str], set[str]]:
    """Worm selectors -> (bare worm names, full ids "Dataset/worm")."""
    bare = {w.split("/")[-1] for w in worms}
    full = {w for w in worms if "/" in w}
    return bare, full


def _bare_only(bare: set[str], full: set[str]) -> set[str]:
    """Bare worm names not already pinned to a dataset by a full id."""
    return {b for b in bare if not any(f.split("/")[-1] == b for f in full)}


def natural_key(text: str) -> tuple:
    """Sort key putting ``worm2`` before ``worm10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(text)))


def _unlabeled_name(name: str) -> str:
    return name if name.startswith("roi") else f"roi{name}"


def _neuron_sort_key(name: str, labelled: bool) -> tuple:
    if labelled:
        return (0, CANONICAL_SLOT.get(name, len(CANONICAL_SLOT)), name)
    digits = name.removeprefix("roi")
    return (1, int(digits) if digits.isdigit() else 1 << 30, name)


# --------------------------------------------------------------------------------------
# parquet
# --------------------------------------------------------------------------------------


def _parquet_files(path: Path) -> list[Path]:
    """The file itself, or the ``*.parquet`` shards under a folder (HuggingFace layout)."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*.parquet") if p.is_file())
    return [path]


def _sniff_parquet(path: Path) -> bool:
    import pyarrow.parquet as pq

    files = _parquet_files(path)
    if not files:
        return False
    with open(files[0], "rb") as fh:
        if fh.read(4) != b"PAR1":
            return False
    names = set(pq.read_schema(files[0]).names)
    return set(PARQUET_KEYS) <= names and "calcium_data" in names


def _list_column(table: Any, name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A list<float> column as (flat values float32, offsets (rows + 1,))."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(name).combine_chunks()
    if not pa.types.is_list(col.type) and not pa.types.is_large_list(col.type):
        raise InputError(path, f"column {name!r} is {col.type}, expected a list of floats")
    if col.null_count:
        raise InputError(path, f"column {name!r} has {col.null_count} missing rows")
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
    values = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return values, offsets


@register(
    "celegans-parquet",
    [".parquet", ".pq", "/"],
    _sniff_parquet,
    "Homogenized C. elegans collection, published long-format parquet (one row per worm x neuron)",
)
def read_collection_parquet(
    path: Path,
    datasets: str | Sequence[str] | None = None,
    worms: str | Sequence[str] | None = None,
    neurons: str | Sequence[str] | None = None,
    labeled_only: bool | str = False,
    trace: str = "calcium",
    stimuli: str | Path | None = None,
) -> list[Recording]:
    """Read the published parquet; one Recording per (source_dataset, worm).

    Selection happens while reading (pyarrow row filters and column projection), so asking for
    one dataset of the ~42.8k-row file does not load the rest.

    Parameters
    ----------
    path : Path
        ``*.parquet`` with the columns of FORMATS.md 1.1, or a folder of such shards (as a
        HuggingFace download stores them).
    datasets : str or list of str, optional
        Source datasets to keep (``"Yemini2021,Kato2015"`` or a list).
    worms : str or list of str, optional
        Worms to keep: bare (``"worm3"``, in every dataset) or full ids (``"Yemini2021/worm3"``).
    neurons : str or list of str, optional
        Canonical neuron names to keep (unlabelled ROIs are dropped when given).
    labeled_only : bool
        Drop unlabelled ROIs.
    trace : {"calcium", "original", "smooth", ...}
        ``"calcium"`` (default): resampled, z-scored ``calcium_data`` on ``time_in_seconds``;
        ``"original"``: ``original_calcium_data`` on its own ``original_time_in_seconds``.
        Smoothed/residual traces are read when the file has those columns.
    stimuli : path, optional
        CSV of stimulus intervals (onset, offset, label[, dataset, worm]) added to events; see
        :func:`neurodyn.io.readers.celegans_worm.attach_stimuli`.

    Returns
    -------
    list of Recording
        traces (T, N) float32, units ``"z"`` (normalised by the collection), sorted by id.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    trace_col, time_col = _trace_keys(trace)
    files = _parquet_files(path)
    if not files:
        raise InputError(path, "no .parquet files in this folder")
    try:
        schema = pq.read_schema(files[0])
    except (pa.ArrowException, OSError) as exc:
        raise InputError(path, f"not a readable parquet file: {exc}") from None
    have = set(schema.names)
    missing = [c for c in (*PARQUET_KEYS, trace_col, time_col) if c not in have]
    if missing:
        hint = " (the published parquet leaves smoothed/residual traces out)" if trace_col not in have else ""
        raise InputError(path, f"parquet lacks columns {missing} for trace={trace!r}{hint}")
    want_ds = as_list(datasets)
    bare, full = _split_worms(as_list(worms))
    want_neurons = [canonical_neuron_name(n) for n in as_list(neurons)]
    labeled_only = as_bool(labeled_only)
    filters: list[tuple] = []
    if want_ds:
        filters.append(("source_dataset", "in", want_ds))
    if bare:
        filters.append(("worm", "in", sorted(bare)))
    if want_neurons:
        filters.append(("neuron", "in", want_neurons))
    if labeled_only:
        filters.append(("is_labeled_neuron", "==", True))
    extra = [c for c in (*_META_COLUMNS, "slot", "max_timesteps", "original_max_timesteps") if c in have]
    columns = [*PARQUET_KEYS, *extra, trace_col, time_col]
    try:
        source = str(files[0]) if len(files) == 1 else [str(f) for f in files]
        table = pq.read_table(source, columns=columns, filters=filters or None)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(path, f"cannot read parquet: {str(exc).splitlines()[0]}") from None
    if table.num_rows == 0:
        raise InputError(path, _nothing_selected(path, want_ds, as_list(worms)))
    scal = table.select([c for c in table.column_names if c not in (trace_col, time_col)]).to_pandas()
    scal["row"] = np.arange(len(scal))
    if full:
        ids = scal["source_dataset"].astype(str) + "/" + scal["worm"].astype(str)
        scal = scal[ids.isin(full) | scal["worm"].astype(str).isin(_bare_only(bare, full))]
        if scal.empty:
            raise InputError(path, _nothing_selected(path, want_ds, as_list(worms)))
    groups = list(scal.groupby(["source_dataset", "worm"], sort=False))
    values, offsets = _list_column(table, trace_col, path)
    # one time axis per worm: take only each worm's first row of the time column
    firsts = np.array([g["row"].iloc[0] for _, g in groups], dtype=np.int64)
    tvalues, toffsets = _list_column(table.select([time_col]).take(pa.array(firsts)), time_col, path)
    recs = []
    for k, ((ds, worm), g) in enumerate(groups):
        time = tvalues[toffsets[k] : toffsets[k + 1]].astype(np.float64)
        recs.append(_parquet_worm(path, str(ds), str(worm), g, values, offsets, time, trace))
    recs.sort(key=lambda r: (r.dataset, natural_key(r.subject)))
    return attach_stimuli(recs, stimuli)


def _nothing_selected(path: Path, datasets: list[str], worms: list[str]) -> str:
    import pyarrow.parquet as pq

    files = [str(f) for f in _parquet_files(path)]
    try:
        avail = sorted(set(pq.read_table(files, columns=["source_dataset"]).column(0).to_pylist()))
    except Exception:  # pragma: no cover - the file was readable a moment ago
        avail = []
    what = []
    if datasets:
        what.append(f"datasets {datasets}")
    if worms:
        what.append(f"worms {worms}")
    sel = " and ".join(what) or "the selection"
    return f"no rows for {sel}; datasets in the file: {', '.join(map(str, avail)) or 'none'}"


def _parquet_worm(
    path: Path,
    ds: str,
    worm: str,
    g: pd.DataFrame,
    values: np.ndarray,
    offsets: np.ndarray,
    time: np.ndarray,
    trace: str,
) -> Recording:
    rid = f"{ds}/{worm}"
    rows = g["row"].to_numpy()
    lengths = offsets[rows + 1] - offsets[rows]
    T = int(lengths[0])
    if T == 0 or np.any(lengths != T):
        raise InputError(path, f"{rid}: traces differ in length ({sorted(set(lengths.tolist()))[:4]})")
    if time.size != T:
        raise InputError(path, f"{rid}: {T} samples but {time.size} time stamps")
    count_col = "original_max_timesteps" if trace.startswith("original") else "max_timesteps"
    if count_col in g and np.any(g[count_col].to_numpy() != T):
        raise InputError(path, f"{rid}: {count_col} disagrees with the trace length {T}")
    labelled = g["is_labeled_neuron"].to_numpy(dtype=bool)
    raw = [str(x) for x in g["neuron"]]
    names = [canonical_neuron_name(x) if ok else _unlabeled_name(x) for x, ok in zip(raw, labelled)]
    if len(set(names)) != len(names):
        dup = sorted({x for x in names if names.count(x) > 1})
        raise InputError(path, f"{rid}: duplicate neuron rows {dup[:5]}")
    order = sorted(range(len(names)), key=lambda i: _neuron_sort_key(names[i], labelled[i]))
    traces = np.empty((T, len(order)), dtype=np.float32)
    for j, i in enumerate(order):
        r = rows[i]
        traces[:, j] = values[offsets[r] : offsets[r + 1]]
    info = pd.DataFrame(
        {
            "is_labeled": labelled[order],
            "source_name": [raw[i] for i in order],
            "slot": g["slot"].to_numpy()[order].astype(np.int64) if "slot" in g else -1,
        }
    )
    meta = {"trace": trace, "n_labeled": int(labelled.sum())}
    for c in _META_COLUMNS:
        if c in g:
            meta[c] = str(g[c].iloc[0])
    return Recording(
        traces=traces,
        labels=[names[i] for i in order],
        modality="calcium",
        time=time,
        units="z",
        id=rid,
        subject=worm,
        dataset=ds,
        source_file=str(path),
        channel_info=info,
        meta=meta,
    )


# --------------------------------------------------------------------------------------
# intermediate pickle
# --------------------------------------------------------------------------------------

_SAFE_BUILTINS = {
    "dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str", "bytes",
    "bytearray", "bool", "slice", "range", "object",
}


_NUMPY_REBUILD = {"_reconstruct", "scalar", "_frombuffer", "dtype", "ndarray"}
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
    ("copyreg", "_reconstructor"),
}


class _DataUnpickler(pickle.Unpickler):
    """Unpickles plain data, numpy and torch tensors only; anything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        root = module.split(".")[0]
        if module == "builtins" and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        if root == "numpy":
            obj = super().find_class(module, name)
            if name in _NUMPY_REBUILD or (
                isinstance(obj, type) and issubclass(obj, (np.generic, np.ndarray, np.dtype))
            ):
                return obj
        elif root == "torch":  # tensors rebuild through torch._utils / torch.storage
            try:
                import torch  # noqa: F401
            except ImportError:
                raise _NeedsTorch() from None
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not plain data)")


class _NeedsTorch(Exception):
    pass


def _sniff_pickle(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def load_pickle(path: Path) -> Any:
    """Load a collection pickle safely (data, numpy and torch classes only)."""
    try:
        with open(path, "rb") as fh:
            return _DataUnpickler(io.BufferedReader(fh)).load()
    except _NeedsTorch:
        raise InputError(
            path, "this pickle holds torch tensors; install torch (pip install torch) to read it"
        ) from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, ImportError, IndexError) as exc:
        raise InputError(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from None


def to_numpy(x: Any) -> np.ndarray:
    """numpy array from a numpy array, a torch tensor (``.numpy()``) or a nested list."""
    if hasattr(x, "detach"):
        x = x.detach()
    if hasattr(x, "cpu") and not isinstance(x, np.ndarray):
        x = x.cpu()
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    return np.asarray(x)


def _slot_names(w: dict, path: Path, worm: str) -> tuple[dict[int, str], dict[int, str]]:
    """(slot -> labelled name, slot -> unlabelled name) from a worm dict's maps or masks."""

    def mapping(key: str) -> dict[int, str] | None:
        m = w.get(key)
        return None if m is None else {int(k): str(v) for k, v in dict(m).items()}

    lab, unl = mapping("slot_to_labeled_neuron"), mapping("slot_to_unlabeled_neuron")
    if lab is not None:
        return lab, unl or {}
    every = mapping("slot_to_neuron")
    if every is None and w.get("neuron_to_slot") is not None:
        every = {int(v): str(k) for k, v in dict(w["neuron_to_slot"]).items()}
    if every is None:
        if "labeled_neurons_mask" not in w:
            raise InputError(path, f"{worm}: no slot_to_neuron map or labeled_neurons_mask")
        mask = to_numpy(w["labeled_neurons_mask"]).astype(bool).ravel()
        return {int(s): CANONICAL_NEURONS[s] for s in np.flatnonzero(mask)}, {}
    lab = {s: n for s, n in every.items() if not n.isdigit()}
    unl = {s: n for s, n in every.items() if n.isdigit()}
    return lab, unl


@register(
    "celegans-pickle",
    [".pickle", ".pkl"],
    _sniff_pickle,
    "Homogenized C. elegans collection, intermediate per-dataset pickle (<Dataset>.pickle)",
)
def read_collection_pickle(
    path: Path,
    worms: str | Sequence[str] | None = None,
    neurons: str | Sequence[str] | None = None,
    labeled_only: bool | str = False,
    trace: str = "calcium",
    stimuli: str | Path | None = None,
) -> list[Recording]:
    """Read ``<Dataset>.pickle``: a dict ``{"worm0": {...}, ...}`` of (T, 300) slot arrays.

    Arrays may be numpy arrays or torch tensors (torch is imported only when the pickle holds
    tensors). Only data classes are unpickled (numpy, torch, builtins); other classes are refused,
    but still only open pickles you trust.

    Parameters
    ----------
    trace : {"calcium", "smooth", "original", "original_smooth", "residual", "smooth_residual"}
        Which array to read; ``original*`` use ``original_time_in_seconds``.
    worms, neurons, labeled_only, stimuli
        As in :func:`read_collection_parquet`.
    """
    trace_key, time_key = _trace_keys(trace)
    data = load_pickle(path)
    if not isinstance(data, dict) or not data:
        raise InputError(path, "expected a non-empty dict of worms")
    bare, full = _split_worms(as_list(worms))
    want = {canonical_neuron_name(n) for n in as_list(neurons)}
    labeled_only = as_bool(labeled_only)
    recs = []
    for worm in sorted(data, key=natural_key):
        w = data[worm]
        if not isinstance(w, dict):
            raise InputError(path, f"{worm}: expected a dict per worm, got {type(w).__name__}")
        ds = str(w.get("source_dataset", path.stem))
        wname = str(w.get("worm", worm))
        rid = f"{ds}/{wname}"
        if (bare or full) and not (rid in full or wname in _bare_only(bare, full)):
            continue
        for key in (trace_key, time_key):
            if key not in w:
                raise InputError(path, f"{worm}: no {key!r} array (trace={trace!r})")
        x = to_numpy(w[trace_key]).astype(np.float32)
        t = to_numpy(w[time_key]).astype(np.float64).ravel()
        if x.ndim != 2:
            raise InputError(path, f"{worm}: {trace_key} has shape {x.shape}, expected (T, 300)")
        n_t = int(w.get("original_max_timesteps" if trace.startswith("original") else "max_timesteps", x.shape[0]))
        x, t = x[:n_t], t[:n_t]
        lab, unl = _slot_names(w, path, worm)
        if labeled_only:
            unl = {}
        if want:
            lab = {s: n for s, n in lab.items() if canonical_neuron_name(n) in want}
            unl = {}
        slots = sorted(lab, key=lambda s: _neuron_sort_key(canonical_neuron_name(lab[s]), True))
        slots += sorted(unl, key=lambda s: _neuron_sort_key(unl[s], False))
        if not slots:
            continue
        if max(slots) >= x.shape[1]:
            raise InputError(path, f"{worm}: slot {max(slots)} outside {x.shape[1]} columns")
        names = [canonical_neuron_name(lab[s]) for s in slots if s in lab]
        names += [_unlabeled_name(unl[s]) for s in slots if s not in lab]
        info = pd.DataFrame(
            {"is_labeled": [s in lab for s in slots], "slot": np.asarray(slots, dtype=np.int64)}
        )
        meta = {"trace": trace, "n_labeled": len(lab)}
        for k in ("smooth_method", "interpolate_method", "normalization_method"):
            if k in w:
                meta[k] = str(w[k])
        extra = w.get("extra_info")
        if isinstance(extra, dict):
            meta.update({f"extra_{k}": str(v) for k, v in extra.items()})
        recs.append(
            Recording(
                traces=x[:, slots],
                labels=names,
                modality="calcium",
                time=t,
                units="z",
                id=rid,
                subject=wname,
                dataset=ds,
                source_file=str(path),
                channel_info=info,
                meta=meta,
            )
        )
    if not recs:
        raise InputError(path, "no worm left after selection")
    return attach_stimuli(recs, stimuli)
