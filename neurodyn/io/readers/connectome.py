"""Anatomical connectome tables: Varshney et al. 2011 MAT files and NemaNode-style JSON."""

from __future__ import annotations

import json
import logging
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from neurodyn.connectome import Connectome
from neurodyn.errors import InputError
from neurodyn.io.formats import register
from neurodyn.io.readers._util import is_matlab_v5
from neurodyn.io.readers.celegans_collection import to_numpy
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


# --------------------------------------------------------------------------------------
# Homogenized collection: consensus_connectome_{full|trimmed}_{withfunc|nofunc}.csv
# --------------------------------------------------------------------------------------

CONSENSUS_COLUMNS = ("from_neuron", "to_neuron", "mean_gap_weight", "mean_chem_weight")
WEIGHT_CHOICES = ("anatomical", "functional", "all")


def _sniff_consensus(path: Path) -> bool:
    with open(path, "rb") as fh:
        header = fh.readline().decode(errors="replace")
    cols = {c.strip().strip('"') for c in header.split(",")}
    return set(CONSENSUS_COLUMNS) <= cols


def symmetrize_gap(gap: np.ndarray, atol: float = 1e-9) -> tuple[np.ndarray, int]:
    """Symmetrise a gap-junction matrix by averaging it with its transpose.

    Parameters
    ----------
    gap : array (N, N)
        Gap-junction weights, ``gap[i, j]`` as listed for the pair i -> j.
    atol : float
        Differences up to this are not counted as asymmetric.

    Returns
    -------
    sym : array (N, N)
        ``(gap + gap.T) / 2``.
    n_asymmetric : int
        Number of unordered pairs ``i < j`` whose two directions disagree.
    """
    g = np.asarray(gap, dtype=np.float64)
    diff = np.abs(g - g.T) > atol
    return (g + g.T) / 2.0, int(np.count_nonzero(np.triu(diff, 1)))


