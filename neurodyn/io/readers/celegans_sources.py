"""Raw lab formats behind the Homogenized C. elegans collection (FORMATS.md "Raw source formats").

One reader per layout; every worm becomes a Recording through
:func:`neurodyn.io.readers.celegans_worm.worm_recording` (canonical names, labelled first,
unlabelled ROIs as ``roi<k>``, NaN masked). Traces are kept as the source gives them (no
imputation, no resampling: ``neurodyn preprocess`` does that, recorded in provenance).

=================  =============================================  ==============================
dataset            files                                          reader
=================  =============================================  ==============================
Kato2015,          ``WT_Stim.mat``, ``n2_let.mat``,               ``celegans-zimmer`` (MAT v5 or
Nichols2017,       ``WT_fasted.mat``, ``Neuron2019_Data_*.mat``,   v7.3/HDF5 read with h5py)
Skora2018,         ``Uzel_WT.mat``, per-worm ``wbData`` files
Kaplan2020,
Uzel2022
Yemini2021         ``Head_Activity_*.mat``, ``Tail_Activity_*``   ``celegans-yemini``
Flavell2023        per-worm WormWideWeb ``.json`` / ``.h5``       ``celegans-flavell2023``
Leifer2023         ``<i>_gcamp.txt`` + ``_labels.txt`` + ``_t``   ``celegans-leifer``
Lin2023            ``.mat`` with ``corrected_F``                  ``celegans-lin``
Venkatachalam2024  ``.zip`` holding one CSV                       ``celegans-venkatachalam``
Nejatbakhsh2020    ``.nwb`` (CalciumActivity module)              ``celegans-nwb``
=================  =============================================  ==============================
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import scipy.io

from neurodyn.errors import InputError
from neurodyn.io.formats import register
from neurodyn.io.readers._util import h5_has, is_hdf5, is_matlab_v5
from neurodyn.io.readers.celegans import flavell_dataset
from neurodyn.io.readers.celegans_worm import (
    attach_stimuli,
    first_label,
    interval_events,
    worm_recording,
)
from neurodyn.recording import Recording, empty_events

# --------------------------------------------------------------------------------------
# MATLAB helpers (v5 through scipy, v7.3 through h5py)
# --------------------------------------------------------------------------------------


def is_matlab_v73(path: Path) -> bool:
    """MATLAB v7.3 file: a 512-byte MATLAB text header then HDF5 (or bare HDF5)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(520)
    except OSError:
        return False
    return head[:6] == b"MATLAB" and head[512:520] == b"\x89HDF\r\n\x1a\n"


def _h5_value(obj: Any, f: h5py.File) -> Any:
    """Decode one MATLAB v7.3 object (group = struct, cell = refs, char = uint16) to Python."""
    if isinstance(obj, h5py.Group):
        return {k: _h5_value(obj[k], f) for k in obj if not k.startswith("#")}
    cls = obj.attrs.get("MATLAB_class", b"")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    if obj.attrs.get("MATLAB_empty", 0):
        return [] if cls == "cell" else np.zeros(0)
    data = obj[()]
    if cls == "cell" or data.dtype == h5py.ref_dtype:
        return [_h5_value(f[ref], f) for ref in np.ravel(data)]
    if cls == "char":
        codes = np.asarray(data).T  # MATLAB (rows, chars)
        rows = np.atleast_2d(codes)
        text = ["".join(chr(int(c)) for c in row if c) for row in rows]
        return text[0] if len(text) == 1 else text
    arr = np.asarray(data).T  # HDF5 stores MATLAB arrays transposed
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    return arr


