"""Binned spike-count matrices (CSV/TSV/TXT/NPY) as spikes recordings.

The matrix holds whole spikes per bin, units x bins or bins x units, with or without a header
row of unit names and a first column of names (or bin times). It becomes the same
:class:`~neurodyn.recording.Recording` as the spike-time readers produce (modality
``"spikes"``, units ``"counts"``, traces bins x units float32, ``fs = 1 / bin_s``), so
``states`` and ``bicluster`` take it directly.

Reader options (``--reader-options KEY=VALUE``):

- ``bin_s`` (required; or ``bin_ms``): bin width.
- ``orientation``: ``units-by-bins`` or ``bins-by-units``; detected when unambiguous: a header
  row of names (columns are units), a first column of names (rows are units), a first header
  cell such as ``time``/``bin`` (rows are bins) or ``unit``/``neuron`` (rows are units), or a
  ``labels`` file whose length matches one dimension only.
- ``labels=FILE``: unit names, one per line.
- ``t_start`` (s, default 0): start of the first bin; ``dataset``, ``subject``.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodyn.errors import InputError
from neurodyn.io.formats import register
from neurodyn.params import ParamError
from neurodyn.recording import Recording

ORIENTATIONS = ("units-by-bins", "bins-by-units")
UNIT_WORDS = {"unit", "units", "unit_id", "neuron", "neurons", "cluster", "cluster_id", "id",
              "name", "label", "channel", "cell"}
TIME_WORDS = {"time", "t", "time_s", "bin", "bins", "bin_start", "bin_start_s", "timestamp",
              "bin_index", "frame"}
MAX_EXACT = 2**24  # float32 holds every integer up to here
SNIFF_LINES = 20


def _number(tok: str) -> float | None:
    try:
        x = float(tok)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _sep(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith((".tsv", ".tab")):
        return "\t"
    return None if name.endswith(".txt") else ","


def _head(path: Path, n: int = SNIFF_LINES) -> list[list[str]]:
    """The first ``n`` non-blank lines split into stripped tokens."""
    sep = _sep(path)
    lines = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                lines.append(line)
            if len(lines) >= n:
                break
    if sep is None:
        return [ln.split() for ln in lines]
    return [[t.strip() for t in row] for row in csv.reader(io.StringIO("".join(lines)),
                                                           delimiter=sep)]


class Layout:
    """Header row / first-column names of a text matrix, from its first lines."""

    def __init__(self, rows: list[list[str]]) -> None:
        if not rows:
            raise ValueError("empty file")
        first = rows[0]
        corner = first[0].strip().lower() if first else ""
        self.header = (any(_number(t) is None for t in first[1:]) or corner == ""
                       or corner in UNIT_WORDS or corner in TIME_WORDS)
        data = rows[1:] if self.header else rows
        self.corner = corner if self.header else None
        self.names_in_rows = any(r and _number(r[0]) is None for r in data)
        self.index = self.names_in_rows or (self.header and (
            corner == "" or corner in UNIT_WORDS or corner in TIME_WORDS))
        self.names_in_header = self.header and any(_number(t) is None for t in first[1:])
        self.body = [r[1:] if self.index else r for r in data]

    def orientation(self) -> tuple[str | None, str]:
        """The orientation the layout implies, or None, and why."""
        if self.corner in UNIT_WORDS:
            return "units-by-bins", f"first header cell {self.corner!r}"
        if self.corner in TIME_WORDS:
            return "bins-by-units", f"first header cell {self.corner!r}"
        if self.names_in_header and not self.names_in_rows:
            return "bins-by-units", "header row of unit names"
        if self.names_in_rows and not self.names_in_header:
            return "units-by-bins", "first column of unit names"
        return None, ""


def _is_count_body(body: list[list[str]]) -> bool:
    widths = {len(r) for r in body}
    if len(widths) != 1 or widths.pop() < 2 or len(body) < 2:
        return False
    vals = [_number(t) for r in body for t in r]
    return all(v is not None and v >= 0 and v == int(v) for v in vals)


def _sniff(path: Path) -> bool:
    if path.name.lower().endswith(".npy"):
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if arr.ndim != 2 or min(arr.shape) < 2 or arr.dtype.kind not in "iufb":
            return False
        sample = np.asarray(arr[:50, :200], dtype=np.float64)
        return bool(np.all(sample >= 0) and np.all(sample == np.round(sample)))
    return _is_count_body(Layout(_head(path)).body)


def _probe(path: Path) -> str | None:
    """A numeric matrix whose values are not counts."""
    if path.name.lower().endswith(".npy"):
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if arr.ndim == 2 and arr.dtype.kind in "iuf":
            return (f"numeric matrix {arr.shape} that is not non-negative integers; "
                    "--format counts reads whole spikes per bin only")
        return None
    lay = Layout(_head(path))
    vals = [_number(t) for r in lay.body for t in r]
    if lay.body and len(lay.body[0]) >= 2 and all(v is not None for v in vals):
        return ("numeric matrix that is not non-negative integers; --format counts reads whole "
                "spikes per bin only")
    return None


def _positive(name: str, value: Any) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        x = float(value)
    except ValueError:
        x = float("nan")
    if not math.isfinite(x) or x <= 0:
        raise ParamError("reader_options", f"{name}: expected a positive number, got {value!r}")
    return x


def _bin_width(bin_s: Any, bin_ms: Any) -> float:
    s, ms = _positive("bin_s", bin_s), _positive("bin_ms", bin_ms)
    if s is not None and ms is not None:
        raise ParamError("reader_options", "bin_s: give bin_s or bin_ms, not both")
    if s is None and ms is None:
        raise ParamError("reader_options",
                         "bin_s: a count matrix needs its bin width, e.g. bin_s=0.01")
    return s if s is not None else ms / 1000.0


def _name(x: Any) -> str:
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))
    return str(x).strip()


def _read_text(path: Path) -> tuple[np.ndarray, list[str] | None, list[str] | None, Layout]:
    """Values (R, C) float64, column names, row names (None when absent), layout."""
    lay = Layout(_head(path))
    sep = _sep(path)
    try:
        df = pd.read_csv(path, sep=sep if sep else r"\s+", header=0 if lay.header else None,
                         index_col=0 if lay.index else None, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot parse matrix: {str(exc).splitlines()[0][:160]}") from None
    for j, col in enumerate(df.columns):  # text in a column: name the first offending cell
        if not pd.api.types.is_numeric_dtype(df[col]):
            num = pd.to_numeric(df[col], errors="coerce")
            bad = np.flatnonzero(num.isna() & df[col].notna())
            if bad.size:
                i = int(bad[0])
                raise InputError(path, f"non-numeric value {df[col].iloc[i]!r} at row {i + 1}, "
                                       f"column {j + 1} of the matrix")
            df[col] = num
    vals = df.to_numpy(dtype=np.float64)
    cols = [str(c) for c in df.columns] if lay.header else None
    rows = [_name(x) for x in df.index] if lay.index else None
    return vals, cols, rows, lay


def _read_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(path, f"unreadable NPY ({str(exc).splitlines()[0][:120]})") from None
    if arr.ndim != 2:
        raise InputError(path, f"a count matrix must be 2-D, got shape {arr.shape}")
    if arr.dtype.kind not in "iufb":
        raise InputError(path, f"a count matrix must be numeric, got dtype {arr.dtype}")
    return arr


def check_counts(values: np.ndarray, path: Path) -> np.ndarray:
    """Values as exact float32 counts; InputError naming the first bad cell otherwise."""
    vals = np.asarray(values)
    if vals.size == 0:
        raise InputError(path, f"empty count matrix (shape {vals.shape})")
    if vals.dtype.kind not in "ub":
        v = vals.astype(np.float64, copy=False)
        for test, what in ((~np.isfinite(v), "missing or non-finite value"),
                           (v < 0, "negative count"),
                           (v != np.round(v), "non-integer count")):
            bad = np.argwhere(test)
            if bad.size:
                r, c = bad[0]
                n = int(test.sum())
                raise InputError(path, f"{what} {float(v[r, c]):g} at row {r + 1}, column "
                                       f"{c + 1} of the matrix ({n:,} bad cell{'s' * (n > 1)}); "
                                       "counts are whole spikes per bin")
    if vals.max() >= MAX_EXACT:
        raise InputError(path, f"count {vals.max()} too large to store exactly (max {MAX_EXACT})")
    return vals.astype(np.float32)


def _labels_file(path: str | Path) -> list[str]:
    p = Path(path)
    try:
        names = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(p, f"cannot read the labels file ({exc.__class__.__name__})") from None
    if not names:
        raise InputError(p, "labels file has no names")
    return names


@register("counts", [".csv", ".tsv", ".tab", ".txt", ".npy"], _sniff,
          "binned spike-count matrix (CSV/TSV/TXT/NPY; --reader-options bin_s= required)",
          probe=_probe)
def read_counts(path: Path, bin_s: float | str | None = None, bin_ms: float | str | None = None,
                orientation: str = "auto", labels: str | None = None,
                t_start: float | str = 0.0, dataset: str = "counts",
                subject: str | None = None) -> list[Recording]:
    """A count matrix (see the module docstring) as one spikes recording.

    Raises InputError when the bin width is missing, the orientation cannot be told, or a cell
    is missing, negative or not a whole number.
    """
    width = _bin_width(bin_s, bin_ms)
    if orientation not in ("auto", *ORIENTATIONS):
        raise ParamError("reader_options", f"orientation: one of auto, "
                                           f"{', '.join(ORIENTATIONS)}; got {orientation!r}")
    start = 0.0 if t_start is None or str(t_start).strip() == "" else float(t_start)
    if path.name.lower().endswith(".npy"):
        vals, cols, rows, implied, why = _read_npy(path), None, None, None, ""
    else:
        vals, cols, rows, lay = _read_text(path)
        implied, why = lay.orientation()
    vals = check_counts(vals, path)
    names = _labels_file(labels) if labels else None
    R, C = vals.shape
    if orientation == "auto":
        if implied is None and names is not None:
            fits = [o for o, n in zip(ORIENTATIONS, (R, C)) if n == len(names)]
            if len(fits) == 1:
                implied, why = fits[0], f"{len(names)} names in the labels file"
        if implied is None:
            raise ParamError(
                "reader_options",
                f"orientation: {path}: cannot tell whether the {R} rows x {C} columns are units or bins; pass "
                "orientation=units-by-bins or orientation=bins-by-units",
            )
        orientation = implied
    else:
        why = "option"
    traces = vals.T if orientation == "units-by-bins" else vals
    n_units = traces.shape[1]
    if names is None:
        found = rows if orientation == "units-by-bins" else cols
        names = found if found is not None else [str(i) for i in range(n_units)]
    if len(names) != n_units:
        raise InputError(labels or path, f"{len(names)} unit names for {n_units} units "
                                         f"({orientation})")
    if len(set(names)) != len(names):
        dup = sorted({x for x in names if names.count(x) > 1})
        raise InputError(labels or path, f"duplicate unit names: {', '.join(dup[:5])}")
    n_bins = traces.shape[0]
    spikes = traces.sum(axis=0, dtype=np.float64).astype(np.int64)
    stem = path.name.split(".")[0]
    info = pd.DataFrame({"unit": names, "region": [""] * n_units, "n_spikes": spikes})
    return [Recording(
        traces=np.ascontiguousarray(traces), labels=names, modality="spikes", fs=1.0 / width,
        time=start + np.arange(n_bins, dtype=np.float64) * width, units="counts",
        id=f"{dataset or 'counts'}/{stem}", subject=subject or stem, dataset=dataset,
        source_file=str(path), channel_info=info,
        meta={"format": "counts", "bin_ms": width * 1000.0, "t_start": start,
              "t_stop": start + n_bins * width, "n_spikes_total": int(spikes.sum()),
              "n_spikes_outside": 0, "orientation": orientation, "orientation_from": why},
    )]
