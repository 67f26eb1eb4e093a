"""Spike-sorter output in the phy layout (Kilosort 1-4, spikeinterface's ``export_to_phy``).

A phy folder holds ``spike_times.npy`` (S,) sample indices, ``spike_clusters.npy`` (S,) cluster
ids (``spike_templates.npy`` before any curation), ``params.py`` with ``sample_rate``, and the
cluster tables ``cluster_group.tsv`` (curated ``group``), ``cluster_KSLabel.tsv`` (Kilosort's
``KSLabel``) and ``cluster_info.tsv`` (phy's summary: ``ch``, ``depth``, ``fr``, ``amp``, ...).
The layout is read with numpy and pandas: spikeinterface's ``read_phy`` would add about 10 MB of
dependencies (zarr < 3, numcodecs, probeinterface) for five small files. ``params.py`` is parsed
with :func:`ast.literal_eval`, assignment by assignment, and never executed.

The folder becomes one spikes :class:`~neurodyn.recording.Recording` binned like every spike
reader (:func:`neurodyn.io.readers.spikes.trains_to_recording`): unit labels are the cluster ids,
``channel_info`` gains ``group`` (the label used: the curated group, else the KSLabel) and, from
``cluster_info.tsv``, ``channel``, ``depth`` (um), ``firing_rate`` (Hz over the whole sorting),
``amplitude`` and ``shank`` where present.
"""

from __future__ import annotations

import ast
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodyn.errors import InputError
from neurodyn.io.formats import register
from neurodyn.io.readers.spikes import DEFAULT_BIN_MS, REGION_COLUMNS, trains_to_recording
from neurodyn.params import ParamError
from neurodyn.recording import Recording

log = logging.getLogger(__name__)

TIMES, CLUSTERS, TEMPLATES, PARAMS = (
    "spike_times.npy", "spike_clusters.npy", "spike_templates.npy", "params.py")
UNLABELLED = "unsorted"
#: cluster_info.tsv column -> channel_info column
INFO_COLUMNS = {"ch": "channel", "depth": "depth", "fr": "firing_rate", "amp": "amplitude",
                "sh": "shank"}
MAX_PARAMS_BYTES = 1 << 20


def phy_folder(path: Path) -> Path:
    """The folder of a phy path (the folder itself, or the folder of one of its files)."""
    return path if path.is_dir() else path.parent


def _sniff(path: Path) -> bool:
    d = phy_folder(path)
    if (d / TIMES).is_file() and (d / CLUSTERS).is_file():
        return True
    try:
        return "sample_rate" in parse_params(d / PARAMS)
    except (InputError, OSError):
        return False


def _probe(path: Path) -> str | None:
    """A folder that is not a phy folder but holds one, or half of one."""
    if not path.is_dir():
        return None
    if (path / TIMES).is_file():
        return (f"{TIMES} without {CLUSTERS} or {PARAMS}: pass --format phy "
                f"(clusters from {TEMPLATES} when present, --reader-options fs=HZ)")
    subs = sorted(p.parent.name for p in path.glob(f"*/{TIMES}"))
    if subs:
        return f"holds phy output in {', '.join(subs[:3])}: pass that folder instead"
    return None


def parse_params(path: Path) -> dict[str, Any]:
    """Literal assignments of a phy ``params.py`` (``sample_rate = 30000.``), never executed.

    Assignments whose value is not a Python literal (``dat_path = os.path.join(...)``) are
    skipped; anything that is not Python is an :class:`InputError`.
    """
    if path.stat().st_size > MAX_PARAMS_BYTES:
        raise InputError(path, f"{path.stat().st_size:,} bytes is too large for a params.py")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise InputError(path, f"not a phy params.py (no valid Python: {exc})") from None
    out: dict[str, Any] = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                continue
    return out