def load_mat(path: Path, simplify: bool = True) -> dict[str, Any]:
    """Every variable of a MATLAB file as plain Python (dicts, lists, numpy arrays).

    ``simplify=False`` keeps v5 cell arrays as object arrays without squeezing, so that a
    cell of one cell keeps its nesting.
    """
    if is_matlab_v73(path) or is_hdf5(path):
        with h5py.File(path, "r", locking=False) as f:
            return {k: _h5_value(f[k], f) for k in f if not k.startswith("#")}
    if not is_matlab_v5(path):
        raise InputError(path, "not a MATLAB file")
    try:
        return scipy.io.loadmat(path, simplify_cells=simplify)
    except (ValueError, TypeError, OSError, NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        raise InputError(path, f"corrupt MATLAB file: {str(exc).splitlines()[0][:160]}") from None


def _mat_names(path: Path) -> dict[str, set[str] | None]:
    """Top-level variables -> their field names when cheap to know (v7.3), else None."""
    if is_matlab_v73(path):
        with h5py.File(path, "r", locking=False) as f:
            return {
                k: (set(f[k].keys()) if isinstance(f[k], h5py.Group) else None)
                for k in f if not k.startswith("#")
            }
    if is_matlab_v5(path):
        return {name: None for name, *_ in scipy.io.whosmat(path)}
    return {}


def _cells(x: Any) -> list[Any]:
    """A MATLAB cell array (list, object array, or a single item) as a flat list."""
    if isinstance(x, list):
        return x
    if isinstance(x, np.ndarray) and x.dtype == object:
        return x.ravel().tolist()
    return [x]


# --------------------------------------------------------------------------------------
# Zimmer lab (Kato2015, Nichols2017, Skora2018, Kaplan2020, Uzel2022)
# --------------------------------------------------------------------------------------

ZIMMER_DATASETS = {
    "WT_Stim": "Kato2015", "WT_NoStim": "Kato2015",
    "n2_let": "Nichols2017", "n2_prelet": "Nichols2017",
    "npr1_let": "Nichols2017", "npr1_prelet": "Nichols2017",
    "WT_fasted": "Skora2018", "WT_starved": "Skora2018",
    "Uzel_WT": "Uzel2022", "wbData": "Kato2015",
}
_ID_KEYS = ("IDs", "NeuronNames", "neuron_ID", "NeuronIds")
_TRACE_KEYS = ("traces", "deltaFOverF_bc", "traces_bleach_corrected", "deltaFOverF")
_TIME_KEYS = ("timeVectorSeconds", "tv", "time_vector")


def _zimmer_var(names: dict[str, set[str] | None], stem: str) -> str | None:
    for k, fields in names.items():
        known = k in ZIMMER_DATASETS or k.endswith("Neuron2019") or k == stem
        if fields is not None:
            ok = any(x in fields for x in _ID_KEYS) and any(x in fields for x in _TRACE_KEYS)
            if ok and (known or any(x in fields for x in _TIME_KEYS)):
                return k
        elif known:
            return k
    return None


def _sniff_zimmer(path: Path) -> bool:
    return _zimmer_var(_mat_names(path), path.stem) is not None


def _zimmer_dataset(var: str, stem: str) -> str:
    if var in ZIMMER_DATASETS and var != "wbData":
        return ZIMMER_DATASETS[var]
    if var.endswith("Neuron2019") or stem.startswith("Neuron2019"):
        return "Kaplan2020"
    if stem.startswith("TS") or var == "wbData":
        return "Kato2015"
    return "Zimmer"


def _pick(d: dict, keys: Sequence[str], path: Path, what: str) -> Any:
    for k in keys:
        if k in d:
            return d[k]
    raise InputError(path, f"struct has no {what} field (looked for {', '.join(keys)})")


def _switch_events(stim: Any, t_end: float) -> pd.DataFrame:
    """Zimmer ``stimulus`` struct (``switchtimes`` s, ``initialstate`` 0/1) -> on intervals."""
    if not isinstance(stim, dict) or "switchtimes" not in stim:
        return empty_events()
    sw = np.sort(np.asarray(stim["switchtimes"], dtype=np.float64).ravel())
    state = bool(np.asarray(stim.get("initialstate", 0)).ravel()[:1].sum()) if "initialstate" in stim else False
    edges = np.concatenate([[0.0], sw, [t_end]])
    on, off = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        if state and b > a:
            on.append(a)
            off.append(b)
        state = not state
    label = first_label(stim.get("identity")) or "stimulus"
    return interval_events(on, off, label)


@register("celegans-zimmer", [".mat"], _sniff_zimmer, "Zimmer-lab whole-brain MAT structs (Kato2015 ...)")
def read_zimmer(path: Path, dataset: str | None = None) -> list[Recording]:
    """Zimmer-lab struct: per-worm cells ``IDs``/``NeuronNames``, ``traces``/``deltaFOverF_bc``
    (time x ROI) and ``timeVectorSeconds``/``tv`` (s); MAT v5 or v7.3.

    A per-worm ``wbData`` file (single arrays instead of cells) is read as one worm. A
    ``stimulus`` field with ``switchtimes``/``initialstate`` becomes "on" intervals in events.
    Worms are named ``<file stem>-worm<k>``.
    """
    var = _zimmer_var(_mat_names(path), path.stem)
    if var is None:
        raise InputError(path, "no Zimmer-lab struct in this MAT file")
    s = load_mat(path)[var]
    if isinstance(s, (list, np.ndarray)) and all(isinstance(w, dict) for w in _cells(s)) and len(_cells(s)):
        # a struct array, one element per worm: turn into a struct of per-worm cells
        worms = _cells(s)
        s = {k: [w.get(k) for w in worms] for k in worms[0]}
    if not isinstance(s, dict):
        raise InputError(path, f"variable {var!r} is not a struct")
    ids = _pick(s, _ID_KEYS, path, "neuron ID")
    traces = _pick(s, _TRACE_KEYS, path, "trace")
    times = _pick(s, _TIME_KEYS, path, "time vector")
    single = isinstance(traces, np.ndarray) and traces.dtype != object and traces.ndim == 2
    ids, traces, times = ([ids], [traces], [times]) if single else (_cells(ids), _cells(traces), _cells(times))
    if not (len(ids) == len(traces) == len(times)):
        raise InputError(path, f"{len(ids)} ID lists, {len(traces)} trace arrays, {len(times)} time vectors")
    stims = _cells(s["stimulus"]) if "stimulus" in s else [None] * len(traces)
    if len(stims) == 1 and len(traces) > 1:
        stims = stims * len(traces)
    ds = dataset or _zimmer_dataset(var, path.stem)
    recs = []
    for k, (lab, x, t) in enumerate(zip(ids, traces, times)):
        x = np.asarray(x, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64).ravel()
        labels = _cells(lab)
        if x.ndim == 2 and x.shape[0] != t.size and x.shape[1] == t.size:
            x = x.T
        worm = f"{path.stem}-worm{k}" if not single else path.stem
        ev = _switch_events(stims[k] if k < len(stims) else None, float(t[-1]) if t.size else 0.0)
        recs.append(
            worm_recording(x, t, labels, dataset=ds, worm=worm, source_file=path, units="dF/F",
                           events=ev, meta={"struct": var})
        )
    return recs


# --------------------------------------------------------------------------------------
# Yemini2021 (NeuroPAL head/tail activity, several worms per file)
# --------------------------------------------------------------------------------------

YEMINI_KEYS = {"fps", "files", "neurons", "is_L", "norm_traces"}
#: Stimuli of the Yemini 2021 activity recordings, in delivery order.
YEMINI_STIMULI = ("2-butanone", "2,3-pentanedione", "NaCl")


def _sniff_yemini(path: Path) -> bool:
    return YEMINI_KEYS <= set(_mat_names(path))


def _yemini_events(m: dict, f: int, n_files: int) -> pd.DataFrame:
    """Stimulus intervals when the file has them.

    Looks for ``stim_times`` ((n, 2) on/off seconds, shared or one cell per worm) with
    ``stim_names`` (n names, shared or per worm). Files without them give no events.
    """
    if "stim_times" not in m:
        return empty_events()
    times = m["stim_times"]
    if isinstance(times, list) or (isinstance(times, np.ndarray) and times.dtype == object):
        cells = _cells(times)
        times = cells[f] if len(cells) == n_files else cells[0]
    times = np.asarray(times, dtype=np.float64).reshape(-1, 2)
    names = m.get("stim_names", "stimulus")
    names = _cells(names) if not isinstance(names, str) else [names]
    first = names[0] if names else None
    nested = isinstance(first, list) or (isinstance(first, np.ndarray) and first.dtype.kind == "O")
    if nested and len(names) == n_files:
        names = _cells(names[f])
    names = [first_label(x) or "stimulus" for x in names]
    if len(names) == 1:
        names = names * len(times)
    if len(names) != len(times):
        raise ValueError(f"{len(times)} stimulus intervals but {len(names)} stimulus names")
    return interval_events(times[:, 0], times[:, 1], names)


@register("celegans-yemini", [".mat"], _sniff_yemini, "Yemini2021 NeuroPAL activity MAT (worms per file)")
def read_yemini(
    path: Path, drop_first: int | str = 4, stimuli: str | Path | None = None
) -> list[Recording]:
    """``Head_Activity_*.mat`` / ``Tail_Activity_*.mat``: several worms per file.

    Layout: ``fps`` (Hz, about 4), ``files`` (one entry per worm), ``neurons`` (neuron class
    names), and per class ``is_L`` / ``norm_traces`` cells with one entry per worm, or two per
    worm (first then second member of a bilateral pair, ``is_L`` 1 = left, 0 = right, NaN = not
    bilateral). ``drop_first`` frames are dropped at the start (the collection drops 4: they
    read as zeros). Stimulus intervals (2-butanone, 2,3-pentanedione, NaCl) become events when
    the file has ``stim_times`` ((n, 2) on/off s) and ``stim_names``; a CSV given as
    ``stimuli`` (see :func:`~neurodyn.io.readers.celegans_worm.attach_stimuli`) adds more.
    """
    m = load_mat(path, simplify=False)
    fps = float(np.asarray(m["fps"], dtype=np.float64).ravel()[0])
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(path, f"fps is {fps}")
    files = [first_label(x) or f"worm{i}" for i, x in enumerate(_cells(m["files"]))]
    classes = [first_label(x) for x in _cells(m["neurons"])]
    is_l = _cells(m["is_L"])
    traces = _cells(m["norm_traces"])
    if not (len(classes) == len(is_l) == len(traces)):
        raise InputError(path, f"{len(classes)} neurons, {len(is_l)} is_L and {len(traces)} norm_traces")
    nf = len(files)
    skip = int(drop_first)
    recs = []
    for f, fname in enumerate(files):
        labels, cols = [], []
        for name, sides, acts in zip(classes, is_l, traces):
            sides, acts = _cells(sides), _cells(acts)
            if len(acts) == 2 * nf:
                members = [(sides[f], acts[f]), (sides[nf + f], acts[nf + f])]
            elif len(acts) == nf:
                members = [(sides[f], acts[f])]
            else:
                raise InputError(path, f"neuron {name}: {len(acts)} trace cells for {nf} worms")
            for side, act in members:
                a = np.asarray(act, dtype=np.float64).ravel()
                if a.size == 0 or not name:
                    continue
                flag = np.asarray(side, dtype=np.float64).ravel()
                if flag.size == 0 or np.isnan(flag[0]):
                    labels.append(name)
                else:
                    labels.append(name + ("L" if flag[0] == 1 else "R"))
                cols.append(a)
        if not cols:
            continue
        T = max(c.size for c in cols)
        x = np.full((T, len(cols)), np.nan)
        for j, c in enumerate(cols):
            x[: c.size, j] = c
        t = np.arange(T) / fps
        x, t = x[skip:], t[skip:]
        recs.append(
            worm_recording(
                x, t, labels, dataset="Yemini2021", worm=f"{path.stem}-worm{f}", source_file=path,
                units="a.u.", events=_yemini_events(m, f, nf),
                meta={"fps": fps, "source_name": fname, "dropped_first_frames": skip},
            )
        )
    return attach_stimuli(recs, stimuli)


# --------------------------------------------------------------------------------------
# Flavell2023 (Atanas & Kim, WormWideWeb JSON / H5)
# --------------------------------------------------------------------------------------


def _json_has_keys(path: Path, keys: Sequence[bytes], chunk: int = 1 << 20) -> bool:
    with open(path, "rb") as fh:
        first = fh.read(1).lstrip()
        if first not in (b"{", b" ", b"\n"):
            return False
        found = set()
        tail = b""
        while len(found) < len(keys):
            buf = fh.read(chunk)
            if not buf:
                break
            window = tail + buf
            found |= {k for k in keys if k in window}
            tail = window[-64:]
    return len(found) == len(keys)


def _sniff_flavell_json(path: Path) -> bool:
    return _json_has_keys(path, (b'"trace_array"', b'"timestamp_confocal"'))


def _sniff_flavell_h5(path: Path) -> bool:
    return h5_has(path, "trace_array", "timestamp_confocal")


def _h5_tree(obj: Any) -> Any:
    if isinstance(obj, h5py.Group):
        return {k: _h5_tree(obj[k]) for k in obj}
    v = obj[()]
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO":
        return [x.decode() if isinstance(x, bytes) else x for x in v.ravel()]
    return v


def _flavell_labels(labeled: Any, n: int) -> list[str | None]:
    """``labeled``: {"<1-based ROI>": {"label": ...}} (or a per-ROI list) -> labels (n,)."""
    out: list[str | None] = [None] * n
    if isinstance(labeled, dict):
        for k, v in labeled.items():
            i = int(k) - 1
            if 0 <= i < n:
                out[i] = first_label(v.get("label") if isinstance(v, dict) else v)
    elif isinstance(labeled, (list, np.ndarray)):
        for i, v in enumerate(list(labeled)[:n]):
            out[i] = first_label(v)
    return out


def _flavell_events(d: dict, t: np.ndarray) -> pd.DataFrame:
    frames: list[tuple[float, float, str]] = []
    T = t.size

    def at(k: float) -> float:
        return float(t[int(np.clip(int(k) - 1, 0, T - 1))])

    rev = d.get("reversal_events")
    if rev is not None:
        r = np.asarray(rev, dtype=np.float64)
        r = r.reshape(-1, 2) if r.ndim != 2 or r.shape[-1] == 2 else r.T
        frames += [(at(a), at(b), "reversal") for a, b in r]
    ev = d.get("events")
    if isinstance(ev, dict):
        for name, val in ev.items():
            v = np.asarray(val, dtype=np.float64).ravel()
            frames += [(at(k), at(k), str(name)) for k in v]
    if not frames:
        return empty_events()
    on, off, lab = zip(*frames)
    return interval_events(on, off, list(lab))


def _read_flavell2023(path: Path, d: dict, trace: str,
                      dataset: str | None = None) -> list[Recording]:
    key = {"calcium": "trace_array", "original": "trace_original"}.get(trace)
    if key is None:
        raise InputError("trace", f"unknown trace {trace!r}; one of calcium, original")
    if key not in d:
        raise InputError(path, f"no {key!r} in this file")
    x = np.asarray(d[key], dtype=np.float64)  # (ROI, time)
    t = np.asarray(d["timestamp_confocal"], dtype=np.float64).ravel()
    if x.ndim != 2:
        raise InputError(path, f"{key} has shape {x.shape}, expected (neurons, time)")
    if x.shape[1] != t.size and x.shape[0] == t.size:
        x = x.T
    t = t[: x.shape[1]]
    labels = _flavell_labels(d.get("labeled", {}), x.shape[0])
    units = "z" if key == "trace_array" else "a.u."
    ev = _flavell_events(d, t - t[0]) if t.size else empty_events()
    uid = d.get("uid")
    name, name_from = flavell_dataset(d, str(uid) if isinstance(uid, str) else path.stem, dataset,
                                      default="Flavell2023")
    return [
        worm_recording(x.T, t, labels, dataset=name, worm=path.stem, source_file=path,
                       units=units, events=ev, meta={"trace": trace, "dataset_from": name_from})
    ]


@register("celegans-flavell2023", [".json"], _sniff_flavell_json, "Flavell2023 WormWideWeb per-worm JSON")
def read_flavell2023_json(path: Path, trace: str = "calcium",
                          dataset: str | None = None) -> list[Recording]:
    """Atanas & Kim 2023 per-worm JSON: ``trace_array`` (neurons x time, z-scored),
    ``trace_original``, ``timestamp_confocal`` (s), ``labeled`` {ROI: {label}} with ``?`` for
    L/R or D/V ambiguity (resolved to the nearest unused canonical name), ``reversal_events``.

    ``trace="original"`` reads ``trace_original``. The dataset is ``dataset``, else named by
    the file (``dataset``/``doi`` keys, a Dag2023 ``uid``), else Flavell2023.
    """
    try:
        d = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"invalid JSON: {exc}") from None
    if not isinstance(d, dict):
        raise InputError(path, "expected a JSON object")
    return _read_flavell2023(path, d, trace, dataset)


