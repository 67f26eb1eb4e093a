"""Anatomical connectome tables: Varshney et al. 2011 MAT files and NemaNode-style JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.io

from neurodyn.connectome import Connectome
from neurodyn.errors import InputError
from neurodyn.io.readers._util import is_matlab_v5
from neurodyn.io.registry import register
from neurodyn.names import canonical_neuron_name


def _sniff_varshney(path: Path) -> bool:
    if not is_matlab_v5(path):
        return False
    names = {n for n, *_ in scipy.io.whosmat(path)}
    return {"Neuron_ordered", "A_init_t_ordered", "Ag_t_ordered"} <= names


@register("connectome-varshney", [".mat"], _sniff_varshney, "Varshney 2011 connectome (.mat)")
def read_varshney(path: Path) -> list[Connectome]:
    """``ConnOrdered_040903.mat``: chemical ``A[pre, post]`` and gap-junction matrices."""
    m = scipy.io.loadmat(path)
    names = [canonical_neuron_name(np.ravel(x)[0]) for x in np.ravel(m["Neuron_ordered"])]
    chem = m["A_init_t_ordered"]
    elec = m["Ag_t_ordered"]
    chem = chem.toarray() if hasattr(chem, "toarray") else np.asarray(chem)
    elec = elec.toarray() if hasattr(elec, "toarray") else np.asarray(elec)
    return [Connectome("varshney2011", names, chem, elec, str(path))]


def _sniff_json(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip()
    return head.startswith(b"[") and b'"pre"' in head and b'"post"' in head


@register("connectome-json", [".json"], _sniff_json, "NemaNode/Witvliet edge-list JSON connectome")
def read_edge_json(path: Path, name: str | None = None) -> list[Connectome]:
    """Edge records ``{"pre", "post", "typ" (0 chemical, 2 electrical), "syn": [...]}``.

    Gap junctions listed in one direction are symmetrised.
    """
    try:
        edges = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON: {exc}") from None
    if not isinstance(edges, list) or not edges:
        raise InputError(path, "expected a non-empty list of edge records")
    names = sorted({canonical_neuron_name(e[k]) for e in edges for k in ("pre", "post")})
    index = {x: i for i, x in enumerate(names)}
    n = len(names)
    chem, elec = np.zeros((n, n)), np.zeros((n, n))
    for e in edges:
        i, j = index[canonical_neuron_name(e["pre"])], index[canonical_neuron_name(e["post"])]
        syn = e.get("syn", 1)
        w = float(np.sum(syn)) if isinstance(syn, list) else float(syn)
        if int(e.get("typ", 0)) == 2:
            elec[i, j] = max(elec[i, j], w)
            elec[j, i] = max(elec[j, i], w)
        else:
            chem[i, j] += w
    return [Connectome(name or Path(path).stem, names, chem, elec, str(path))]
