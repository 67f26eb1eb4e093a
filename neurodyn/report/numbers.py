"""Key numbers of a stage file for the report: root scalars and per-group quantities,
read from names and shapes without loading large datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurodyn.io.layout import is_dimension_only
from neurodyn.io.store import open_h5, recording_id
from neurodyn.report.html import Table

PROVENANCE_KEYS = {"stage", "neurodyn_version", "versions", "command", "parameters", "inputs",
                   "input_digest", "seed", "started", "finished", "complete"}
_INTERESTING = ("loglik", "log_lik", "heldout", "held_out", "test", "elbo", "bic", "aic", "loss",
                "rhat", "r_hat", "ess", "accept", "rank", "n_", "error", "fit", "converged",
                "iterations", "score", "ari", "nmi", "auc", "modularity", "resolution")
_CLUSTERS = ("membership", "neuron_clusters", "clusters", "communities")
_STATES = ("viterbi", "state_sequence", "states")


def _scalar(v: Any) -> Any | None:
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    if isinstance(v, str):
        return v if len(v) <= 80 and not v.startswith(("{", "[")) else None
    if isinstance(v, (bool, int, float, np.integer, np.floating, np.bool_)):
        return v.item() if hasattr(v, "item") else v
    if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "biuf":
        return v.item()
    return None


def _derived(name: str, ds: h5py.Dataset) -> dict[str, Any]:
    """Key numbers implied by a dataset's name and shape (no large reads)."""
    base = name.rsplit("/", 1)[-1].lower()
    out: dict[str, Any] = {}
    if ds.dtype.kind not in "biuf":
        return out
    if ds.size == 1:
        out[name] = ds[()].item() if hasattr(ds[()], "item") else ds[()]
    elif base in _CLUSTERS and ds.ndim == 1:
        v = ds[()]
        out[f"{name}: number of groups"] = int(np.unique(v[v >= 0]).size)
    elif base in _STATES and ds.ndim == 1:
        out[f"{name}: states used"] = int(np.unique(ds[()]).size)
    elif base in ("posterior", "transition") and ds.ndim >= 2:
        out[f"{name}: number of states"] = int(ds.shape[-1])
    elif name.lower().startswith("factors/") and ds.ndim == 2 and base != "weights":
        out[f"{name}: rank"] = int(ds.shape[1])
    elif base in ("loglik_trace", "elbo", "loss_trace", "log_likelihood") and ds.ndim == 1 \
            and ds.size > 0:
        v = ds[()]
        out[f"{name}: final"] = float(v[-1])
        out[f"{name}: iterations"] = int(v.size)
    elif any(k in base for k in ("heldout", "held_out", "rhat", "ess")) and ds.size <= 16:
        out[name] = [round(float(x), 6) for x in np.ravel(ds[()])]
    return out


def key_numbers(path: str | Path, max_rows: int = 300) -> tuple[dict[str, Any], list[list[Any]]]:
    """Root-level numbers and per-group rows ``[group, quantity, value]`` of a stage file."""
    root: dict[str, Any] = {}
    rows: list[list[Any]] = []
    with open_h5(path) as f:
        for k, v in f.attrs.items():
            if k not in PROVENANCE_KEYS and (s := _scalar(v)) is not None:
                root[k] = s

        def visit(name: str, obj: Any) -> None:
            if len(rows) >= max_rows or "events" in name.split("/"):
                return
            group, _, leaf = name.rpartition("/")
            if isinstance(obj, h5py.Group):
                for k, v in obj.attrs.items():
                    s = _scalar(v)
                    if s is not None and k not in ("id", "columns", "source"):
                        rows.append([name, k, s])
            elif isinstance(obj, h5py.Dataset) and not is_dimension_only(obj):
                for q, v in _derived(name, obj).items():
                    if "/" not in name:
                        root[q] = v
                    else:
                        rows.append([group, q[len(group) + 1:] if q.startswith(group) else q, v])

        f.visititems(visit)
    return root, rows


def group_table(rows: list[list[Any]], max_columns: int = 16) -> Table:
    """Per-group numbers as one row per group (wide) when few quantities, else long form."""
    groups = list(dict.fromkeys(r[0] for r in rows))
    quantities = list(dict.fromkeys(r[1] for r in rows))
    names = [recording_id(g) for g in groups]
    if len(quantities) > max_columns:
        return Table("Numbers per group", ["group", "quantity", "value"],
                     [[recording_id(r[0]), r[1], r[2]] for r in rows])
    cell = {(r[0], r[1]): r[2] for r in rows}
    return Table("Numbers per group", ["group", *quantities],
                 [[n, *(cell.get((g, q), "") for q in quantities)] for g, n in zip(groups, names)])