@register("celegans-flavell2023-h5", [".h5", ".hdf5"], _sniff_flavell_h5, "Flavell2023 WormWideWeb per-worm H5")
def read_flavell2023_h5(path: Path, trace: str = "calcium",
                        dataset: str | None = None) -> list[Recording]:
    """The HDF5 twin of :func:`read_flavell2023_json` (same keys as datasets/groups)."""
    with h5py.File(path, "r", locking=False) as f:
        d = {**dict(f.attrs), **{k: _h5_tree(f[k]) for k in f}}
    return _read_flavell2023(path, d, trace, dataset)


# --------------------------------------------------------------------------------------
# Leifer2023 (Randi et al.): <i>_gcamp.txt, <i>_labels.txt, <i>_t.txt
# --------------------------------------------------------------------------------------

_LEIFER = re.compile(r"^(\d+)_gcamp\.txt$")


def _leifer_triplets(path: Path) -> Iterator[tuple[str, Path, Path, Path]]:
    files = [path] if path.is_file() else sorted(path.iterdir())
    found = []
    for p in files:
        m = _LEIFER.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    for i, p in sorted(found):
        yield str(i), p, p.with_name(f"{i}_labels.txt"), p.with_name(f"{i}_t.txt")


def _sniff_leifer(path: Path) -> bool:
    trip = list(_leifer_triplets(path))
    return bool(trip) and all(lab.exists() and t.exists() for _, _, lab, t in trip)


