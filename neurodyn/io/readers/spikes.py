"""Spike trains: MATLAB cell arrays of spike times, spike-time tables, NWB units tables.

Every reader bins spike times to counts (:func:`neurodyn.binning.bin_trains`) and returns one
:class:`~neurodyn.recording.Recording` per file: modality ``"spikes"``, units ``"counts"``,
traces float32 (bins x units), labels = unit ids as strings, ``time`` = bin start times in
seconds, ``fs = 1000 / bin_ms``, and ``channel_info`` with ``unit``, ``region`` and
``n_spikes`` (spikes counted in the window). ``meta`` records ``bin_ms``, ``t_start``,
``t_stop``, ``n_spikes_total``, ``n_spikes_outside`` (spikes left out by the window) and
``first_spike_s`` / ``last_spike_s``.

Common reader options (``--reader-options KEY=VALUE``):

- ``bin_ms`` (default 10): bin width in milliseconds.
- ``t_start`` / ``t_stop`` (seconds): window; default from the first spike (floored to a bin)
  to just after the last spike.
- ``time_unit`` (``s`` default, ``ms``, ``us``, or ``samples`` with ``fs=HZ``): unit of the
  spike times in the file.
- ``dataset`` (id prefix), ``subject`` (default: the file stem).

Binning refuses a count matrix larger than the memory available before allocating it
(:func:`neurodyn.guard.check_alloc`; times in the wrong unit otherwise ask for terabytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodyn.binning import bin_trains
from neurodyn.errors import InputError
from neurodyn.io.formats import register
from neurodyn.io.readers._util import h5_has, is_matlab_v5
from neurodyn.params import ParamError
from neurodyn.recording import Recording, empty_events

DEFAULT_BIN_MS = 10.0
UNIT_COLUMNS = ("unit", "unit_id", "unit_ids", "units", "cluster", "cluster_id", "clu",
                "spike_clusters", "clusters")
TIME_COLUMNS = ("time", "t", "spike_time", "spike_times", "times", "timestamp", "timestamps")
REGION_COLUMNS = ("region", "location", "brain_area", "area", "brain_region")
TIME_SCALE = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
INTEGER_SECONDS_MAX = 1000  # integer spike times above this are not read as seconds unasked


def _float(name: str, value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParamError("reader_options", f"{name}: expected a number, got {value!r}") from None


def trains_to_recording(
    trains: Sequence[np.ndarray],
    unit_ids: Sequence[Any],
    path: Path,
    *,
    bin_ms: float | str = DEFAULT_BIN_MS,
    t_start: float | str | None = None,
    t_stop: float | str | None = None,
    regions: Sequence[str] | None = None,
    extra_info: dict[str, Sequence[Any]] | None = None,
    events: pd.DataFrame | None = None,
    dataset: str = "spikes",
    subject: str | None = None,
    fmt: str = "",
    time_unit_s: float = 1.0,
) -> Recording:
    """Bin per-unit spike trains into a spikes Recording (see module docstring).

    ``trains`` are in units of ``time_unit_s`` seconds (1 for seconds, 1e-3 for ms, ``1 / fs``
    for samples); ``bin_ms``, ``t_start`` and ``t_stop`` are in ms and seconds as always.
    Binning runs in the file's unit, with the width snapped to a whole number of units when
    it is one, so that integer times (samples, ms) on a bin edge fall in the bin they start.

    Raises InputError for no units, no spikes, non-finite spike times or an empty window.
    """
    width_ms = _float("bin_ms", bin_ms)
    if width_ms is None or not np.isfinite(width_ms) or width_ms <= 0:
        raise ParamError("reader_options", f"bin_ms: bin width must be positive, got {bin_ms!r}")
    width = width_ms / 1000.0
    start, stop = _float("t_start", t_start), _float("t_stop", t_stop)
    unit = float(time_unit_s)
    width_u = width / unit
    if round(width_u) >= 1 and abs(width_u - round(width_u)) <= 1e-9 * width_u:
        width_u = float(round(width_u))
    if not trains:
        raise InputError(path, "empty units table (no units)")
    trains = [np.asarray(x, dtype=np.float64).ravel() for x in trains]
    total = int(sum(x.size for x in trains))
    if total == 0:
        raise InputError(path, f"no spikes in any of the {len(trains)} units")
    bad = [str(u) for u, x in zip(unit_ids, trains) if not np.all(np.isfinite(x))]
    if bad:
        raise InputError(path, f"non-finite spike times in units {', '.join(bad[:5])}")
    if start is not None and stop is not None and stop <= start:
        raise ParamError("reader_options", f"t_stop: t_stop {stop} <= t_start {start}")
    try:
        counts, starts, t0, t1 = bin_trains(trains, width_u, None if start is None else start / unit,
                                            None if stop is None else stop / unit)
    except ParamError as exc:  # the size guard: name the file and the likely cause
        raise InputError(path, f"{exc.problem}; widen bin_ms, set t_start/t_stop, or check the "
                               "time unit (times in samples need --reader-options "
                               "time_unit=samples fs=HZ)") from None
    starts, t0, t1 = starts * unit, t0 * unit, t1 * unit
    n_in = counts.sum(axis=0).astype(np.int64)
    if n_in.sum() == 0:
        raise InputError(path, f"no spike falls in the window [{t0}, {t1}) s")
    labels = [str(u) for u in unit_ids]
    info = pd.DataFrame(
        {
            "unit": labels,
            "region": list(regions) if regions is not None else [""] * len(labels),
            "n_spikes": n_in,
        }
    )
    for k, v in (extra_info or {}).items():
        info[k] = list(v)
    stem = path.name.split(".")[0]
    return Recording(
        traces=counts,
        labels=labels,
        modality="spikes",
        fs=1.0 / width,
        time=starts,
        units="counts",
        id=f"{dataset or 'spikes'}/{stem}",
        subject=subject or stem,
        dataset=dataset,
        source_file=str(path),
        events=events if events is not None else empty_events(),
        channel_info=info,
        meta={
            "format": fmt, "bin_ms": width_ms, "t_start": t0, "t_stop": t1,
            "n_spikes_total": total, "n_spikes_outside": total - int(n_in.sum()),
            "first_spike_s": float(min(x.min() for x in trains if x.size)) * unit,
            "last_spike_s": float(max(x.max() for x in trains if x.size)) * unit,
        },
    )


# -- MATLAB cell array of spike times -------------------------------------------------------
def _mat_cell_names(path: Path) -> list[str]:
    import scipy.io

    return [name for name, _shape, cls in scipy.io.whosmat(path) if cls == "cell"]


def _sniff_unit_mat(path: Path) -> bool:
    return is_matlab_v5(path) and "unit_t" in _mat_cell_names(path)


def _probe_unit_mat(path: Path) -> str | None:
    cells = _mat_cell_names(path) if is_matlab_v5(path) else []
    if cells:
        return (f"cell arrays {cells[:5]}: pass --format spikes-mat "
                f"--reader-options variable={cells[0]} if they hold spike times")
    return None


@register("spikes-mat", [".mat"], _sniff_unit_mat,
          "MATLAB cell array of per-unit spike times (all_unit.mat, variable unit_t)",
          probe=_probe_unit_mat)
def read_unit_mat(path: Path, variable: str = "unit_t", bin_ms: float | str = DEFAULT_BIN_MS,
                  t_start: float | str | None = None, t_stop: float | str | None = None,
                  time_unit: str | None = None, fs: float | str | None = None,
                  dataset: str = "spikes", subject: str | None = None) -> list[Recording]:
    """A MATLAB v5 file whose cell array ``variable`` holds one spike-time vector per unit.

    Unit ids are the cell indices 0..U-1; times are in seconds unless ``time_unit`` says
    ``ms``/``us``, or ``samples`` with ``fs`` (Hz); integer times above 1000 need ``time_unit``.
    """
    import scipy.io

    if not is_matlab_v5(path):
        raise InputError(path, "not a MATLAB v5 file")
    m = scipy.io.loadmat(path, variable_names=[variable])
    if variable not in m:
        raise InputError(path, f"no variable {variable!r}; cell variables: {_mat_cell_names(path)}")
    cell = np.asarray(m[variable])
    if cell.dtype != object:
        raise InputError(path, f"{variable!r} is not a cell array (dtype {cell.dtype})")
    trains = []
    for i, x in enumerate(cell.ravel(order="F")):
        arr = np.asarray(x)
        if arr.size and arr.dtype.kind not in "fiu":
            raise InputError(path, f"cell {i} of {variable!r} is not numeric ({arr.dtype})")
        check_integer_times(arr.ravel(), f"spike times in cell {i} of {variable!r}", time_unit,
                            path)
        trains.append(arr.astype(np.float64).ravel())
    scale = time_scale(time_unit or "s", fs)
    rec = trains_to_recording(trains, list(range(len(trains))), path, bin_ms=bin_ms,
                              t_start=t_start, t_stop=t_stop, dataset=dataset, subject=subject,
                              fmt="mat-cell", time_unit_s=scale)
    return [rec]


def check_integer_times(times: np.ndarray, what: str, time_unit: str | None,
                        path: Path) -> str:
    """``time_unit``, defaulting to seconds, except for large integer times (samples, ms...)."""
    if time_unit is not None:
        return time_unit
    if times.dtype.kind in "iu" and times.size and times.max() > INTEGER_SECONDS_MAX:
        raise InputError(path, f"{what} are integers up to {int(times.max()):,}, not seconds: "
                               "pass --reader-options time_unit=samples fs=HZ (or time_unit=ms, "
                               "us, or s to read them as whole seconds)")
    return "s"


def time_scale(unit: str, fs: float | str | None = None) -> float:
    """Seconds per unit of spike time: ``s``, ``ms``, ``us``, or ``samples`` (needs ``fs`` Hz)."""
    rate = _float("fs", fs)
    if unit == "samples":
        if rate is None:
            raise ParamError("reader_options", "fs: time_unit=samples needs the sampling rate: "
                                               "pass fs=HZ (e.g. fs=30000)")
        if not np.isfinite(rate) or rate <= 0:
            raise ParamError("reader_options", f"fs: sampling rate must be positive, got {fs!r}")
        return 1.0 / rate
    if unit not in TIME_SCALE:
        raise ParamError("reader_options", f"time_unit: one of {sorted(TIME_SCALE) + ['samples']}, "
                                           f"got {unit!r}")
    if rate is not None:
        raise ParamError("reader_options", f"fs: fs applies to time_unit=samples, not {unit!r}")
    return TIME_SCALE[unit]


# -- spike-time tables ----------------------------------------------------------------------
def _pick(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str,
          path: Path) -> str:
    cols = [str(c) for c in columns]
    if wanted:
        if wanted not in cols:
            raise InputError(path, f"no {what} column {wanted!r}; columns: {cols[:20]}")
        return wanted
    lower = {c.lower(): c for c in cols}
    for c in candidates:
        if c in lower:
            return lower[c]
    raise InputError(
        path, f"no {what} column found among {cols[:20]} (pass --reader-options {what}_col=NAME)"
    )


def _table_columns(path: Path) -> list[str]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    if name.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            return list(z.files)
    sep = "\t" if name.endswith((".tsv", ".tab")) else ","
    with open(path, encoding="utf-8", errors="replace") as fh:
        return [c.strip().strip('"') for c in fh.readline().rstrip("\r\n").split(sep)]


def _sniff_table(path: Path) -> bool:
    cols = {c.lower() for c in _table_columns(path)}
    return bool(cols & set(UNIT_COLUMNS)) and bool(cols & set(TIME_COLUMNS))


def _probe_table(path: Path) -> str | None:
    """A table whose columns the autodetection does not name: which options would read it."""
    name = path.name.lower()
    if name.endswith((".csv", ".tsv", ".tab")):  # a header alone proves nothing about text
        cols = [str(c) for c in pd.read_csv(path, sep="\t" if name.endswith((".tsv", ".tab"))
                                            else ",", nrows=20).columns]
    else:
        cols = _table_columns(path)
    if len(cols) < 2:
        return None
    unit = next((c for c in cols if c.lower() in UNIT_COLUMNS), None)
    time = next((c for c in cols if c.lower() in TIME_COLUMNS), None)
    rest = [c for c in cols if c not in (unit, time)] + ["NAME", "NAME"]
    opts = [] if unit else [f"unit_col={rest.pop(0)}"]
    opts += [] if time else [f"time_col={rest[0]}"]
    shown = ", ".join(cols[:8]) + (", ..." if len(cols) > 8 else "")
    return (f"columns [{shown}]; for one spike per row pass --reader-options "
            f"{' '.join(opts)} (and time_unit=ms|us|samples fs=HZ if not seconds)")


def _load_table(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if name.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.ravel(z[k]) for k in z.files}
        lengths = {len(v) for v in arrays.values()}
        if len(lengths) > 1:
            arrays = {k: v for k, v in arrays.items() if len(v) == max(lengths)}
        return pd.DataFrame(arrays)
    sep = "\t" if name.endswith((".tsv", ".tab")) else ","
    return pd.read_csv(path, sep=sep)


@register("spikes-table", [".csv", ".tsv", ".tab", ".parquet", ".npz"], _sniff_table,
          "spike-time table (CSV/TSV/Parquet/NPZ) with unit and time columns",
          probe=_probe_table)
def read_spike_table(path: Path, unit_col: str | None = None, time_col: str | None = None,
                     region_col: str | None = None, time_unit: str | None = None,
                     fs: float | str | None = None, bin_ms: float | str = DEFAULT_BIN_MS,
                     t_start: float | str | None = None,
                     t_stop: float | str | None = None, dataset: str = "spikes",
                     subject: str | None = None) -> list[Recording]:
    """One spike per row: a unit column (unit, unit_id, cluster, ...) and a time column
    (time, t, spike_time, times, ...), names configurable with ``unit_col`` / ``time_col``.

    A region column (region, location, brain_area, ...) constant per unit becomes the unit's
    region. Units are ordered numerically when all ids are integers, else as strings.
    NPZ files hold one 1-D array per column. Times are in seconds unless ``time_unit`` says
    ``ms``/``us``, or ``samples`` with ``fs`` (Hz), e.g. Kilosort's ``spike_times``; integer
    times above 1000 need ``time_unit`` (they are rarely whole seconds).
    """
    try:
        df = _load_table(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot parse table: {str(exc).splitlines()[0][:160]}") from None
    ucol = _pick(df.columns, unit_col, UNIT_COLUMNS, "unit", path)
    tcol = _pick(df.columns, time_col, TIME_COLUMNS, "time", path)
    if df.empty:
        raise InputError(path, "empty spike table (no rows)")
    raw = pd.to_numeric(df[tcol], errors="coerce").to_numpy()
    times = raw.astype(np.float64)
    if not np.all(np.isfinite(times)):
        n_bad = int((~np.isfinite(times)).sum())
        raise InputError(path, f"{n_bad} rows with a missing or non-numeric {tcol!r}")
    time_unit = check_integer_times(raw, f"spike times in {tcol!r}", time_unit, path)
    scale = time_scale(time_unit, fs)
    units = df[ucol]
    if units.isna().any():
        raise InputError(path, f"{int(units.isna().sum())} rows with no {ucol!r}")
    ids = pd.unique(units)
    try:
        as_int = [int(u) for u in ids]
        numeric = all(float(u) == i for u, i in zip(ids, as_int))
    except (TypeError, ValueError):
        numeric = False
    order = sorted(ids, key=(lambda u: int(u)) if numeric else (lambda u: str(u)))
    codes = {u: i for i, u in enumerate(order)}
    idx = units.map(codes).to_numpy(dtype=np.int64)
    trains = [times[idx == i] for i in range(len(order))]
    rcol = None
    lower = {str(c).lower(): str(c) for c in df.columns}
    if region_col:
        rcol = _pick(df.columns, region_col, (), "region", path)
    else:
        rcol = next((lower[c] for c in REGION_COLUMNS if c in lower), None)
    regions = None
    if rcol is not None:
        regions = []
        for i in range(len(order)):
            vals = pd.unique(df[rcol][idx == i].astype(str))
            regions.append(vals[0] if len(vals) == 1 else "/".join(sorted(vals)))
    labels = [str(int(u)) if numeric else str(u) for u in order]
    rec = trains_to_recording(trains, labels, path, bin_ms=bin_ms, t_start=t_start, t_stop=t_stop,
                              regions=regions, dataset=dataset, subject=subject, fmt="table",
                              time_unit_s=scale)
    return [rec]


# -- NWB ------------------------------------------------------------------------------------
def _sniff_nwb(path: Path) -> bool:
    return h5_has(path, "units")


def _nwb_events(nwb: Any) -> pd.DataFrame:
    frames = []
    if nwb.trials is not None and len(nwb.trials) > 0:
        tr = nwb.trials
        names = set(tr.colnames)
        label_col = next((c for c in ("trial_type", "condition", "stimulus", "label", "type")
                          if c in names), None)
        labels = ([str(x) for x in tr[label_col][:]] if label_col else ["trial"] * len(tr))
        frames.append(pd.DataFrame({"onset": np.asarray(tr["start_time"][:], dtype=float),
                                    "offset": np.asarray(tr["stop_time"][:], dtype=float),
                                    "label": labels, "source": "trials"}))
    if nwb.epochs is not None and len(nwb.epochs) > 0:
        ep = nwb.epochs
        if "tags" in ep.colnames:
            labels = [",".join(map(str, t)) if len(t) else "epoch" for t in ep["tags"][:]]
        else:
            labels = ["epoch"] * len(ep)
        frames.append(pd.DataFrame({"onset": np.asarray(ep["start_time"][:], dtype=float),
                                    "offset": np.asarray(ep["stop_time"][:], dtype=float),
                                    "label": labels, "source": "epochs"}))
    if not frames:
        return empty_events()
    return pd.concat(frames, ignore_index=True)


def _unit_regions(units: Any, n: int) -> tuple[list[str], dict[str, list[Any]]]:
    cols = set(units.colnames)
    extra: dict[str, list[Any]] = {}
    regions = [""] * n
    own = next((c for c in REGION_COLUMNS if c in cols), None)
    if own is not None:
        regions = [str(x) for x in units[own][:]]
    if "electrodes" in cols:
        elec_rows = [units["electrodes"][i] for i in range(n)]  # DataFrame per unit
        ids, locs, groups = [], [], []
        for df in elec_rows:
            ids.append(",".join(str(i) for i in df.index))
            locs.append("/".join(sorted({str(x) for x in df["location"]}))
                        if "location" in df.columns else "")
            if "group_name" in df.columns:
                groups.append("/".join(sorted({str(x) for x in df["group_name"]})))
            else:
                groups.append("")
        extra["electrodes"] = ids
        if any(groups):
            extra["electrode_group"] = groups
        if own is None and any(locs):
            regions = locs
    return regions, extra


@register("spikes-nwb", [".nwb"], _sniff_nwb, "NWB units table (spike times per unit, pynwb)")
def read_nwb_units(path: Path, bin_ms: float | str = DEFAULT_BIN_MS,
                   t_start: float | str | None = None, t_stop: float | str | None = None,
                   dataset: str = "spikes", subject: str | None = None) -> list[Recording]:
    """NWB file: the units table's spike times, binned; unit ids as labels.

    Region per unit comes from a units column (region/location/brain_area) or from the
    ``location`` of the unit's electrodes; trials and epochs become events (``label`` from
    trial_type/condition/stimulus columns or epoch tags; ``source`` says which table).
    """
    from pynwb import NWBHDF5IO

    try:
        io = NWBHDF5IO(str(path), "r")
        nwb = io.read()
    except Exception as exc:  # pynwb/hdmf raise many types on malformed files
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InputError(path, f"cannot read NWB ({type(exc).__name__}): {msg}") from None
    try:
        units = nwb.units
        if units is None or len(units) == 0:
            raise InputError(path, "empty units table (no units)")
        if "spike_times" not in units.colnames:
            raise InputError(path, "the units table has no spike_times column")
        n = len(units)
        ids = [int(i) for i in units.id[:]]
        trains = [np.asarray(units["spike_times"][i], dtype=np.float64) for i in range(n)]
        regions, extra = _unit_regions(units, n)
        events = _nwb_events(nwb)
        subj = subject or (nwb.subject.subject_id if nwb.subject is not None else None)
        rec = trains_to_recording(trains, ids, path, bin_ms=bin_ms, t_start=t_start,
                                  t_stop=t_stop, regions=regions, extra_info=extra,
                                  events=events, dataset=dataset, subject=subj, fmt="nwb")
        rec = rec.replace(meta={**rec.meta, "session": str(nwb.identifier),
                                "session_description": str(nwb.session_description)})
    finally:
        io.close()
    return [rec]
