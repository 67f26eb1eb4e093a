"""C. elegans whole-brain calcium imaging: the Flavell-lab per-worm HDF5 files (ANTSUN output).

Each worm is one :class:`~neurodyn.recording.Recording` with neurons named by canonical
NeuroPAL class. Labelled neurons come first in alphabetical order (as the Homogenized
collection orders its slots); unlabelled ROIs follow as ``"roi<k>"`` with
``channel_info.is_labeled == False`` so stages can keep them apart.

The layout is shared by several Flavell-lab studies, so the dataset is not assumed: it comes
from the ``dataset`` option, else from the file (an HDF5 attribute ``dataset`` /
``source_dataset``, or the DOI of a known paper), else from the worm id when it is one of the
Dag2023 worms (:data:`DAG2023_WORMS`), else the recording is ``flavell/<file stem>``.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from neurodyn.errors import InputError
from neurodyn.io.formats import register
from neurodyn.io.readers._util import h5_has
from neurodyn.io.readers.celegans_collection import as_bool
from neurodyn.names import canonical_neuron_name, resolve_ambiguous
from neurodyn.recording import Recording

TRACE_KEY = "gcamp/traces_array_F_F20"
TIME_KEY = "timing/timestamp_confocal"
LABEL_SHEET = "labels v3 (1st audit)"
#: worms of Dag et al. 2023 (Cell 186:2574), as named in the data folders of
#: github.com/flavell-lab/NSM_5HTR_analysis (swf702_with_id, swf415_no_id); not exhaustive
DAG2023_WORMS = frozenset({"2022-07-26-31", "2022-07-26-38", "2022-07-27-38", "2022-07-27-45",
                           "2022-01-16-01"})
#: DOIs of the papers whose data use this layout -> dataset name
PAPER_DOIS = {"10.1016/j.cell.2023.04.023": "Dag2023", "10.1016/j.cell.2023.07.035": "Flavell2023"}


def _label_file(h5path: Path) -> Path | None:
    stem = h5path.name.removesuffix("-data.h5")
    for cand in (
        h5path.with_name(f"{stem}_neuron_id.xlsx"),
        h5path.with_name(f"{stem} Neuron ID.xlsx"),
        h5path.with_name("NeuroPAL_labels_dict.json"),
    ):
        if cand.exists():
            return cand
    return None


def _labels_from_xlsx(path: Path, roi_match: np.ndarray, n_cols: int) -> dict[int, tuple[str, float]]:
    try:
        sheets = pd.read_excel(path, sheet_name=None)
    except Exception as exc:  # openpyxl raises many types on corrupt zips
        raise InputError(path, f"not a readable label spreadsheet: {exc}") from None
    sheet = sheets.get(LABEL_SHEET)
    if sheet is None:
        sheet = next((v for k, v in sheets.items() if k.lower().startswith("labels")), None)
    if sheet is None or not {"Neuron Class", "ROI ID"} <= set(sheet.columns):
        raise InputError(path, "no label sheet with 'Neuron Class' and 'ROI ID' columns")
    out: dict[int, tuple[str, float]] = {}
    for _, row in sheet.iterrows():
        name, roi = row["Neuron Class"], row["ROI ID"]
        if pd.isna(name) or pd.isna(roi) or not (1 <= int(roi) <= len(roi_match)):
            continue
        col = int(roi_match[int(roi) - 1]) - 1
        if col < 0 or col >= n_cols:
            continue
        conf = float(row.get("Confidence", np.nan))
        conf = -np.inf if np.isnan(conf) else conf
        name = canonical_neuron_name(name)
        if col not in out or conf > out[col][1]:
            out[col] = (name, conf)
    return out


def _labels_from_json(path: Path, worm: str) -> dict[int, tuple[str, float]]:
    table = json.loads(path.read_text())
    entries = table.get(worm, {})
    # Layout: {worm: {"<column 1-based>": {"label": "AVAL", "confidence": 4}, ...}}, or the
    # collection's NeuroPAL_labels_dict.json: {worm: [that index map, extra]}
    if isinstance(entries, list):
        entries = entries[0] if entries and isinstance(entries[0], dict) else {}
    out = {}
    for k, v in entries.items():
        name = v.get("label") if isinstance(v, dict) else v
        if name:
            out[int(k) - 1] = (canonical_neuron_name(name), float(v.get("confidence", 0)))
    return out


def _resolve_best(
    best: dict[str, tuple[int, float]], written: dict[str, str]
) -> dict[str, tuple[int, float]]:
    """Replace ``?`` names by the nearest canonical name not stated by another column.

    ``written`` receives resolved name -> label as written.
    """
    out = {k: v for k, v in best.items() if "?" not in k}
    used = set(out)
    for name, (col, conf) in sorted(((k, v) for k, v in best.items() if "?" in k), key=lambda kv: kv[1][0]):
        res = resolve_ambiguous(name.split("#")[0], used)
        if res is not None:
            out[res] = (col, conf)
            used.add(res)
            written[res] = name.split("#")[0]
    return out


def _sniff(path: Path) -> bool:
    return h5_has(path, TRACE_KEY, TIME_KEY)


def flavell_dataset(attrs: dict, worm: str, option: str | None = None,
                    default: str = "flavell") -> tuple[str, str]:
    """Dataset name of a Flavell-lab worm file and where it came from (see module docstring).

    ``attrs`` are the file's own metadata (HDF5 attributes, JSON keys); ``default`` names a
    worm that nothing identifies.
    """
    if option:
        return option, "option"
    for key in ("dataset", "source_dataset"):
        val = attrs.get(key)
        if isinstance(val, bytes):
            val = val.decode(errors="replace")
        if isinstance(val, str) and val.strip():
            return val.strip(), f"file attribute {key}"
    for key in ("doi", "paper", "citation"):
        text = str(attrs.get(key, "")).lower()
        for doi, name in PAPER_DOIS.items():
            if doi in text:
                return name, f"file attribute {key}"
    if worm in DAG2023_WORMS:
        return "Dag2023", "known Dag2023 worm"
    return default, "unknown (not a known Dag2023 worm)"


@register("celegans-flavell", [".h5"], _sniff,
          "Flavell-lab C. elegans per-worm HDF5 (ANTSUN: Dag2023 and others)")
def read_flavell_h5(
    path: Path, labels: str | Path | None = None, resolve_ambiguous: bool | str = False,
    dataset: str | None = None,
) -> list[Recording]:
    """Read one worm: F/F20 traces, confocal time stamps, NeuroPAL labels, reversal events.

    Parameters
    ----------
    path : Path
        ``<date>-data.h5`` with ``gcamp/traces_array_F_F20`` (time x ROI) and
        ``timing/timestamp_confocal`` (s).
    labels : path, optional
        The NeuroPAL label spreadsheet (sheet ``labels v3 (1st audit)``) or
        ``NeuroPAL_labels_dict.json``; found beside the HDF5 file when omitted.
    resolve_ambiguous : bool
        False (default): L/R- or D/V-ambiguous labels stay as written (``"SMB??"``, a second
        one ``"SMB??#2"``) with ``channel_info.ambiguous``. True: each becomes the nearest
        unused canonical name, as the Homogenized collection does
        (:func:`neurodyn.names.resolve_ambiguous`; unresolvable ones become unlabelled ROIs).
    dataset : str, optional
        Dataset name (id prefix); by default from the file (see the module docstring).
    """
    with h5py.File(path, "r", locking=False) as f:
        attrs = dict(f.attrs)
        traces = np.asarray(f[TRACE_KEY][()], dtype=np.float64)
        t = np.asarray(f[TIME_KEY][()], dtype=np.float64)
        roi_match = f["neuropal_registration/roi_match"][()] if "neuropal_registration/roi_match" in f else None
        rev = f["behavior/reversal_events"][()] if "behavior/reversal_events" in f else None
    if traces.ndim != 2 or traces.shape[0] != t.shape[0]:
        raise InputError(path, f"traces {traces.shape} do not match {t.shape[0]} time stamps")
    T, n = traces.shape
    finite = np.isfinite(traces)
    if not finite.any():
        raise InputError(path, f"every trace in {TRACE_KEY} is NaN or infinite")
    worm = path.name.removesuffix("-data.h5")
    worm = worm if worm != path.name else path.stem
    source, source_from = flavell_dataset(attrs, worm, dataset)
    label_path = Path(labels) if labels else _label_file(path)
    named: dict[int, tuple[str, float]] = {}
    if label_path is not None:
        if label_path.suffix == ".json":
            named = _labels_from_json(label_path, worm)
        elif roi_match is not None:
            named = _labels_from_xlsx(label_path, roi_match, n)
    # one column per canonical name: keep the most confident claim
    # ambiguous names ("SMB??") may be claimed by several columns: number them
    best: dict[str, tuple[int, float]] = {}
    for col, (name, conf) in sorted(named.items()):
        if "?" in name and name in best:
            k = 2
            while f"{name}#{k}" in best:
                k += 1
            best[f"{name}#{k}"] = (col, conf)
        elif name not in best or conf > best[name][1]:
            best[name] = (col, conf)
    written: dict[str, str] = {}
    if as_bool(resolve_ambiguous):
        best = _resolve_best(best, written)
    labelled = sorted(best, key=str)
    cols = [best[x][0] for x in labelled]
    rest = [c for c in range(n) if c not in set(cols)]
    # ROIs never observed are dropped; other NaN samples are masked
    empty = set(np.flatnonzero(~finite.any(axis=0)).tolist())
    keep = [i for i, c in enumerate(cols) if c not in empty]
    labelled, cols = [labelled[i] for i in keep], [cols[i] for i in keep]
    rest = [c for c in rest if c not in empty]
    order = cols + rest
    names = labelled + [f"roi{c}" for c in rest]
    t0 = float(t[0])
    events = pd.DataFrame(columns=["onset", "offset", "label"])
    if rev is not None and rev.size:
        start = np.clip(rev[0].astype(int) - 1, 0, T - 1)
        stop = np.clip(rev[1].astype(int) - 1, 0, T - 1)
        events = pd.DataFrame({"onset": t[start] - t0, "offset": t[stop] - t0, "label": "reversal"})
    info = pd.DataFrame(
        {
            "is_labeled": [True] * len(labelled) + [False] * len(rest),
            "ambiguous": ["?" in written.get(x, x) for x in labelled] + [False] * len(rest),
            "source_column": order,
        }
    )
    return [
        Recording(
            traces=traces[:, order],
            mask=None if finite.all() else finite[:, order],
            labels=names,
            modality="calcium",
            time=t - t0,
            units="F/F20",
            id=f"{source}/{worm}",
            subject=worm,
            dataset=source,
            source_file=str(path),
            events=events,
            channel_info=info,
            meta={
                "time_origin_s": t0,
                "label_file": str(label_path) if label_path else "",
                "n_dropped_all_nan": len(empty),
                "dataset_from": source_from,
            },
        )
    ]