@register("celegans-leifer", ["_gcamp.txt", "/"], _sniff_leifer, "Leifer2023 text triplets (<i>_gcamp/_labels/_t.txt)")
def read_leifer(path: Path) -> list[Recording]:
    """Randi et al. 2023 text files per worm ``i``: ``i_gcamp.txt`` (time x ROI, spaces,
    ``nan`` for missing), ``i_labels.txt`` (one label per line, empty = unlabelled, class names
    like "AVA" take a free side), ``i_t.txt`` (s). Give one ``*_gcamp.txt`` or the folder.

    All-NaN ROIs are dropped; other NaN samples are masked (not imputed).
    """
    recs = []
    for i, gfile, lfile, tfile in _leifer_triplets(path):
        try:
            x = np.loadtxt(gfile, ndmin=2)
            t = np.loadtxt(tfile, ndmin=1)
        except ValueError as exc:
            raise InputError(gfile, f"not a numeric table: {str(exc).splitlines()[0][:120]}") from None
        labels = [s.strip() for s in lfile.read_text().splitlines()]
        labels = (labels + [""] * x.shape[1])[: x.shape[1]]  # some files list extra labels
        labels = [s if s and s.lower() != "merge" else None for s in labels]
        recs.append(
            worm_recording(x, t, labels, dataset="Leifer2023", worm=f"worm{i}", source_file=gfile,
                           units="a.u.", bilateral_suffix=True)
        )
    if not recs:
        raise InputError(path, "no <i>_gcamp.txt files")
    return recs


