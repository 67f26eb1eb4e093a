"""Nested (hierarchical) weighted SBM: fit the hierarchy, choose the model variant.

Level 0 partitions the nodes of the weighted graph; each level above partitions the blocks of
the level below, whose edge counts form a multigraph (self-loops = edges inside a block),
until a level has one block. The total description length is that of :mod:`wsbm`
(:func:`wsbm.nested_description_length`). The number of blocks at every level is inferred by
minimising it.

Search, for each variant (degree-corrected; non-degree-corrected simple-graph code; the
multigraph code on request): level-0 snapshots (every number of blocks reached) from
:func:`fit.agglomerate` started from singletons (``n_init`` times) and from Leiden partitions
(weighted modularity at several resolutions: coarse and fine starts, the latter refined by
the same merges); the best snapshots are polished by :func:`fit.refine`; the upper levels are
fitted greedily for the promising ones and the shortest exact nested description length wins.
Each variant's search has its own random stream, so ``"auto"`` returns exactly the shortest of
the variants fitted alone.

Weights are modelled at level 0 only, by one of three codes (``weights``; ``"auto"`` fits
all and keeps the shortest description): exponential (one rate per level-0 block pair, Gamma
prior integrated out; the default), log-normal (the log-weights less least-squares node
factors, normal per block pair, mean and variance integrated out; see
:func:`wsbm.lognormal_statistics`), or split log-normal (each node has a factor for its edges
inside its block and one for the others, refitted for each partition:
:class:`wsbm.SplitFactors`). The levels above describe the block edge counts, as in
Peixoto's 2014 nested SBM. (Peixoto 2018 also places the weight hyperparameters in the hierarchy; not done
here.) The search is greedy (merges and zero-temperature node moves), so it returns a local
minimum of the description length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurodyn.community import wsbm
from neurodyn.community.fit import (
    LevelGraph,
    agglomerate,
    level_objective,
    refine,
    refine_split,
)
from neurodyn.community.leiden import leiden
from neurodyn.community.wsbm import ENS_MULTI


@dataclass
class NestedSBM:
    """A fitted nested weighted SBM.

    Attributes
    ----------
    levels : list of int arrays
        ``levels[0]`` (N,) block of each node; ``levels[l]`` (B_{l-1},) block of each level
        ``l-1`` block; the last level has one block.
    description_length : float
        Nested description length, nats.
    degree_corrected : bool
        Variant chosen.
    candidates : dict
        Description length of the best fit of each variant tried (``"dc"``, ``"ndc"``,
        ``"ndc_dense"``; ``"_lognormal"`` or ``"_split"`` appended for the log-normal codes).
    ensemble : str
        Key of the chosen variant in ``candidates``.
    """

    levels: list[np.ndarray]
    description_length: float
    degree_corrected: bool
    candidates: dict[str, float] = field(default_factory=dict)
    ensemble: str = ""

    @property
    def membership(self) -> np.ndarray:
        """(N,) level-0 block of each node."""
        return self.levels[0]

    @property
    def n_blocks(self) -> int:
        return int(self.levels[0].max()) + 1

    def level_memberships(self) -> list[np.ndarray]:
        """Per level, the (N,) block of each node at that level (composed down the hierarchy)."""
        out = [self.levels[0]]
        for bl in self.levels[1:]:
            out.append(bl[out[-1]])
        return out


def block_matrix(W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean weight between blocks: ``out[r, s]`` = mean of ``W[i, j]`` over node pairs
    ``i in r, j in s, i != j``; shape (B, B)."""
    W = np.asarray(W, dtype=np.float64).copy()
    np.fill_diagonal(W, 0.0)
    b = np.asarray(b)
    B = int(b.max()) + 1
    onehot = np.zeros((b.size, B))
    onehot[np.arange(b.size), b] = 1.0
    sums = onehot.T @ W @ onehot
    sizes = onehot.sum(axis=0)
    pairs = np.outer(sizes, sizes) - np.diag(sizes)
    return np.divide(sums, pairs, out=np.zeros_like(sums), where=pairs > 0)


