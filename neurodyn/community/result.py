"""The HDF5 layout of ``communities.h5``: written and read here only.

::

    /labels (N,)                       neuron names
    /components_used (K,)              component indices analysed
    /component_<r>/membership (N,)     level-0 community of each neuron
    /component_<r>/block_matrix (B, B) mean affinity between / within communities
    /component_<r>/levels/<l>/membership (N,)   community of each neuron at hierarchy level l
    /component_<r> attrs: description_length (nats), description_length_bits, degree_corrected,
        n_blocks, n_levels, method, ensemble ("ndc", "ndc_dense" or "dc", with
        "_lognormal" or "_split" appended for the log-normal weight codes),
        description_length_<variant> (nats) for each variant fitted and, for method sbm,
        description_length_leiden: Leiden's partition under the chosen code
    /overview/{activity (K', W), component (K',), community (K',)}   when the input has
        /factors/time: activity of community c of component r in window w = within-community
        mean affinity x temporal loading of r (the dynamic-connectome overview)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from neurodyn.errors import InputError
from neurodyn.io.store import open_h5, put, strings

STAGE = "communities"


@dataclass
class ComponentCommunities:
    """The communities of one NTF component."""

    membership: np.ndarray  # (N,) int64, level 0
    block_matrix: np.ndarray  # (B, B)
    levels: list[np.ndarray] = field(default_factory=list)  # memberships, level 0 upwards
    attrs: dict[str, Any] = field(default_factory=dict)  # description lengths, n_blocks, ...


@dataclass
class CommunitiesResult:
    """What ``communities.h5`` holds (see the module docstring)."""

    labels: list[str]
    components: dict[int, ComponentCommunities]
    overview: dict[str, np.ndarray] | None = None  # activity, component, community


def write(f: h5py.Group, r: CommunitiesResult) -> None:
    """Write a :class:`CommunitiesResult` at the root of an open HDF5 file."""
    put(f, "labels", np.array(r.labels, dtype=object))
    put(f, "components_used", np.array(sorted(r.components), dtype=np.int64))
    for k in sorted(r.components):
        c = r.components[k]
        g = f.create_group(f"component_{k}")
        put(g, "membership", np.asarray(c.membership, dtype=np.int64))
        put(g, "block_matrix", c.block_matrix)
        lv = g.create_group("levels")
        for level, memb in enumerate(c.levels):
            put(lv.create_group(str(level)), "membership", np.asarray(memb, dtype=np.int64))
        g.attrs.update(n_levels=len(c.levels), **c.attrs)
    if r.overview is not None:
        ov = f.create_group("overview")
        for name in ("activity", "component", "community"):
            put(ov, name, r.overview[name])


def _attr(v: Any) -> Any:
    v = v.item() if hasattr(v, "item") else v
    return v.decode() if isinstance(v, bytes) else v


def read(path: str | os.PathLike) -> CommunitiesResult:
    """Read ``communities.h5`` (:class:`InputError` when the file is not one)."""
    with open_h5(path) as f:
        if "components_used" not in f:
            raise InputError(path, "not a communities file (run `neurodyn communities` first)")
        comps = {}
        for k in f["components_used"][()]:
            g = f[f"component_{int(k)}"]
            lv = g["levels"] if "levels" in g else {}
            comps[int(k)] = ComponentCommunities(
                membership=g["membership"][()], block_matrix=g["block_matrix"][()],
                levels=[lv[str(i)]["membership"][()] for i in range(len(lv))],
                attrs={a: _attr(v) for a, v in g.attrs.items() if a != "n_levels"},
            )
        overview = ({k: f["overview"][k][()] for k in ("activity", "component", "community")}
                    if "overview" in f else None)
        return CommunitiesResult(strings(f["labels"]), comps, overview)