# --------------------------------------------------------------------------------------
# Lin2023: .mat with corrected_F
# --------------------------------------------------------------------------------------

LIN_KEYS = {"corrected_F", "proofread_neurons", "use_flag", "times"}


def _sniff_lin(path: Path) -> bool:
    return LIN_KEYS <= set(_mat_names(path))


@register("celegans-lin", [".mat"], _sniff_lin, "Lin2023 olfactory imaging MAT (corrected_F)")
def read_lin(path: Path) -> list[Recording]:
    """Lin et al. 2023 ``.mat``: ``corrected_F`` (ROI x time), ``proofread_neurons`` names,
    ``use_flag`` (>0 = keep), ``times`` (cell; its first entry holds the frame times, last row
    when 2-D), ``F_0`` (baseline, fills the NaN first frame as the collection does).
    """
    m = load_mat(path)
    use = np.asarray(m["use_flag"], dtype=np.float64).ravel() > 0
    names = [first_label(x) for x in _cells(m["proofread_neurons"])]
    F = np.asarray(m["corrected_F"], dtype=np.float64)
    if F.ndim != 2 or F.shape[0] != use.size or len(names) != use.size:
        raise InputError(path, f"corrected_F {F.shape}, {use.size} use flags, {len(names)} names disagree")
    t = np.asarray(_cells(m["times"])[0], dtype=np.float64)
    t = t[-1] if t.ndim == 2 else t.ravel()
    x = F[use].T.copy()
    if "F_0" in m and np.isnan(x[0]).any():
        f0 = np.asarray(m["F_0"], dtype=np.float64)
        f0 = f0[:, 0] if f0.ndim == 2 else f0
        x[0] = np.where(np.isnan(x[0]), f0[use], x[0])
    labels = [n for n, ok in zip(names, use) if ok]
    return [worm_recording(x, t[: x.shape[0]], labels, dataset="Lin2023", worm=path.stem,
                           source_file=path, units="a.u.")]