def fit_hierarchy(m: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Greedy upper levels above block edge counts ``m`` (B, B); last level has one block."""
    levels: list[np.ndarray] = []
    Ab = np.asarray(m, dtype=np.int64)
    while Ab.shape[0] > 1:
        g = LevelGraph(Ab, np.zeros(Ab.shape), ENS_MULTI, False)
        snaps = agglomerate(g, rng)
        snaps = [s for s in snaps if s[0].max() + 1 < Ab.shape[0]]
        bl = min(snaps, key=lambda s: s[1])[0]
        levels.append(bl)
        Bl = int(bl.max()) + 1
        _, Ab, _ = wsbm.block_stats(Ab, np.zeros(Ab.shape), bl, Bl)
    if not levels:
        levels.append(np.zeros(Ab.shape[0], np.int64))
    return levels


def _nested_dl(g: LevelGraph, b: np.ndarray, cache: dict | None = None):
    """Nested description length of level-0 partition ``b`` and its levels. The hierarchy
    search has a fixed seed, so a partition always gets the same value (wherever it comes
    from: the search, Leiden, a user). The levels above depend on the partition alone, not on
    the level-0 code: ``cache`` (partition bytes -> levels above and their length) shares
    them between the codes of one fit."""
    b = wsbm.compact(b)
    B = int(b.max()) + 1
    n, m, xs = wsbm.block_stats(g.A, g.X, b, B)
    dl = wsbm.level_dl(n, m, xs, g.ens, g.weighted, g.alpha, g.beta)
    dl += wsbm.degree_terms(g.A, b, B, g.ens, g.table)
    key = b.tobytes()
    if cache is None or key not in cache:
        upper = fit_hierarchy(m, np.random.default_rng(0))
        found = upper, wsbm.upper_levels_dl(m, upper)
        if cache is None:
            cache = {}
        cache[key] = found
    upper, upper_dl = cache[key]
    return float(dl + upper_dl + g.wconst), [b, *upper]


VARIANT_KEYS = {(True, False): "dc", (False, False): "ndc", (False, True): "ndc_dense"}
#: weight codes: name -> (wsbm code, suffix of the variant key)
WEIGHT_CODES = {"exponential": (wsbm.W_EXP, ""), "lognormal": (wsbm.W_LOGNORMAL, "_lognormal"),
                "split": (wsbm.W_LOGNORMAL, "_split")}


def weight_code_of(ensemble: str) -> str:
    """The weight code of a variant key such as ``"dc_lognormal"``."""
    for code, (_, suffix) in WEIGHT_CODES.items():
        if suffix and ensemble.endswith(suffix):
            return code
    return "exponential"


def topology_key(ensemble: str) -> str:
    """The topology part of a variant key: ``"ndc_dense_split"`` -> ``"ndc_dense"``."""
    return ensemble.removesuffix(WEIGHT_CODES[weight_code_of(ensemble)][1])


def weight_codes(weights: str) -> list[str]:
    """The weight codes to compare: ``"auto"`` = all of them."""
    if weights == "auto":
        return list(WEIGHT_CODES)
    if weights not in WEIGHT_CODES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_CODES)} or 'auto', got "
                         f"{weights!r}")  # fmt: skip
    return [weights]


def level_graph(A: np.ndarray, X: np.ndarray, dc: bool, dense: bool, weighted: bool,
                weights: str, table: np.ndarray | None = None,
                lognormal: tuple | None = None) -> LevelGraph:  # fmt: skip
    """Level 0 of the model: topology code ``(dc, dense)``, weight code ``weights``
    (``lognormal``: :func:`wsbm.lognormal_statistics` of the graph, if already computed)."""
    if table is None:
        table = wsbm.partitions_table_for(A) if dc else np.zeros((1, 1))
    ens = wsbm.level0_ensemble(dc, dense)
    if not weighted:
        return LevelGraph(A, X, ens, wsbm.W_NONE, 1.0, 1.0, table)
    if weights == "lognormal":
        Y, v0, const = lognormal or wsbm.lognormal_statistics(A, X)
        return LevelGraph(A, Y, ens, wsbm.W_LOGNORMAL, 0.0, v0, table, const)
    if weights == "split":  # the weights' statistics depend on the partition: see split_graph
        return LevelGraph(A, X, ens, wsbm.W_NONE, 1.0, 1.0, table)
    alpha, beta = wsbm.weight_prior(X, A)
    return LevelGraph(A, X, ens, wsbm.W_EXP, alpha, beta, table)


def split_graph(g: LevelGraph, split: wsbm.SplitFactors, b: np.ndarray) -> LevelGraph:
    """Level 0 under the split weight code at partition ``b`` (``g``: its topology code)."""
    Y, const, v0 = split.statistics(b)
    return LevelGraph(g.A, Y, g.ens, wsbm.W_LOGNORMAL, 0.0, v0, g.table, const)


#: Leiden (weighted modularity) resolutions whose partitions seed the search (a third start at
#: 4.0 cost 50% more time for 1.6 nats shorter descriptions on the issue-18 graphs, NMI equal)
LEIDEN_RESOLUTIONS = (1.0, 2.0)


def model_variants(degree_corrected: bool | str, dense: bool | str) -> list[tuple[bool, bool]]:
    """The ``(degree corrected, dense)`` codes to compare.

    ``dense="auto"`` means the simple-graph code for the non-degree-corrected variant: on a
    simple graph its description length is never longer than the multigraph code's, at any
    partition (``C(n, m) <= n^m / m!`` pair by pair), so fitting both would only cost time.
    """
    if degree_corrected not in ("auto", True, False):
        raise ValueError(f"degree_corrected must be True, False or 'auto', got {degree_corrected!r}")
    if dense not in ("auto", True, False):
        raise ValueError(f"dense must be True, False or 'auto', got {dense!r}")
    variants: list[tuple[bool, bool]] = []
    if degree_corrected in ("auto", False):
        variants.append((False, dense is not False))
    if degree_corrected in ("auto", True):
        variants.append((True, False))
    return variants


def leiden_starts(W: np.ndarray, seed: int, resolutions=None) -> list[np.ndarray]:
    """Distinct Leiden partitions of ``W`` at several resolutions (higher = finer; default
    :data:`LEIDEN_RESOLUTIONS`)."""
    out: list[np.ndarray] = []
    for res in LEIDEN_RESOLUTIONS if resolutions is None else resolutions:
        b = wsbm.compact(leiden(W, resolution=res, seed=seed))
        if not any(np.array_equal(b, o) for o in out):
            out.append(b)
    return out


def _search(g: LevelGraph, rng: np.random.Generator, n_init: int, n_candidates: int,
            starts: list[np.ndarray], n_nested: int = 6, cache: dict | None = None):  # fmt: skip
    """Lowest nested description length found for one variant: ``(dl, levels, candidates)``.

    Level-0 candidates: the snapshots of ``n_init`` agglomerations from singletons and of one
    agglomeration from each start (its node-move sweeps, then merges down from it). Per
    agglomeration the ``n_candidates`` best snapshots by flat description length are polished
    by :func:`fit.refine`; the hierarchy is fitted for them, for the ``n_nested`` best
    snapshots and for the starts as given; the shortest nested description length wins.
    ``candidates``: the distinct level-0 partitions compared.
    """
    chosen: list[np.ndarray] = []
    for init in [None] * max(0, n_init) + list(starts):
        snaps = agglomerate(g, rng, init=init)
        order = np.argsort([x[1] for x in snaps])
        chosen += [snaps[i][0] for i in order[:n_nested]]
        chosen += [refine(g, snaps[i][0], rng) for i in order[:n_candidates]]
    chosen += list(starts)  # as given: the result is never longer than a start
    candidates = _distinct(chosen)
    best = min((_nested_dl(g, b, cache) for b in candidates), key=lambda x: x[0])
    return best[0], best[1], candidates


def _distinct(parts: list[np.ndarray]) -> list[np.ndarray]:
    """The distinct partitions among ``parts`` (compact labels), in order of first appearance."""
    out: dict[bytes, np.ndarray] = {}
    for b in parts:
        b = wsbm.compact(b)
        out.setdefault(b.tobytes(), b)
    return list(out.values())


def _search_split(g: LevelGraph, split: wsbm.SplitFactors, candidates: list[np.ndarray],
                  starts: list[np.ndarray], rng: np.random.Generator, n_polish: int = 2,
                  n_nested: int = 3, cache: dict | None = None):  # fmt: skip
    """Lowest nested description length under the split weight code (``g``: the topology
    code) among ``candidates`` (another search's partitions, from which the ``n_polish`` best
    by flat description length are polished by :func:`fit.refine_split`) and the ``starts``
    (polished too, and as given: the result is never longer than a start)."""
    flat = sorted(((level_objective(g, b) + split.const + split.weight_dl(b), i)
                   for i, b in enumerate(candidates)))  # fmt: skip
    pool = list(starts) + [candidates[i] for _, i in flat[:n_nested]]
    polish = _distinct(list(starts) + [candidates[i] for _, i in flat[:n_polish]])
    pool += [refine_split(g, split, b, rng)[0] for b in polish]
    best = min((_nested_dl(split_graph(g, split, b), b, cache) for b in _distinct(pool)),
               key=lambda x: x[0])  # fmt: skip
    return best[0], best[1]


def _stream(seed: int, topology: str, code: str) -> np.random.Generator:
    """The random stream of one variant's search: it does not depend on which other variants
    are fitted (so ``"auto"`` is never longer than a variant forced alone)."""
    stream = [list(VARIANT_KEYS.values()).index(topology)]
    stream += [list(WEIGHT_CODES).index(code)] if code != "exponential" else []
    return np.random.default_rng([seed, *stream])


def fit_wsbm(
    W: np.ndarray,
    *,
    degree_corrected: bool | str = "auto",
    n_init: int = 1,
    seed: int = 0,
    threshold: float = 0.0,
    weighted: bool = True,
    n_candidates: int = 2,
    dense: bool | str = "auto",
    leiden_seeds: bool = True,
    weights: str = "exponential",
) -> NestedSBM:
    """Fit a nested SBM with exponential edge weights to a weighted graph.

    Parameters
    ----------
    W : (N, N) array
        Symmetric non-negative weights (affinities); entries ``<= threshold`` are non-edges;
        the diagonal is ignored.
    degree_corrected : bool or "auto"
        ``"auto"`` fits both variants and keeps the shorter description length.
    n_init : int
        Agglomerations from singletons per variant (different node orders and tie-breaking);
        0 leaves only the Leiden starts (``leiden_seeds`` must then be on).
    seed : int
        Seed of every random choice; the result is deterministic for a fixed seed, and each
        variant's search does not depend on which other variants are fitted (so ``"auto"``
        is never longer than the variant forced alone).
    weighted : bool
        Model the weights (``False``: topology only).
    dense : bool or "auto"
        Edge code of the non-degree-corrected variant: ``False`` graph-tool's default
        multigraph ensemble (``"ndc"``), ``True`` a simple graph, binomial per block pair
        (``"ndc_dense"``; much shorter for dense graphs such as affinity patterns);
        ``"auto"`` = ``True``, never longer on simple graphs (:func:`model_variants`). All
        codes describe the same data, so comparing them is a valid model selection (the
        degree-corrected variant is the multigraph configuration ensemble).
    n_candidates : int
        Snapshots per agglomeration (best by flat description length) polished by
        :func:`fit.refine`.
    leiden_seeds : bool
        Also start from Leiden partitions (weighted modularity at resolutions
        ``LEIDEN_RESOLUTIONS``): each is polished and agglomerated further.
    weights : {"exponential", "auto", "lognormal", "split"}
        Weight code: exponential per block pair (graph-tool's ``real-exponential``; the
        default), or log-normal per block pair after removing least-squares node factors
        (:func:`wsbm.lognormal_statistics`; like graph-tool's ``real-normal`` on
        log-weights), or ``"split"``: the same with two factors per node, one for its edges
        inside its block and one for the others (:class:`wsbm.SplitFactors`; searched among
        the log-normal code's partitions and the Leiden starts, polished by
        :func:`fit.refine_split`); ``"auto"`` fits all three with each topology code and keeps
        the shortest. The log-normal codes are not the default: on affinity patterns with
        planted co-active groups (tests/pipeline/test_connectome_e2e.py) the one-factor code
        is shorter but splits the groups, since on the log scale the many near-zero
        affinities weigh as much as the large ones.

    Returns
    -------
    NestedSBM
    """
    A, X = wsbm.edges_from_weights(W, threshold)
    N = A.shape[0]
    if N == 0:
        raise ValueError("empty graph")
    if n_init < 1 and not leiden_seeds:
        raise ValueError("n_init must be >= 1 without Leiden seeds")
    variants = model_variants(degree_corrected, dense)
    codes = weight_codes(weights) if weighted else ["exponential"]
    if A.sum() == 0:  # no edges: nothing to learn, one block
        variants, codes = variants[:1], codes[:1]
    starts = leiden_starts(np.where(A > 0, W, 0.0), seed) if leiden_seeds and A.sum() else []
    ln_stats = wsbm.lognormal_statistics(A, X) if {"lognormal", "split"} & set(codes) else None
    split = wsbm.SplitFactors(A, X) if "split" in codes else None
    best: tuple[float, list[np.ndarray], bool, str] | None = None
    candidates: dict[str, float] = {}
    upper: dict = {}  # levels above each level-0 partition compared (shared by the codes)
    for dc, dn in variants:
        table = wsbm.partitions_table_for(A) if dc else np.zeros((1, 1))
        topo = VARIANT_KEYS[(dc, dn)]
        found = {}  # weight code -> (dl, levels, level-0 partitions compared)
        for code in codes:
            if code == "split":  # searched among the log-normal code's partitions
                if "lognormal" not in found:
                    g = level_graph(A, X, dc, dn, weighted, "lognormal", table, ln_stats)
                    found["lognormal"] = _search(g, _stream(seed, topo, "lognormal"), n_init,
                                                 n_candidates, starts, cache=upper)  # fmt: skip
                g = level_graph(A, X, dc, dn, weighted, "split", table)
                dl, levels = _search_split(g, split, found["lognormal"][2], starts,
                                           _stream(seed, topo, "split"), cache=upper)  # fmt: skip
            else:
                if code not in found:
                    g = level_graph(A, X, dc, dn, weighted, code, table, ln_stats)
                    found[code] = _search(g, _stream(seed, topo, code), n_init, n_candidates,
                                          starts, cache=upper)  # fmt: skip
                dl, levels, _ = found[code]
            key = topo + (WEIGHT_CODES[code][1] if weighted else "")
            candidates[key] = dl
            if best is None or dl < best[0] - 1e-9:
                best = (dl, levels, dc, key)
    assert best is not None
    return NestedSBM(best[1], best[0], best[2], candidates, best[3])


def describe_partition(
    W: np.ndarray,
    b: np.ndarray,
    *,
    degree_corrected: bool = False,
    threshold: float = 0.0,
    weighted: bool = True,
    dense: bool = False,
    weights: str = "exponential",
) -> NestedSBM:
    """Wrap a given level-0 partition (e.g. from Leiden) in a nested SBM: fit the levels above
    and compute its description length, so that other methods are scored on the same scale.

    ``degree_corrected``, ``dense`` and ``weights`` (``"exponential"``, ``"lognormal"`` or
    ``"split"``) pick the code (see :func:`fit_wsbm`). Deterministic: :func:`fit_wsbm` gives a
    partition it evaluates the same description length."""
    if weights not in WEIGHT_CODES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_CODES)}, got {weights!r}")
    A, X = wsbm.edges_from_weights(W, threshold)
    dc, dn = bool(degree_corrected), bool(dense) and not degree_corrected
    g = level_graph(A, X, dc, dn, weighted, weights)
    if weighted and weights == "split":
        g = split_graph(g, wsbm.SplitFactors(A, X), b)
    dl, levels = _nested_dl(g, b)
    key = VARIANT_KEYS[(dc, dn)] + (WEIGHT_CODES[weights][1] if weighted else "")
    return NestedSBM(levels, dl, degree_corrected, {key: dl}, key)
