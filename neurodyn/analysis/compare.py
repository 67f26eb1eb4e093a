"""Structure versus function: score inferred interactions against an anatomical connectome.

Inferred interaction matrices (HMM-GLM adjacency or mean |W|, community co-membership, NTF
component matrices) are matched to a connectome by canonical neuron name and scored on
unordered neuron pairs: a pair is anatomically connected when it has a synapse of the chosen
kind in either direction; its inferred score is ``max(|S_ij|, |S_ji|)``. ROC AUC and
precision-recall AUC (average precision) are compared with a label-permutation null that
shuffles the neuron labels of the inferred side; p-values use the +1 correction
``p = (1 + #{null >= observed}) / (1 + n_perm)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from neurodyn.analysis import compare_result
from neurodyn.analysis.params import CompareParams
from neurodyn.analysis.rundir import NTF_FILES, STATE_FILES, find_file, recording_file
from neurodyn.community import result as community_result
from neurodyn.connectome import Connectome
from neurodyn.errors import InputError
from neurodyn.hmmglm import result as states_result
from neurodyn.io.outputs import check_output
from neurodyn.io.registry import read
from neurodyn.io.store import (
    atomic_h5,
    open_h5,
    read_connectome,
    read_recordings,
)
from neurodyn.names import canonical_neuron_name
from neurodyn.params import ParamError
from neurodyn.tensor import result as ntf_result

SYNAPSES = ("chemical", "electrical", "both")


# -- pure kernels -----------------------------------------------------------------------------
def pair_values(matrix: np.ndarray) -> np.ndarray:
    """Symmetrised values on unordered pairs ``i < j``: ``max(|M_ij|, |M_ji|)`` (N(N-1)/2,)."""
    m = np.abs(np.asarray(matrix, dtype=float))
    iu = np.triu_indices(m.shape[0], 1)
    return np.fmax(m[iu], m.T[iu])


def rank_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank formula (ties get mid-ranks, as scikit-learn).

    Parameters
    ----------
    scores : float array (P,)
    positive : bool array (P,)
    """
    pos = np.asarray(positive, dtype=bool)
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def permutation_null(inferred: np.ndarray, anatomical: np.ndarray, n_perm: int, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC and PR AUC of ``inferred`` with neuron labels permuted, ``n_perm`` times.

    Parameters
    ----------
    inferred : float array (N, N)
        Interaction scores (NaN = unknown pair, excluded).
    anatomical : bool array (N, N)
        Connected pairs (either direction counts).
    n_perm : int
    seed : int

    Returns
    -------
    null_roc, null_pr : float arrays (n_perm,)
    """
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    a = pair_values(anatomical) > 0
    n = inferred.shape[0]
    roc = np.empty(n_perm)
    pr = np.empty(n_perm)
    for k in range(n_perm):
        p = rng.permutation(n)
        s = pair_values(inferred[np.ix_(p, p)])
        ok = np.isfinite(s)
        roc[k] = rank_auc(s[ok], a[ok])
        pr[k] = average_precision_score(a[ok], s[ok]) if a[ok].any() else np.nan
    return roc, pr


def p_value(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p-value with the +1 correction."""
    null = np.asarray(null)
    null = null[np.isfinite(null)]
    return float((1 + np.sum(null >= observed)) / (1 + null.size))


def cluster_order(matrix: np.ndarray) -> np.ndarray:
    """Leaf order of average-linkage clustering of the rows of ``|matrix|`` (for display)."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import pdist

    m = np.nan_to_num(np.abs(np.asarray(matrix, dtype=float)))
    m = m + m.T
    if m.shape[0] < 3 or not np.any(m):
        return np.arange(m.shape[0])
    return leaves_list(linkage(pdist(m), method="average"))


@dataclasses.dataclass
class Score:
    """Result of scoring one inferred matrix against one connectome."""

    source: str
    labels: list[str]
    inferred: np.ndarray          # (M, M) on shared neurons
    anatomical: np.ndarray        # (M, M) synapse counts on shared neurons (chosen kind)
    roc_auc: float
    pr_auc: float
    p_roc: float
    p_pr: float
    null_roc: np.ndarray
    null_pr: np.ndarray
    n_pairs: int
    n_connected: int
    only_inferred: list[str]
    only_connectome: list[str]
    order: np.ndarray

    def result(self) -> compare_result.SourceScore:
        """This score as its group of ``compare.h5``."""
        return compare_result.SourceScore(self.source, {
            "@source": self.source, **{"@" + k: v for k, v in self.numbers().items()},
            "labels": np.array(self.labels, dtype=object), "inferred": self.inferred,
            "anatomical": self.anatomical, "order": self.order, "null_roc": self.null_roc,
            "null_pr": self.null_pr, "only_inferred": np.array(self.only_inferred, dtype=object),
            "only_connectome": np.array(self.only_connectome, dtype=object)})

    def numbers(self) -> dict[str, Any]:
        return {
            "roc_auc": self.roc_auc, "pr_auc": self.pr_auc, "p_roc": self.p_roc,
            "p_pr": self.p_pr, "n_neurons": len(self.labels), "n_pairs": self.n_pairs,
            "n_connected": self.n_connected, "chance_pr_auc": self.n_connected / max(self.n_pairs, 1),
            "n_only_inferred": len(self.only_inferred),
            "n_only_connectome": len(self.only_connectome),
        }


def anatomical_matrix(con: Connectome, labels: Sequence[str], synapses: str = "both"
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Synapse counts of the chosen kind re-indexed to ``labels``; also the present mask.

    Both sides are matched by canonical name (``DA06`` == ``DA6``); absent neurons get zero
    rows and columns and ``present = False``.
    """
    if synapses not in SYNAPSES:
        raise ValueError(f"unknown synapse kind {synapses!r}; one of {SYNAPSES}")
    m = {"chemical": con.chemical, "electrical": con.electrical,
         "both": con.chemical + con.electrical}[synapses]
    index = {canonical_neuron_name(x): i for i, x in enumerate(con.labels)}
    src = np.array([index.get(canonical_neuron_name(x), -1) for x in labels], dtype=np.int64)
    present = src >= 0
    out = np.zeros((len(labels), len(labels)))
    ii = np.flatnonzero(present)
    out[np.ix_(ii, ii)] = m[np.ix_(src[ii], src[ii])]
    return out, present


def score(source: str, inferred: np.ndarray, labels: Sequence[str], con: Connectome, *,
          synapses: str = "both", n_perm: int = 1000, seed: int = 0) -> Score:
    """Score one inferred (N, N) matrix with neuron ``labels`` against connectome ``con``.

    Neurons are matched by canonical name; neurons only on one side are dropped and listed.
    Pairs whose inferred score is NaN are excluded.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    canon = [canonical_neuron_name(x) for x in labels]
    inferred = np.asarray(inferred, dtype=float)
    if inferred.shape != (len(canon), len(canon)):
        raise InputError(source, f"matrix is {inferred.shape} for {len(canon)} labels")
    anat, present = anatomical_matrix(con, canon, synapses)
    keep = np.flatnonzero(present & ~np.all(np.isnan(inferred), axis=1))
    con_canon = [canonical_neuron_name(x) for x in con.labels]
    only_inf = [canon[i] for i in range(len(canon)) if not present[i]]
    only_con = [x for x in con_canon if x not in set(canon)]
    lab = [canon[i] for i in keep]
    s_m = inferred[np.ix_(keep, keep)]
    a_m = anat[np.ix_(keep, keep)]
    s, a = pair_values(s_m), pair_values(a_m) > 0
    ok = np.isfinite(s)
    nan = float("nan")
    if ok.sum() < 2 or not a[ok].any() or a[ok].all():
        roc = pr = nan
        null_roc = null_pr = np.full(0, nan)
    else:
        roc = float(roc_auc_score(a[ok], s[ok]))
        pr = float(average_precision_score(a[ok], s[ok]))
        null_roc, null_pr = permutation_null(s_m, a_m, n_perm, seed)
    return Score(
        source=source, labels=lab, inferred=s_m, anatomical=a_m, roc_auc=roc, pr_auc=pr,
        p_roc=p_value(roc, null_roc) if np.isfinite(roc) else nan,
        p_pr=p_value(pr, null_pr) if np.isfinite(pr) else nan,
        null_roc=null_roc, null_pr=null_pr, n_pairs=int(ok.sum()), n_connected=int(a[ok].sum()),
        only_inferred=only_inf, only_connectome=only_con, order=cluster_order(s_m),
    )


# -- inferred matrices from stage files ----------------------------------------------------------
def co_membership(memberships: np.ndarray) -> np.ndarray:
    """Fraction of components in which two neurons share a community (background never counts).

    Parameters
    ----------
    memberships : int array (R, N)
        Community per neuron per component; negative = no community.

    Returns
    -------
    float array (N, N), diagonal zero.
    """
    m = np.atleast_2d(np.asarray(memberships))
    same = (m[:, :, None] == m[:, None, :]) & (m[:, :, None] >= 0)
    c = same.mean(0).astype(float)
    np.fill_diagonal(c, 0.0)
    return c


def inferred_matrices(rundir: str | Path) -> list[tuple[str, np.ndarray, list[str]]]:
    """Inferred interaction matrices found in a run directory: ``(source, matrix, labels)``.

    - ``states.h5``: per recording, the edge probability ``1 - P(none)`` from
      ``adjacency_prob`` (K, N, N, 3), else the first of ``adjacency``, ``W0`` (the shared
      weight prior) or ``weights``, as magnitudes averaged over states;
    - ``communities.h5``: co-membership over components;
    - ``ntf.h5``: weighted sum of ``|component matrices|``.
    """
    rundir = Path(rundir)
    out: list[tuple[str, np.ndarray, list[str]]] = []
    p = find_file(rundir, STATE_FILES)
    if p is not None:
        rec_labels = _recording_labels(rundir, p)
        for rid, fit in states_result.read(p).items():
            m = None
            prob = fit.adjacency_prob
            if prob is not None and prob.ndim == 4:
                # (K, N, N, 3) class probabilities inhibitory/none/excitatory: P(edge)
                m = (1.0 - np.asarray(prob, dtype=float)[..., 1]).mean(0)
            for w in () if m is not None else (fit.adjacency, fit.W0, fit.weights):
                if w is not None and np.ndim(w) >= 2:
                    w = np.abs(np.asarray(w, dtype=float))
                    m = w.reshape(-1, *w.shape[-2:]).mean(0)  # mean over states if any
                    break
            lab = [str(x) for x in fit.labels] if fit.labels is not None else rec_labels.get(rid)
            if m is not None and lab is not None and m.shape == (len(lab), len(lab)):
                out.append((f"hmmglm:{rid}", m, lab))
    p = find_file(rundir, ("communities.h5",))
    if p is not None:
        com = community_result.read(p)
        mems = [c.membership for _, c in sorted(com.components.items())]
        if mems and all(len(x) == len(com.labels) for x in mems):
            out.append(("communities", co_membership(np.stack(mems)), com.labels))
    p = find_file(rundir, NTF_FILES)
    if p is not None:
        ntf = ntf_result.read(p)
        mats, lab = ntf.matrices, ntf.labels
        if mats.shape[-1] == len(lab):
            w = np.asarray(ntf.factors["weights"], dtype=float).ravel()
            if w.size != mats.shape[0]:
                w = np.ones(mats.shape[0])
            out.append(("ntf", np.tensordot(np.abs(w), np.abs(mats), axes=1), lab))
    return out


def _recording_labels(rundir: Path, stage_file: Path) -> dict[str, list[str]]:
    rp = recording_file(rundir, stage_file)
    if rp is None:
        return {}
    return {r.id: list(r.labels) for r in read_recordings(rp, lazy=True)}


# -- connectome lookup ---------------------------------------------------------------------------
def load_connectome(rundir: str | Path, name: str) -> Connectome:
    """Connectome ``name`` from ``RUNDIR/recordings.h5`` (/connectome/<name>) or a file path."""
    rundir = Path(rundir)
    available: list[str] = []
    for fname in ("recordings.h5", "preprocessed.h5", "preprocess.h5"):
        p = rundir / fname
        if not p.exists():
            continue
        with open_h5(p) as f:
            if "connectome" in f:
                available += list(f["connectome"])
                if name in f["connectome"]:
                    return read_connectome(f["connectome"][name])
    path = Path(name)
    if path.exists():
        items = [x for x in read(path) if isinstance(x, Connectome)]
        if not items:
            raise InputError(path, "holds no connectome")
        return items[0]
    raise ParamError("connectome", f"no connectome {name!r} in {rundir} (available: "
                     f"{', '.join(available) or 'none'}) and no such file")


def compare_connectome(rundir: str | Path, connectome: str, params: CompareParams | None = None,
                       *, seed: int = 0, out: str | Path | None = None, **kw: Any) -> Path:
    """Score every inferred matrix in ``rundir`` against ``connectome``; write ``compare.h5``.

    ``params`` (:class:`~neurodyn.analysis.params.CompareParams`: ``synapses``, ``n_perm``;
    keywords override single fields).

    Layout: ``/<source with / -> |>/{labels, inferred, anatomical, order, null_roc, null_pr,
    only_inferred, only_connectome}`` with attrs ``source, roc_auc, pr_auc, p_roc, p_pr,
    n_neurons, n_pairs, n_connected, chance_pr_auc, n_only_inferred, n_only_connectome``;
    root attrs ``connectome`` and ``synapses``.
    """
    rundir = Path(rundir)
    if not rundir.is_dir():
        raise InputError(rundir, "not a run directory")
    p = CompareParams.build(params, **kw)
    synapses, n_perm = p.synapses.value, p.n_perm
    out = Path(out) if out is not None else rundir / "compare.h5"
    # never replace another stage's output of the run, nor the connectome file
    check_output(out, [*(p for p in rundir.glob("*.h5") if p.name != "compare.h5"), connectome])
    con = load_connectome(rundir, connectome)
    sources = inferred_matrices(rundir)
    if not sources:
        raise InputError(rundir, "no inferred interactions (states.h5, communities.h5 or ntf.h5 "
                         "with neuron labels) to compare")
    scores = [score(src, m, lab, con, synapses=synapses, n_perm=n_perm, seed=seed)
              for src, m, lab in sources]
    scores = [sc for sc in scores if len(sc.labels) >= 2]
    if not scores:
        names = sorted({x for _, _, lab in sources for x in lab})
        raise ParamError("connectome", f"{con.name} shares no neuron names with the inferred "
                         f"matrices (they have e.g. {', '.join(names[:5])})")
    inputs = [p for p in (rundir / n for n in ("states.h5", "hmmglm.h5", "communities.h5",
                                                "ntf.h5", "recordings.h5")) if p.exists()]
    params = {"connectome": connectome, **p.to_dict()}
    res = compare_result.CompareResult(con.name, synapses, {sc.source: sc.result() for sc in scores})
    with atomic_h5(out, stage=compare_result.STAGE, params=params, inputs=inputs, seed=seed) as f:
        compare_result.write(f, res)
    return out


def read_scores(path: str | Path) -> list[dict[str, Any]]:
    """Rows of numbers per source from ``compare.h5`` (for the report and the CLI)."""
    rows = []
    for source, sc in compare_result.read(path).scores.items():
        row: dict[str, Any] = {"source": source}
        row.update((k, v.item() if hasattr(v, "item") else v)
                   for k, v in sc.attrs.items() if k != "source")
        if sc.only_inferred is not None:
            row["only_inferred"] = [str(x) for x in sc.only_inferred]
        rows.append(row)
    return rows