# --------------------------------------------------------------------------------------
# Venkatachalam2024: zip holding one CSV (rows = neurons, numeric columns = frames)
# --------------------------------------------------------------------------------------


def _csv_in_zip(path: Path) -> str | None:
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.lower().endswith(".csv") and not n.startswith("__MACOSX")]
    return names[0] if len(names) == 1 else None


def _sniff_venkatachalam(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    name = _csv_in_zip(path)
    if name is None:
        return False
    with zipfile.ZipFile(path) as z, z.open(name) as fh:
        header = fh.readline().decode(errors="replace").lower().split(",")
    return "neuron" in [h.strip().strip('"') for h in header]


@register("celegans-venkatachalam", [".zip"], _sniff_venkatachalam, "Venkatachalam2024 zipped CSV")
def read_venkatachalam(path: Path, frame_dt: float | str = 0.375) -> list[Recording]:
    """Venkatachalam-lab chemosensory recordings: a zip holding one CSV, one row per neuron,
    a ``neuron`` column, other metadata columns, and one column per frame named by its frame
    number. Time = frame x ``frame_dt`` s (0.375 s in the collection). Frames that are NaN for
    every neuron (the blank block) are dropped.
    """
    name = _csv_in_zip(path)
    if name is None:
        raise InputError(path, "zip must hold exactly one CSV")
    with zipfile.ZipFile(path) as z, z.open(name) as fh:
        df = pd.read_csv(fh)
    frame_cols, frames = [], []
    for c in df.columns:
        try:
            frames.append(float(c))
            frame_cols.append(c)
        except ValueError:
            continue
    if not frame_cols:
        raise InputError(path, "no frame columns (numeric column names)")
    x = df[frame_cols].to_numpy(dtype=np.float64).T  # (frames, neurons)
    keep = np.isfinite(x).any(axis=1)
    t = np.asarray(frames)[keep] * float(frame_dt)
    x = x[keep]
    labels = [None if pd.isna(v) else str(v) for v in df["neuron"]]
    return [worm_recording(x, t, labels, dataset="Venkatachalam2024", worm=Path(name).stem,
                           source_file=path, units="a.u.")]


# --------------------------------------------------------------------------------------
# Nejatbakhsh2020: NWB (CalciumActivity processing module), read with h5py
# --------------------------------------------------------------------------------------

NWB_TRACES = "processing/CalciumActivity/SignalRawFluor/SignalCalciumImResponseSeries"
NWB_IDS = "processing/CalciumActivity/NeuronIDs/labels"


def _sniff_nwb(path: Path) -> bool:
    return h5_has(path, NWB_TRACES + "/data", NWB_IDS)


@register("celegans-nwb", [".nwb"], _sniff_nwb, "Nejatbakhsh2020 NWB (CalciumActivity, NeuroPAL IDs)")
def read_nejatbakhsh_nwb(path: Path, fs: float | str = 4.0) -> list[Recording]:
    """NWB with ``processing/CalciumActivity``: ``SignalRawFluor/SignalCalciumImResponseSeries``
    (time x ROI) and ``NeuronIDs/labels`` (one per ROI, empty = unlabelled). Time comes from the
    series' ``timestamps`` or ``starting_time``/rate when present, else ``fs`` (4 Hz, as the
    collection assumes).
    """
    with h5py.File(path, "r", locking=False) as f:
        g = f[NWB_TRACES]
        x = np.asarray(g["data"][()], dtype=np.float64)
        raw = f[NWB_IDS][()]
        if "timestamps" in g:
            t = np.asarray(g["timestamps"][()], dtype=np.float64)
        elif "starting_time" in g:
            rate = float(g["starting_time"].attrs.get("rate", fs))
            t = float(g["starting_time"][()]) + np.arange(x.shape[0]) / rate
        else:
            t = np.arange(x.shape[0]) / float(fs)
    labels = [v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(raw)]
    return [worm_recording(x, t, labels, dataset="Nejatbakhsh2020", worm=path.stem,
                           source_file=path, units="a.u.")]
