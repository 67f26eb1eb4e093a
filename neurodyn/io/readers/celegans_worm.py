"""Build one C. elegans worm :class:`Recording` from per-ROI traces and source labels.

Shared by the raw-source readers of the Homogenized collection (``celegans_sources``): every
source ends as traces (time x ROI), time stamps and one label per ROI; this module turns them
into the collection's conventions: canonical names (``?`` ambiguities resolved, duplicates
dropped to unlabelled), labelled neurons first in slot (alphabetical) order, unlabelled ROIs
after them as ``roi<k>`` (k = source column), NaN samples masked, all-NaN ROIs dropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from neurodyn.errors import InputError
from neurodyn.names import CANONICAL_SLOT, assign_labels
from neurodyn.recording import Recording, empty_events


def first_label(x: object) -> str | None:
    """The first non-empty string inside a MATLAB-ish label cell (str, list, object array).

    Numbers, empty arrays and ``None`` give ``None`` (an unlabelled ROI).
    """
    if x is None:
        return None
    if isinstance(x, bytes):
        x = x.decode(errors="replace")
    if isinstance(x, str):
        s = x.strip()
        return s or None
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "US":
            x = x.ravel().tolist()
        elif x.dtype == object:
            x = x.ravel().tolist()
        else:
            return None
    if isinstance(x, (list, tuple)):
        for item in x:
            s = first_label(item)
            if s is not None:
                return s
    return None


def worm_recording(
    traces: np.ndarray,
    time: np.ndarray,
    raw_labels: Sequence[object],
    *,
    dataset: str,
    worm: str,
    source_file: str | os.PathLike,
    units: str = "a.u.",
    events: pd.DataFrame | None = None,
    bilateral_suffix: bool = False,
    meta: dict | None = None,
) -> Recording:
    """One worm as a Recording in the collection's neuron order.

    Parameters
    ----------
    traces : array (T, R)
        Activity of R ROIs; NaN marks unobserved samples.
    time : array (T,)
        Seconds, strictly increasing; shifted to start at 0 (origin kept in ``meta``).
    raw_labels : sequence (R,)
        Source label per ROI (str, candidate list, or None/number for unlabelled).
    dataset, worm : str
        Recording id becomes ``"<dataset>/<worm>"``; subject is ``worm``.
    bilateral_suffix : bool
        Let class names ("AVA") take a free L/R side (Leifer2023 convention).
    """
    src = str(source_file)
    x = np.asarray(traces, dtype=np.float64)
    t = np.asarray(time, dtype=np.float64).ravel()
    if x.ndim != 2:
        raise InputError(src, f"traces must be 2-D (time x ROI), got shape {x.shape}")
    if x.shape[0] != t.size:
        raise InputError(src, f"{worm}: traces have {x.shape[0]} samples but {t.size} time stamps")
    labels = [first_label(v) for v in raw_labels]
    if len(labels) != x.shape[1]:
        raise InputError(src, f"{worm}: {len(labels)} labels for {x.shape[1]} traces")
    finite = np.isfinite(x)
    keep = np.flatnonzero(finite.any(axis=0))
    if keep.size == 0:
        raise InputError(src, f"{worm}: every trace is NaN or empty")
    names = assign_labels(labels, bilateral_suffix=bilateral_suffix)
    lab_cols = sorted((c for c in keep if names[c] is not None), key=lambda c: CANONICAL_SLOT[names[c]])
    unl_cols = [c for c in keep if names[c] is None]
    order = lab_cols + unl_cols
    out_names = [names[c] for c in lab_cols] + [f"roi{c}" for c in unl_cols]
    sub = x[:, order]
    obs = finite[:, order]
    info = pd.DataFrame(
        {
            "is_labeled": [True] * len(lab_cols) + [False] * len(unl_cols),
            "ambiguous": ["?" in (labels[c] or "") for c in order],
            "source_column": np.asarray(order, dtype=np.int64),
            "source_label": [labels[c] or "" for c in order],
        }
    )
    t0 = float(t[0]) if t.size else 0.0
    m = dict(meta or {})
    m.update(
        {
            "time_origin_s": t0,
            "n_rois": int(x.shape[1]),
            "n_dropped_all_nan": int(x.shape[1] - keep.size),
            "n_labeled": len(lab_cols),
        }
    )
    return Recording(
        traces=sub.astype(np.float32),
        labels=out_names,
        modality="calcium",
        time=t - t0,
        units=units,
        id=f"{dataset}/{worm}",
        subject=worm,
        dataset=dataset,
        source_file=src,
        events=empty_events() if events is None else events,
        mask=None if obs.all() else obs,
        channel_info=info,
        meta=m,
    )


def interval_events(
    onsets: Sequence[float], offsets: Sequence[float], labels: Sequence[str] | str
) -> pd.DataFrame:
    """An events table (onset, offset in s, label) from parallel sequences."""
    on = np.asarray(onsets, dtype=np.float64).ravel()
    off = np.asarray(offsets, dtype=np.float64).ravel()
    lab = [labels] * on.size if isinstance(labels, str) else [str(v) for v in labels]
    if not (on.size == off.size == len(lab)):
        raise ValueError("event onsets, offsets and labels differ in length")
    if on.size == 0:
        return empty_events()
    return pd.DataFrame({"onset": on, "offset": off, "label": lab})


def attach_stimuli(recs: list[Recording], path: str | os.PathLike | None) -> list[Recording]:
    """Add stimulus intervals from a CSV to the matching recordings' events.

    For sources whose files carry no stimulus timing (the published parquet and pickle), a
    table of known schedules can be attached at read time (reader option ``stimuli=FILE``).

    Parameters
    ----------
    recs : list of Recording
    path : path to a CSV, or None (no change)
        Columns ``onset``, ``offset`` (s, on the recording's clock) and ``label``; optional
        ``dataset`` and ``worm`` (bare worm name or full id) restrict a row to those
        recordings; empty cells match every recording.
    """
    if not path:
        return recs
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(path, f"cannot read stimulus table: {str(exc).splitlines()[0][:120]}") from None
    missing = [c for c in ("onset", "offset", "label") if c not in table.columns]
    if missing:
        raise InputError(path, f"stimulus table lacks columns {missing}")
    on = pd.to_numeric(table["onset"], errors="coerce")
    off = pd.to_numeric(table["offset"], errors="coerce")
    if on.isna().any() or off.isna().any() or (off < on).any():
        raise InputError(path, "stimulus onsets/offsets must be numbers with offset >= onset")
    out = []
    for r in recs:
        keep = np.ones(len(table), dtype=bool)
        if "dataset" in table:
            ds = table["dataset"].fillna("").astype(str)
            keep &= (ds == "") | (ds == r.dataset)
        if "worm" in table:
            w = table["worm"].fillna("").astype(str)
            keep &= (w == "") | (w == r.subject) | (w == r.id)
        if not keep.any():
            out.append(r)
            continue
        add = pd.DataFrame(
            {"onset": on[keep].to_numpy(float), "offset": off[keep].to_numpy(float),
             "label": table["label"][keep].astype(str).to_numpy()}
        )
        events = add if r.events.empty else pd.concat([r.events, add], ignore_index=True)
        out.append(r.replace(events=events.sort_values("onset", kind="stable")))
    return out
