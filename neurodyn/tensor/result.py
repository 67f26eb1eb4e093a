"""The HDF5 layout of ``ntf.h5`` (the ``factorize`` stage): written and read here only.

``/factors/{pairs (P, R), time (W, R), animal (A, R), weights (R,)}`` (unit-norm columns,
components by descending weight); ``/components/matrices`` (R, N, N) float32, each the pair
factor unfolded into a symmetric non-negative matrix with zero diagonal; ``/labels``,
``/pairs``, ``/windows`` (W, 2) s, ``/animals``; ``/rank_selection/{ranks, error, stability,
heldout_error}`` (attr ``chosen``; ``scan_animals``, the indices of the animals the ranks were
scanned on, when ``--scan-animals`` took a subset); ``/restarts/{seeds, errors, n_iter}`` of the chosen rank;
``/events`` copied from the affinity file; ``/model_selection`` (every candidate's held-out
error with its standard error, the constant-tensor baseline, the choice, reason and
warnings: :class:`neurodyn.selection.Selection`); attrs ``rank``, ``loss`` (= ``relative_error``),
``stability``, ``best_seed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
import pandas as pd

from neurodyn.errors import InputError
from neurodyn.io.store import open_h5, put, read_frame, read_tree, strings, write_frame, write_tree
from neurodyn.recording import empty_events

STAGE = "factorize"


@dataclass
class NTFResult:
    """What ``ntf.h5`` holds (see the module docstring for shapes)."""

    factors: dict[str, np.ndarray]  # pairs, time, animal, weights
    matrices: np.ndarray
    labels: list[str]
    pairs: np.ndarray
    windows: np.ndarray
    animals: list[str]
    rank_selection: dict[str, np.ndarray]
    restarts: dict[str, np.ndarray]
    rank: int
    relative_error: float
    stability: float
    best_seed: int
    events: pd.DataFrame = field(default_factory=empty_events)
    model_selection: dict[str, Any] = field(default_factory=dict)

    def cp_tensor(self):
        """The factorization as a ``tensorly.cp_tensor.CPTensor``: factors (pair, window,
        animal) like the affinity tensor, ``weights`` the component weights, so
        ``tensorly.cp_to_tensor`` rebuilds the fitted tensor."""
        from tensorly.cp_tensor import CPTensor

        f = self.factors
        return CPTensor((f["weights"], [f["pairs"], f["time"], f["animal"]]))


def write(f: h5py.Group, r: NTFResult) -> None:
    """Write an :class:`NTFResult` at the root of an open HDF5 file."""
    g = f.create_group("factors")
    for name in ("pairs", "time", "animal", "weights"):
        put(g, name, r.factors[name])
    put(f.create_group("components"), "matrices", np.asarray(r.matrices, dtype=np.float32))
    put(f, "labels", np.array(r.labels, dtype=object))
    put(f, "pairs", r.pairs)
    put(f, "windows", r.windows)
    put(f, "animals", np.array(r.animals, dtype=object))
    rs = f.create_group("rank_selection")
    for k, v in r.rank_selection.items():
        put(rs, k, v)
    rs.attrs["chosen"] = r.rank
    rg = f.create_group("restarts")
    for k, v in r.restarts.items():
        put(rg, k, v)
    write_frame(f.create_group("events"), r.events)
    if r.model_selection:
        write_tree(f.create_group("model_selection"), r.model_selection)
    f.attrs.update(rank=r.rank, loss=r.relative_error, relative_error=r.relative_error,
                   stability=r.stability, best_seed=r.best_seed)


def read(path: str | os.PathLike) -> NTFResult:
    """Read ``ntf.h5`` (:class:`InputError` when the file is not one)."""
    with open_h5(path) as f:
        missing = [g for g in ("factors", "components") if g not in f]
        if missing:
            raise InputError(path, f"not an NTF file: no /{' or /'.join(missing)} group (run "
                                   "`neurodyn factorize` first)")
        a = f.attrs
        return NTFResult(
            factors={k: f["factors"][k][()] for k in f["factors"]},
            matrices=f["components/matrices"][()], labels=strings(f["labels"]),
            pairs=f["pairs"][()], windows=f["windows"][()], animals=strings(f["animals"]),
            rank_selection={k: v[()] for k, v in f["rank_selection"].items()},
            restarts={k: v[()] for k, v in f["restarts"].items()} if "restarts" in f else {},
            rank=int(a["rank"]), relative_error=float(a["relative_error"]),
            stability=float(a.get("stability", np.nan)), best_seed=int(a.get("best_seed", 0)),
            events=read_frame(f["events"]) if "events" in f else empty_events(),
            model_selection=read_tree(f["model_selection"]) if "model_selection" in f else {},
        )
