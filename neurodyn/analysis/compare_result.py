"""The HDF5 layout of ``compare.h5`` (``neurodyn compare-connectome``): written and read here only.

Root attrs ``connectome`` (name), ``synapses`` (chemical, electrical or both). One group per
scored source (:mod:`neurodyn.io.groups`, named after the source, attr ``source``)::

    labels (N,)                         shared neurons, in the scored order
    inferred (N, N), anatomical (N, N)  interaction magnitudes and synapse counts
    order (N,)                          display order (clusters together)
    null_roc, null_pr (P,)              label-permutation null of each score
    only_inferred, only_connectome      neurons present on one side only
    attrs: roc_auc, pr_auc, p_roc, p_pr, chance_pr_auc, n_neurons, n_pairs, n_connected,
           n_only_inferred, n_only_connectome

Dimension names and units: :data:`neurodyn.io.layout.RULES` (``compare``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import h5py
import numpy as np

from neurodyn.io.groups import GroupTree, item, read_groups, write_groups
from neurodyn.io.store import open_h5

STAGE = "compare"


class SourceScore(GroupTree):
    """One scored source of ``compare.h5`` (``id``: the source, e.g. ``hmmglm:<id>``)."""

    labels = item("labels", "(N,) shared neurons")
    inferred = item("inferred", "(N, N) inferred interaction magnitudes")
    anatomical = item("anatomical", "(N, N) synapse counts")
    null_roc = item("null_roc", "(P,) ROC AUC under label permutations")
    null_pr = item("null_pr", "(P,) PR AUC under label permutations")
    only_inferred = item("only_inferred", "neurons only in the inferred matrix")
    only_connectome = item("only_connectome", "neurons only in the connectome")

    @property
    def order(self) -> np.ndarray:
        """(N,) display order (identity in files that lack it)."""
        o = self.tree.get("order")
        return np.arange(len(self.labels)) if o is None else np.asarray(o)


@dataclass
class CompareResult:
    """What ``compare.h5`` holds (see the module docstring)."""

    connectome: str
    synapses: str
    scores: dict[str, SourceScore] = field(default_factory=dict)


def write(f: h5py.Group, r: CompareResult) -> None:
    """Write a :class:`CompareResult` at the root of an open HDF5 file."""
    f.attrs["connectome"] = r.connectome
    f.attrs["synapses"] = r.synapses
    write_groups(f, r.scores.values())


def read(path: str | os.PathLike) -> CompareResult:
    """Read ``compare.h5`` (:class:`~neurodyn.errors.InputError` when the file is not one)."""
    scores = read_groups(path, STAGE, SourceScore)
    with open_h5(path) as f:
        con, syn = (_text(f.attrs.get(k, d)) for k, d in (("connectome", "connectome"),
                                                          ("synapses", "")))
    return CompareResult(con, syn, scores)  # type: ignore[arg-type]


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)