@register(
    "connectome-consensus",
    [".csv"],
    _sniff_consensus,
    "Homogenized collection consensus connectome CSV (from_neuron, to_neuron, weights)",
)
def read_consensus_csv(
    path: Path, weights: str = "anatomical", name: str | None = None
) -> list[Connectome]:
    """``consensus_connectome_{full|trimmed}_{withfunc|nofunc}.csv``: one row per directed pair.

    Parameters
    ----------
    path : Path
        CSV with ``from_neuron``, ``to_neuron``, ``mean_gap_weight`` (symmetric mean over
        annotations), ``mean_chem_weight`` (directed mean) and, in *withfunc* files,
        ``functional_weight`` (Randi 2023 signal propagation, directed).
    weights : {"anatomical", "functional", "all"}
        ``"anatomical"``: chemical = ``mean_chem_weight``, electrical = ``mean_gap_weight``.
        ``"functional"``: one graph ``<name>_functional`` with the functional weights in
        ``chemical`` (directed) and no electrical part. ``"all"``: both graphs.
    name : str, optional
        Graph name; the file stem by default.

    Gap junctions are checked for symmetry; asymmetric pairs (reported for the published
    table) are averaged and their count is logged as a warning. Missing weights read as 0.
    """
    if weights not in WEIGHT_CHOICES:
        raise InputError("weights", f"unknown weights {weights!r}; one of {', '.join(WEIGHT_CHOICES)}")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, f"malformed CSV: {str(exc).splitlines()[0][:160]}") from None
    missing = [c for c in CONSENSUS_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(path, f"missing columns {missing}")
    if weights != "anatomical" and "functional_weight" not in df.columns:
        raise InputError(path, "no functional_weight column (use a *_withfunc file)")
    if df.empty:
        raise InputError(path, "no rows")
    pre = [canonical_neuron_name(x) for x in df["from_neuron"].astype(str)]
    post = [canonical_neuron_name(x) for x in df["to_neuron"].astype(str)]
    names = sorted(set(pre) | set(post))
    index = {x: i for i, x in enumerate(names)}
    i = np.array([index[x] for x in pre])
    j = np.array([index[x] for x in post])
    if len(set(zip(i.tolist(), j.tolist()))) != len(i):
        raise InputError(path, "duplicate (from_neuron, to_neuron) rows")
    n = len(names)

    def matrix(col: str) -> np.ndarray:
        m = np.zeros((n, n))
        w = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        m[i, j] = np.nan_to_num(w, nan=0.0)
        return m

    base = name or Path(path).stem
    out = []
    if weights in ("anatomical", "all"):
        gap, n_asym = symmetrize_gap(matrix("mean_gap_weight"))
        if n_asym:
            msg = f"{path}: {n_asym} neuron pairs have asymmetric gap-junction weights; averaged"
            logging.getLogger(__name__).warning(msg)
            warnings.warn(msg, stacklevel=2)
        out.append(Connectome(base, names, matrix("mean_chem_weight"), gap, str(path)))
    if weights in ("functional", "all"):
        out.append(
            Connectome(f"{base}_functional", names, matrix("functional_weight"), np.zeros((n, n)), str(path))
        )
    return out


# --------------------------------------------------------------------------------------
# Homogenized collection: per-annotation graph_tensors_<pub>.pt (torch / PyG)
# --------------------------------------------------------------------------------------


def connectome_from_graph_tensors(graph: dict, name: str, source: str = "") -> Connectome:
    """A Connectome from the collection's graph dict (numpy arrays or torch tensors).

    Parameters
    ----------
    graph : dict
        ``edge_index`` (2, E) int (src, dst); ``edge_attr`` (E, 2) float =
        [gap-junction weight, chemical weight]; ``node_label`` {index: name}.
    name : str
        Annotation name (``"white_1986_whole"``, ``"cook_2019"``, ...).

    Nodes without any edge are kept; gap junctions listed in one direction only are
    symmetrised (their count is logged).
    """
    for key in ("edge_index", "edge_attr", "node_label"):
        if key not in graph:
            raise InputError(source or name, f"graph has no {key!r}")
    ei = to_numpy(graph["edge_index"]).astype(np.int64)
    ea = to_numpy(graph["edge_attr"]).astype(np.float64)
    if ei.ndim != 2 or ei.shape[0] != 2 or ea.ndim != 2 or ea.shape != (ei.shape[1], 2):
        raise InputError(source or name, f"edge_index {ei.shape} / edge_attr {ea.shape} disagree")
    node_label = {int(k): canonical_neuron_name(v) for k, v in dict(graph["node_label"]).items()}
    n = max(node_label) + 1 if node_label else 0
    if ei.size and ei.max() >= n:
        raise InputError(source or name, f"edge to node {int(ei.max())} beyond {n} labels")
    labels = [node_label.get(i, f"node{i}") for i in range(n)]
    chem, gap = np.zeros((n, n)), np.zeros((n, n))
    np.add.at(gap, (ei[0], ei[1]), ea[:, 0])
    np.add.at(chem, (ei[0], ei[1]), ea[:, 1])
    one_way = int(np.count_nonzero(np.triu((gap > 0) != (gap.T > 0), 1)))
    if one_way:
        logging.getLogger(__name__).warning("%s: %d gap junctions listed one way; mirrored", name, one_way)
        gap = np.maximum(gap, gap.T)
    return Connectome(name, labels, chem, gap, source)


def _sniff_graph_tensors(path: Path) -> bool:
    if not path.name.startswith("graph_tensors") or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(x.endswith("data.pkl") for x in z.namelist())


@register(
    "connectome-graph-tensors",
    [".pt"],
    _sniff_graph_tensors,
    "Homogenized collection per-annotation graph_tensors_<pub>.pt (needs torch)",
)
def read_graph_tensors(path: Path, name: str | None = None) -> list[Connectome]:
    """``graph_tensors_<pub>.pt`` written by ``torch.save``; torch is imported only here.

    The graph is named after ``<pub>`` (``graph_tensors_witvliet_8.pt`` -> ``witvliet_8``).
    """
    try:
        import torch
    except ImportError:
        raise InputError(path, "reading .pt graph tensors needs torch (pip install torch)") from None
    try:
        graph = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types on corrupt archives
        raise InputError(path, f"torch cannot load it: {str(exc).splitlines()[0][:160]}") from None
    if not isinstance(graph, dict):
        raise InputError(path, f"expected a dict of graph tensors, got {type(graph).__name__}")
    pub = name or Path(path).stem.removeprefix("graph_tensors_") or Path(path).stem
    return [connectome_from_graph_tensors(graph, pub, str(path))]