def _sample_rate(params: dict[str, Any], fs: float | str | None, where: Path) -> float:
    if fs is not None and str(fs).strip():
        try:
            rate = float(fs)
        except ValueError:
            raise ParamError("reader_options", f"fs: expected a number, got {fs!r}") from None
        src: object = "--reader-options fs"
    elif "sample_rate" in params:
        rate, src = params["sample_rate"], where / PARAMS
    else:
        raise InputError(where, f"no sample_rate in {PARAMS} (or no {PARAMS}); "
                                "pass the reader option fs=HZ")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) \
            or rate <= 0:
        raise InputError(src, f"sample_rate must be a positive number, got {rate!r}")
    return float(rate)


def _load_vector(path: Path, what: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(path, f"unreadable {what} ({str(exc).splitlines()[0][:120]})") from None
    if arr.ndim > 2 or (arr.ndim == 2 and 1 not in arr.shape):
        raise InputError(path, f"{what} must be a vector, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise InputError(path, f"{what} must be numeric, got dtype {arr.dtype}")
    return arr.ravel()


def _read_tsv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot parse table: {str(exc).splitlines()[0][:120]}") from None
    key = next((c for c in ("cluster_id", "id") if c in df.columns), None)
    if key is None:
        raise InputError(path, f"no cluster_id column among {list(df.columns)[:10]}")
    ids = pd.to_numeric(df[key], errors="coerce")
    if ids.isna().any():
        raise InputError(path, f"non-integer {key} values")
    return df.assign(cluster_id=ids.astype(np.int64)).drop_duplicates("cluster_id", keep="last") \
        .set_index("cluster_id")


def _labels(folder: Path, info: pd.DataFrame | None) -> tuple[dict[int, str], list[str]]:
    """Cluster id -> label (curated group first, then KSLabel) and the files that gave them."""
    found: list[str] = []
    curated: dict[int, str] = {}
    auto: dict[int, str] = {}

    def take(df: pd.DataFrame | None, col: str, into: dict[int, str], name: str) -> None:
        if df is None or col not in df.columns:
            return
        found.append(name)
        for cid, val in df[col].items():
            text = "" if pd.isna(val) else str(val).strip().lower()
            if text and text != UNLABELLED:
                into.setdefault(int(cid), text)

    take(_read_tsv(folder / "cluster_group.tsv"), "group", curated, "cluster_group.tsv")
    take(info, "group", curated, "cluster_info.tsv")
    take(_read_tsv(folder / "cluster_KSLabel.tsv"), "KSLabel", auto, "cluster_KSLabel.tsv")
    take(info, "KSLabel", auto, "cluster_info.tsv")
    return {**auto, **curated}, sorted(set(found))


def _groups(text: str | None) -> list[str] | None:
    """``"good,mua"`` -> ["good", "mua"]; ``"all"`` -> None (every cluster)."""
    names = [g.strip().lower() for g in str(text or "").split(",") if g.strip()]
    if not names:
        raise ParamError("reader_options", "groups: give labels, e.g. groups=good,mua, or all")
    return None if "all" in names else names


@register("phy", ["/", PARAMS, TIMES, CLUSTERS], _sniff,
          "phy / Kilosort output folder (spike_times.npy, spike_clusters.npy, params.py)",
          probe=_probe)
def read_phy(path: Path, groups: str = "good", fs: float | str | None = None,
             bin_ms: float | str = DEFAULT_BIN_MS, t_start: float | str | None = 0.0,
             t_stop: float | str | None = None, dataset: str = "phy",
             subject: str | None = None) -> list[Recording]:
    """A phy folder (or its ``params.py``): the clusters labelled ``groups``, binned.

    Parameters
    ----------
    path : Path
        The folder, or any of its files.
    groups : str
        Comma-separated labels to keep (default ``good``; ``good,mua``; ``all``). A cluster's
        label is its curated ``group`` (cluster_group.tsv / cluster_info.tsv), else its
        ``KSLabel``, else ``unsorted``. A folder with no label table keeps every cluster.
    fs : float, optional
        Sampling rate (Hz) overriding ``sample_rate`` of ``params.py``.
    bin_ms, t_start, t_stop, dataset, subject
        As for every spike reader; ``t_start`` defaults to 0 (the start of the recording that
        was sorted), ``t_stop`` to just after the last kept spike.
    """
    folder = phy_folder(path)
    params = parse_params(folder / PARAMS) if (folder / PARAMS).is_file() else {}
    rate = _sample_rate(params, fs, folder)
    wanted = _groups(groups)
    if not (folder / TIMES).is_file():
        raise InputError(folder, f"no {TIMES} in the phy folder")
    cluster_file = folder / CLUSTERS
    if not cluster_file.is_file():
        if not (folder / TEMPLATES).is_file():
            raise InputError(folder, f"no {CLUSTERS} (nor {TEMPLATES}) in the phy folder")
        log.warning("%s: no %s; clusters are the sorter's templates (%s)", folder, CLUSTERS,
                    TEMPLATES)
        cluster_file = folder / TEMPLATES
    samples = _load_vector(folder / TIMES, "spike times")
    clusters = _load_vector(cluster_file, "spike clusters")
    if samples.size != clusters.size:
        raise InputError(folder, f"{TIMES} holds {samples.size:,} spikes but {cluster_file.name} "
                                 f"{clusters.size:,}")
    if samples.size == 0:
        raise InputError(folder, "no spikes in the phy folder")
    if clusters.dtype.kind == "f" and not np.all(clusters == np.round(clusters)):
        raise InputError(cluster_file, "cluster ids must be integers")
    clusters = clusters.astype(np.int64)
    if not np.all(np.isfinite(samples)):
        raise InputError(folder / TIMES, "non-finite spike times")
    info = _read_tsv(folder / "cluster_info.tsv")
    labels, label_files = _labels(folder, info)
    ids, counts = np.unique(clusters, return_counts=True)
    group_of = {int(c): labels.get(int(c), UNLABELLED) for c in ids}
    by_group: dict[str, int] = {}
    for c in ids:
        by_group[group_of[int(c)]] = by_group.get(group_of[int(c)], 0) + 1
    if not label_files:
        log.warning("%s: no cluster labels (cluster_group.tsv, cluster_KSLabel.tsv, "
                    "cluster_info.tsv); keeping all %d clusters", folder, ids.size)
        wanted = None
    keep = [int(c) for c in ids if wanted is None or group_of[int(c)] in wanted]
    if not keep:
        have = ", ".join(f"{n} {g}" for g, n in sorted(by_group.items()))
        raise InputError(folder, f"no cluster labelled {','.join(wanted or [])} ({have}); "
                                 "pass --reader-options groups=LABELS (e.g. good,mua or all)")
    order = np.argsort(clusters, kind="stable")
    bounds = np.searchsorted(clusters[order], ids)
    pos = {int(c): i for i, c in enumerate(ids)}
    samples = samples.astype(np.float64)
    trains = [samples[order[bounds[pos[c]]:bounds[pos[c]] + counts[pos[c]]]] for c in keep]
    extra: dict[str, list[Any]] = {"group": [group_of[c] for c in keep]}
    regions = None
    if info is not None:
        rows = info.reindex(keep)
        for src, dst in INFO_COLUMNS.items():
            if src in rows.columns:
                extra[dst] = pd.to_numeric(rows[src], errors="coerce").tolist()
        rcol = next((c for c in rows.columns if str(c).lower() in REGION_COLUMNS), None)
        if rcol is not None:
            regions = ["" if pd.isna(x) else str(x) for x in rows[rcol]]
    rec = trains_to_recording(trains, keep, folder, bin_ms=bin_ms, t_start=t_start,
                              t_stop=t_stop, regions=regions, extra_info=extra, dataset=dataset,
                              subject=subject, fmt="phy", time_unit_s=1.0 / rate)
    n_kept = int(sum(counts[pos[c]] for c in keep))
    meta = {
        **rec.meta, "sample_rate": rate, "groups": "all" if wanted is None else ",".join(wanted),
        "clusters_by_group": by_group, "label_files": label_files,
        "n_spikes_other_clusters": int(samples.size) - n_kept, "cluster_file": cluster_file.name,
        "params": {k: v for k, v in params.items() if isinstance(v, (str, int, float, bool))},
    }
    return [rec.replace(meta=meta)]
