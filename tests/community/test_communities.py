"""Weighted nested SBM (neurodyn.community): description length, recovery, stage and CLI."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.special import gammaln
from sklearn.metrics import normalized_mutual_info_score as nmi

from neurodyn.community import fit, wsbm
from neurodyn.community.benchmark_graphs import lfr_weighted, planted_partition
from neurodyn.community.leiden import leiden
from neurodyn.community.nested import describe_partition, fit_wsbm, weight_code_of
from neurodyn.io.store import atomic_h5, put


# -- slow, obviously-correct reference --------------------------------------------------------
def lC(n, k):
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def partitions_bruteforce(m: int, n: int) -> int:
    """Number of partitions of m into at most n parts, by enumeration."""
    def rec(m, n, largest):
        if m == 0:
            return 1
        if n == 0:
            return 0
        return sum(rec(m - p, n - 1, p) for p in range(1, min(m, largest) + 1))

    return rec(m, n, m)


def reference_dl(W: np.ndarray, b: np.ndarray, dc: bool, dense: bool = False) -> float:
    """Flat description length written directly from the formulas, pair by pair."""
    N = W.shape[0]
    b = np.asarray(b)
    blocks = sorted(set(b.tolist()))
    B = len(blocks)
    n = {r: int(np.sum(b == r)) for r in blocks}
    m = Counter()
    x = Counter()
    deg = np.zeros(N, int)
    for i, j in itertools.combinations(range(N), 2):
        if W[i, j] > 0:
            key = tuple(sorted((b[i], b[j])))
            m[key] += 1
            x[key] += W[i, j]
            deg[i] += 1
            deg[j] += 1
    E = sum(m.values())
    beta = 2 * sum(x.values()) / deg.sum()
    S = lC(N - 1, B - 1) + gammaln(N + 1) - sum(gammaln(v + 1) for v in n.values()) + np.log(N)
    S += lC(B * (B + 1) / 2 + E - 1, E)
    for r, s in itertools.combinations_with_replacement(blocks, 2):
        mrs = m[(r, s)]
        if not dc and dense:
            S += lC(n[r] * (n[r] - 1) / 2, mrs) if r == s else lC(n[r] * n[s], mrs)
        else:
            S -= (mrs * np.log(2) + gammaln(mrs + 1)) if r == s else gammaln(mrs + 1)
        if mrs:
            S += -np.log(beta) + (mrs + 1) * np.log(x[(r, s)] + beta) - gammaln(mrs + 1)
            S += mrs * (24 * np.log(2) - np.log(beta))  # weights at resolution beta / 2^24
    if not dc and not dense:
        S += sum(deg[b == r].sum() * np.log(n[r]) for r in blocks)
    if dc:
        S -= gammaln(deg + 1).sum()
        for r in blocks:
            e_r = int(deg[b == r].sum())
            S += gammaln(e_r + 1) + gammaln(n[r] + 1)
            S -= sum(gammaln(c + 1) for c in Counter(deg[b == r].tolist()).values())
            S += np.log(partitions_bruteforce(e_r, n[r])) if e_r < 60 else np.nan
    return float(S)


def random_graph(N=14, p=0.3, seed=0):
    rng = np.random.default_rng(seed)
    W = np.triu((rng.random((N, N)) < p) * rng.exponential(1.0, (N, N)), 1)
    return W + W.T


# -- description length ---------------------------------------------------------------------
def test_lgamma_lookup_matches_lgamma():
    import math

    for x in [1.0, 2.0, 17.0, 65535.0, 65536.0, 1e6, 0.5, 3.25, 1234.5]:
        assert wsbm.lgam(x) == pytest.approx(math.lgamma(x), rel=1e-15, abs=1e-15)


def test_partition_table_matches_enumeration():
    table = wsbm.log_partitions_table(12, 6)
    for m_, n_ in itertools.product(range(13), range(1, 7)):
        assert np.isclose(table[m_, n_], np.log(partitions_bruteforce(m_, n_)))


@pytest.mark.parametrize(("dc", "dense"), [(False, False), (False, True), (True, False)])
def test_description_length_matches_reference(dc, dense):
    W = random_graph(N=10, p=0.35, seed=1)
    rng = np.random.default_rng(2)
    for B in (1, 2, 3, 5):
        b = rng.integers(0, B, W.shape[0])
        ours = wsbm.description_length(W, b, degree_corrected=dc, dense=dense)
        assert np.isclose(ours, reference_dl(W, b, dc, dense), rtol=1e-10, atol=1e-8)


def test_weight_unit_does_not_change_dl_differences():
    W, truth = planted_partition([8, 8], 0.6, 0.2, w_in=2.0, w_out=0.5, seed=3)
    other = np.random.default_rng(0).permutation(truth)
    for b in (truth, other):  # weights coded relative to their mean: no unit, positive
        dl = wsbm.description_length(W, b)
        assert dl > 0 and np.isclose(dl, wsbm.description_length(1e-3 * W, b))


@pytest.mark.parametrize(("ens", "code"), [
    (wsbm.ENS_SIMPLE, wsbm.W_EXP), (wsbm.ENS_DC, wsbm.W_EXP), (wsbm.ENS_MULTI, wsbm.W_NONE),
    (wsbm.ENS_POISSON, wsbm.W_EXP), (wsbm.ENS_SIMPLE, wsbm.W_LOGNORMAL),
    (wsbm.ENS_DC, wsbm.W_LOGNORMAL)])  # fmt: skip
def test_incremental_moves_and_merges_match_full_recomputation(ens, code):
    W = random_graph(N=12, p=0.4, seed=4)
    A, X = wsbm.edges_from_weights(W)
    if ens == wsbm.ENS_MULTI:  # multigraph with self-loops
        A = A * np.random.default_rng(5).integers(1, 4, A.shape)
        A = np.triu(A) + np.triu(A, 1).T
        np.fill_diagonal(A, [1, 0, 2] * 4)
        X = np.zeros(A.shape)
    alpha, beta = wsbm.weight_prior(X, A)
    if code == wsbm.W_LOGNORMAL:
        X, beta, _ = wsbm.lognormal_statistics(A, X)
    g = fit.LevelGraph(A, X, ens, code, alpha, beta, wsbm.partitions_table_for(A))
    rng = np.random.default_rng(6)
    b = rng.integers(0, 4, 12)
    b[11] = 5  # a singleton block: moving its node away empties it
    state = fit._State(g, b)
    base = fit.level_objective(g, b)
    for i, s in itertools.product(range(12), [0, 1, 2, 3, 5, 9]):  # 9: a new (empty) block
        if b[i] == s:
            continue
        moved = b.copy()
        moved[i] = s
        delta = fit.move_delta_kernel(*state.args()[:-1], state.args()[-1], i, s)
        assert np.isclose(delta, fit.level_objective(g, moved) - base, atol=1e-8)
    # sweeps (cached pair sums updated as nodes move): the gain is the recomputed decrease
    gains = []
    for allow_new in (True, False):
        before = fit.level_objective(g, state.b)
        args = state.args()
        order = rng.permutation(12).astype(np.int64)
        gain = fit.sweep_kernel(*args, order, 1e-9, allow_new, 3 if allow_new else 24)
        assert np.isclose(before - fit.level_objective(g, state.b), gain, atol=1e-8)
        n, m, _ = wsbm.block_stats(A, X, state.b, 12)
        assert np.array_equal(n, state.n) and np.array_equal(m, state.m)
        gains.append(gain)
    assert gains[0] > 0  # nodes moved
    state = fit._State(g, b)
    # merges: a round down to 2 blocks reaches exactly the recomputed statistics
    args = state.args()
    fit.merge_round_kernel(*args, 2, np.zeros(12), 24)
    n, m, xs = wsbm.block_stats(A, X, state.b, 12)
    assert np.array_equal(n, state.n) and np.array_equal(m, state.m)
    assert np.allclose(xs, state.xs)
    assert args[-1][0] == 2 == len(np.unique(state.b))


def test_compact_relabels_in_order_of_first_appearance():
    assert wsbm.compact(np.array([7, 7, 2, 9, 2])).tolist() == [0, 0, 1, 2, 1]
    assert wsbm.compact(np.array([5, -1, 5, 300])).tolist() == [0, 1, 0, 2]  # any labels
    b = np.random.default_rng(0).integers(0, 40, 30)
    first = {x: i for i, x in reversed(list(enumerate(b)))}
    rank = {x: r for r, x in enumerate(sorted(first, key=first.get))}
    assert wsbm.compact(b).tolist() == [rank[x] for x in b]


def test_merge_delta_matches_full_recomputation():
    W = random_graph(N=12, p=0.4, seed=7)
    A, X = wsbm.edges_from_weights(W)
    alpha, beta = wsbm.weight_prior(X, A)
    for ens in (wsbm.ENS_SIMPLE, wsbm.ENS_DC, wsbm.ENS_POISSON):
        g = fit.LevelGraph(A, X, ens, True, alpha, beta, wsbm.partitions_table_for(A))
        b = np.arange(12) % 4
        st = fit._State(g, b)
        d = fit._merge_delta(ens, True, alpha, beta, g.table, st.n, st.m, st.xs, st.e, st.hist,
                             st.seta, 1, 2, 4, st.E, 12, np.arange(4), 4)
        merged = np.where(b == 2, 1, b)
        assert np.isclose(d, fit.level_objective(g, merged) - fit.level_objective(g, b))


def test_planted_partition_has_shorter_description_length_than_random_ones():
    W, truth = planted_partition([15, 15, 15], 0.6, 0.1, w_in=2.0, w_out=0.5, seed=8)
    rng = np.random.default_rng(9)
    for dl in (
        lambda b: wsbm.description_length(W, b),
        lambda b: wsbm.nested_description_length(W, [b]),
    ):
        planted = dl(truth)
        assert all(planted < dl(rng.permutation(truth)) - 50 for _ in range(5))
        assert planted < dl(np.zeros_like(truth)) - 20
        assert planted < dl(np.arange(truth.size)) - 50


def test_weights_alone_identify_blocks_of_a_complete_graph():
    """Complete graph: topology says nothing; only the exponential weight model can separate."""
    rng = np.random.default_rng(10)
    truth = np.repeat([0, 1, 2], 12)
    same = truth[:, None] == truth[None, :]
    W = np.triu(rng.exponential(1.0, (36, 36)) * np.where(same, 4.0, 0.5), 1)
    W = W + W.T
    res = fit_wsbm(W, seed=0, n_init=1)
    assert res.n_blocks == 3 and nmi(truth, res.membership) >= 0.95
    unweighted = fit_wsbm(W, seed=0, n_init=1, weighted=False)
    assert unweighted.n_blocks == 1


# -- recovery -------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [[20, 20], [14, 14, 14], [12, 12, 12, 12, 12]])
def test_recovers_planted_partition_and_number_of_blocks(sizes):
    W, truth = planted_partition(sizes, 0.7, 0.08, w_in=3.0, w_out=0.6, seed=11)
    res = fit_wsbm(W, seed=1, n_init=1)
    assert res.n_blocks == len(sizes)
    assert nmi(truth, res.membership) >= 0.95
    assert res.description_length <= wsbm.nested_description_length(W, [truth]) + 1e-6


def test_no_structure_gives_one_block():
    W, _ = planted_partition([30], 0.3, 0.3, seed=12)
    assert fit_wsbm(W, seed=0, n_init=1).n_blocks == 1


def test_degree_corrected_variant_on_heterogeneous_degrees():
    """Two blocks, log-normal degree propensities: at the planted partition the degree-corrected
    code is much shorter, and the degree-corrected fit recovers the two blocks (the
    non-degree-corrected one would split them by degree)."""
    rng = np.random.default_rng(1)
    N = 120
    truth = np.repeat([0, 1], N // 2)
    theta = np.exp(rng.normal(0.0, 1.0, N))
    theta /= theta.mean()
    P = np.clip(0.3 * np.outer(theta, theta) * np.where(truth[:, None] == truth, 1.0, 0.15), 0, 1)
    A = np.triu(rng.random((N, N)) < P, 1)
    W = np.triu((A + A.T) * rng.exponential(1.0, (N, N)), 1)
    W = W + W.T
    dc = describe_partition(W, truth, degree_corrected=True).description_length
    ndc = describe_partition(W, truth, degree_corrected=False).description_length
    assert dc < ndc - 100
    res = fit_wsbm(W, seed=0, n_init=1, degree_corrected=True)
    assert res.degree_corrected and res.description_length <= dc + 1e-6
    # two low-degree nodes sit in the other block: a slightly shorter code than the planted one
    assert res.n_blocks == 2 and nmi(truth, res.membership) >= 0.85


def test_auto_keeps_the_shorter_variant():
    W, _ = planted_partition([15, 15], 0.5, 0.1, seed=2)
    res = fit_wsbm(W, seed=0, n_init=1)
    assert set(res.candidates) == {"dc", "ndc_dense"}
    assert res.description_length == min(res.candidates.values())
    assert res.candidates[res.ensemble] == res.description_length
    assert res.degree_corrected == (res.ensemble == "dc")


def test_simple_graph_code_never_longer_than_multigraph_code():
    """Why ``dense="auto"`` fits only the simple-graph non-degree-corrected code."""
    W = random_graph(N=30, p=0.4, seed=21)
    rng = np.random.default_rng(22)
    for B in (1, 2, 4, 9, 30):
        b = rng.integers(0, B, 30)
        assert (wsbm.description_length(W, b, dense=True)
                <= wsbm.description_length(W, b, dense=False) + 1e-9)


def test_auto_equals_the_best_forced_variant_and_beats_leiden_partition():
    """Each variant's search is seeded on its own: auto's description length is exactly the
    minimum of the forced fits (topology and weight codes), and no longer than Leiden's
    partition under the same code. On strength-weighted LFR graphs (weights ~ products of node
    factors, internal and external ones) the split code describes the graph much shorter than
    the one-factor log-normal code, and that much shorter than the exponential one."""
    W, truth = lfr_weighted(n=60, avg_degree=12, max_degree=30, mu=0.3, min_community=10,
                            max_community=25, strength_exponent=1.0, seed=23)
    auto = fit_wsbm(W, seed=4, weights="auto")
    forced = [fit_wsbm(W, seed=4, degree_corrected=dc, weights=w)
              for dc in (True, False) for w in ("exponential", "lognormal", "split")]
    assert auto.candidates == {f.ensemble: f.description_length for f in forced}
    assert set(auto.candidates) == {"dc", "ndc_dense", "dc_lognormal", "ndc_dense_lognormal",
                                    "dc_split", "ndc_dense_split"}  # fmt: skip
    assert auto.description_length == min(auto.candidates.values())
    assert auto.ensemble.endswith("_split") and np.array_equal(auto.membership, wsbm.compact(truth))
    c = auto.candidates
    assert c["dc_split"] < c["dc_lognormal"] - 100 and c["dc_lognormal"] < c["dc"] - 100
    lb = leiden(W, seed=4)
    for f in forced:
        described = describe_partition(W, lb, degree_corrected=f.degree_corrected, dense=True,
                                       weights=weight_code_of(f.ensemble))
        assert f.description_length <= described.description_length + 1e-9


def test_hierarchy_finds_groups_of_blocks():
    """Six blocks in two super-groups: the level above the blocks has two groups."""
    sizes = [14] * 6
    truth = np.repeat(np.arange(6), 14)
    sup = truth // 3
    rng = np.random.default_rng(1)
    P = np.where(truth[:, None] == truth, 0.8, np.where(sup[:, None] == sup, 0.3, 0.02))
    A = np.triu(rng.random((84, 84)) < P, 1)
    W = np.triu(A * rng.exponential(1.0, (84, 84)), 1)
    W = W + W.T
    res = fit_wsbm(W, seed=0, n_init=1, degree_corrected=False)
    levels = res.level_memberships()
    assert res.n_blocks == len(sizes) and nmi(truth, levels[0]) >= 0.95
    assert len(np.unique(levels[1])) == 2 and nmi(sup, levels[1]) >= 0.95
    assert len(np.unique(levels[-1])) == 1


def test_deterministic_for_a_fixed_seed():
    W, _ = lfr_weighted(n=40, avg_degree=10, max_degree=20, mu=0.4, min_community=10,
                        max_community=20, seed=15)
    a = fit_wsbm(W, seed=3, n_init=2)
    b = fit_wsbm(W, seed=3, n_init=2)
    assert np.array_equal(a.membership, b.membership)
    assert a.description_length == b.description_length


def test_leiden_baseline_and_describe_partition():
    W, truth = planted_partition([15, 15, 15], 0.7, 0.08, w_in=3.0, w_out=0.6, seed=16)
    b = leiden(W, seed=0)
    assert nmi(truth, b) >= 0.95
    d = describe_partition(W, b)
    assert np.isclose(d.description_length, wsbm.nested_description_length(W, d.levels))


def test_lfr_generator_mixing_and_degree():
    W, memb = lfr_weighted(mu=0.4, seed=17)
    A = W > 0
    same = memb[:, None] == memb[None, :]
    frac_out = (A & ~same).sum() / A.sum()
    assert W.shape == (125, 125) and np.allclose(W, W.T)
    assert abs(frac_out - 0.4) < 0.1
    assert 15 < A.sum(1).mean() <= 25
    w_frac_out = W[~same].sum() / W.sum()
    assert abs(w_frac_out - 0.4) < 0.08


# -- stage and CLI --------------------------------------------------------------------------
def write_ntf_like(path: Path, seed: int = 0) -> tuple[Path, np.ndarray]:
    """A small file with the layout of `neurodyn factorize` output: 2 components."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1, 2], 8)
    same = truth[:, None] == truth[None, :]
    mats = []
    for _ in range(2):
        M = np.triu(rng.exponential(1.0, (24, 24)) * np.where(same, 5.0, 0.3), 1)
        mats.append(M + M.T)
    mats = np.array(mats, dtype=np.float32)
    import pandas as pd

    from neurodyn.tensor import result

    ntf = result.NTFResult(
        factors={"pairs": rng.random((276, 2)), "time": rng.random((30, 2)),
                 "animal": rng.random((3, 2)), "weights": np.array([2.0, 1.0])},
        matrices=mats, labels=[f"N{i}" for i in range(24)], pairs=np.stack(np.triu_indices(24, 1), 1),
        windows=np.stack([np.arange(30) * 4.0, np.arange(30) * 4.0 + 8], axis=1),
        animals=["a", "b", "c"], rank_selection={"ranks": np.array([2])}, restarts={}, rank=2,
        relative_error=0.5, stability=1.0, best_seed=0,
        events=pd.DataFrame({"onset": [20.0], "offset": [40.0], "label": ["x"]}))
    with atomic_h5(path, stage=result.STAGE, params={"rank": 2}, inputs=[], seed=0) as f:
        result.write(f, ntf)
    return path, truth


def test_cli_communities_end_to_end(tmp_path, cli):
    ntf, truth = write_ntf_like(tmp_path / "ntf.h5")
    out = tmp_path / "communities.h5"
    figs = tmp_path / "figs"
    res = cli("communities", ntf, "--out", out, "--seed", "1", "--restarts", "1", "--figures", figs)
    assert res.exit_code == 0, res.output
    assert "component 1: 3 communities" in res.output and "nats" in res.output
    with h5py.File(out, "r") as f:
        assert f.attrs["stage"] == "communities" and f.attrs["complete"]
        for r in (0, 1):
            g = f[f"component_{r}"]
            assert nmi(truth, g["membership"][()]) >= 0.95
            assert g.attrs["n_blocks"] == 3 and g["block_matrix"].shape == (3, 3)
            dl = g.attrs["description_length"]
            assert dl > 0 and np.isclose(g.attrs["description_length_bits"], dl / np.log(2))
            assert g.attrs["description_length_leiden"] >= dl - 1e-9  # a start of the search
            assert g.attrs["ensemble"] in ("ndc", "ndc_dense", "dc")
            assert len(g["levels"]) >= 2
        assert f["overview/activity"].shape == (6, 30)
    assert sorted(p.name for p in figs.glob("*.png")) == [
        "communities_component_0.png", "communities_component_1.png", "communities_overview.png"]
    from neurodyn.plots.style import read_caption  # each figure's caption file beside it

    assert f"split the {len(truth)} neurons into 3 communities" in read_caption(
        figs / "communities_component_1.png")["caption"]
    res = cli("communities", ntf, "--out", tmp_path / "l.h5", "--method", "leiden",
              "--components", "top-1")
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "l.h5", "r") as f:
        assert list(f["components_used"][()]) == [0]
        assert nmi(truth, f["component_0/membership"][()]) >= 0.95


def test_cli_bad_input_exits_2(tmp_path, cli):
    bad = tmp_path / "bad.h5"
    with atomic_h5(bad, stage="x", params={}, inputs=[], seed=0) as f:
        put(f, "labels", np.array(["a"], dtype=object))
    res = cli("communities", bad, "--out", tmp_path / "o.h5")
    assert res.exit_code == 2 and "components" in res.output
    assert not (tmp_path / "o.h5").exists()
    ntf, _ = write_ntf_like(tmp_path / "ntf.h5")
    res = cli("communities", ntf, "--out", tmp_path / "o.h5", "--components", "0,7")
    assert res.exit_code == 2 and "out of range" in res.output


def test_subprocess_bad_input_exit_code(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "missing.h5"
    proc = subprocess.run(
        [sys.executable, "-c", "from neurodyn.cli import main; main()", "communities", str(missing),
         "--out", str(tmp_path / "o.h5")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f"error: {missing}")


# -- the description-length terms are normalised codes (brute force) ------------------------
def _multigraphs(N: int, n_edges: int):
    """Every multigraph with self-loops on N nodes with ``n_edges`` edges, as symmetric count
    matrices (diagonal = number of self-loops)."""
    pairs = [(i, j) for i in range(N) for j in range(i, N)]
    for combo in itertools.combinations_with_replacement(range(len(pairs)), n_edges):
        A = np.zeros((N, N), np.int64)
        for p in combo:
            i, j = pairs[p]
            A[i, j] += 1
            if i != j:
                A[j, i] += 1
        yield A


def _block_counts(A, b, B):
    m = np.zeros((B, B), np.int64)
    for i in range(A.shape[0]):
        for j in range(i, A.shape[0]):
            r, s = sorted((b[i], b[j]))
            m[r, s] += A[i, j]
    return m


def _multi_corr(A):
    """``sum_{i<j} ln A_ij! + sum_i ln A_ii!!`` (zero on simple graphs, omitted by the kernels)."""
    iu = np.triu_indices(A.shape[0], 1)
    d = np.diag(A)
    return gammaln(A[iu] + 1).sum() + (d * np.log(2) + gammaln(d + 1)).sum()


def _pairs_sum(ens, n, m):
    return sum(wsbm.pair_term(ens, n[r], n[s], m[r, s], r == s)
               for r in range(len(n)) for s in range(r, len(n)))


def test_degree_corrected_adjacency_term_sums_to_one_over_multigraphs():
    """Peixoto 2017 eq. for P(A | k, e, b) (microcanonical DC-SBM), written with the kernels'
    pair terms: summed over every multigraph with the same degrees and block edge counts, 1."""
    b = np.array([0, 0, 1, 1, 1])
    n = np.bincount(b)
    totals: dict = {}
    for A in _multigraphs(5, 4):
        k = A.sum(1) + np.diag(A)
        m = _block_counts(A, b, 2)
        e = np.bincount(b, weights=k).astype(int)
        nll = (_pairs_sum(wsbm.ENS_DC, n, m) + gammaln(e + 1).sum() - gammaln(k + 1).sum()
               + _multi_corr(A))
        key = (tuple(k), tuple(m.ravel()))
        totals[key] = totals.get(key, 0.0) + np.exp(-nll)
    assert len(totals) > 20
    assert np.allclose(list(totals.values()), 1.0)


def test_poisson_and_multigraph_terms_sum_to_one():
    """Non-degree-corrected multigraph code (level 0) and the uniform multigraph code of the
    upper levels: each a probability over multigraphs with given block edge counts."""
    b = np.array([0, 0, 1, 1])
    n = np.bincount(b)
    poisson: dict = {}
    multi: dict = {}
    for A in _multigraphs(4, 3):
        m = _block_counts(A, b, 2)
        k = A.sum(1) + np.diag(A)
        e = np.bincount(b, weights=k)
        nll = _pairs_sum(wsbm.ENS_POISSON, n, m) + (e * np.log(n)).sum() + _multi_corr(A)
        key = tuple(m.ravel())
        poisson[key] = poisson.get(key, 0.0) + np.exp(-nll)
        multi[key] = multi.get(key, 0.0) + np.exp(-_pairs_sum(wsbm.ENS_MULTI, n, m))
    assert np.allclose(list(poisson.values()), 1.0) and np.allclose(list(multi.values()), 1.0)


def test_simple_graph_term_sums_to_one():
    b = np.array([0, 0, 1, 1, 1])
    n = np.bincount(b)
    pairs = list(itertools.combinations(range(5), 2))
    totals: dict = {}
    for mask in range(1 << len(pairs)):
        A = np.zeros((5, 5), np.int64)
        for p, (i, j) in enumerate(pairs):
            if mask >> p & 1:
                A[i, j] = A[j, i] = 1
        key = tuple(_block_counts(A, b, 2).ravel())
        totals[key] = totals.get(key, 0.0) + np.exp(-_pairs_sum(wsbm.ENS_SIMPLE, n, _block_counts(A, b, 2)))
    assert np.allclose(list(totals.values()), 1.0)


def test_degree_prior_and_partition_prior_sum_to_one():
    """``P(k | e, b)`` ("distributed" hyperprior) over degree sequences of one block with sum e,
    and ``P(b)`` over every labelled partition of N nodes."""
    table = wsbm.log_partitions_table(8, 4)
    for n_r, e_r in [(3, 5), (4, 6), (2, 7)]:
        tot = 0.0
        for k in itertools.product(range(e_r + 1), repeat=n_r):
            if sum(k) != e_r:
                continue
            eta = np.array(list(Counter(k).values()))
            tot += np.exp(-(gammaln(n_r + 1) - gammaln(eta + 1).sum() + table[e_r, n_r]))
        assert np.isclose(tot, 1.0)
    N = 5
    tot = 0.0
    for b in itertools.product(range(N), repeat=N):
        B = max(b) + 1
        sizes = np.bincount(b, minlength=B)
        if np.any(sizes == 0):
            continue
        tot += np.exp(-(wsbm.partition_term(N, B) - gammaln(sizes + 1).sum()))
    assert np.isclose(tot, 1.0)


def test_weight_term_is_a_density():
    """``exp(-weight_term)`` integrates to 1 over the weights (m = 1, 2: by quadrature)."""
    from scipy.integrate import quad

    for alpha, beta in [(1.0, 0.7), (2.5, 3.0)]:
        one = quad(lambda x, a=alpha, c=beta: np.exp(-wsbm.weight_term(1, x, a, c)), 0, np.inf)[0]
        # m = 2 depends on x1 + x2 only: the area of {x1 + x2 = X} is X
        two = quad(lambda X, a=alpha, c=beta: X * np.exp(-wsbm.weight_term(2, X, a, c)), 0,
                   np.inf)[0]
        assert np.isclose(one, 1.0, atol=1e-7) and np.isclose(two, 1.0, atol=1e-7)


def test_normal_term_is_the_chain_of_student_t_predictives():
    """The log-normal code's block-pair term equals the product of the posterior predictive
    (Student t) densities of the values one after another, and integrates to 1 (m = 1)."""
    from scipy.integrate import quad
    from scipy.stats import t as student

    rng = np.random.default_rng(3)
    for v0 in (0.3, 2.0):
        y = rng.normal(0.4, 0.8, 6)
        total = 0.0
        for n in range(y.size):  # prior: mean 0 (1 pseudo-observation), nu0 = 1, nu0 s0^2 = v0
            prev = y[:n]
            kn, nun = 1.0 + n, 1.0 + n
            ybar = prev.mean() if n else 0.0
            V = v0 + ((prev - ybar) ** 2).sum() + n * ybar**2 / kn
            mu = n * ybar / kn
            total -= student.logpdf(y[n], nun, mu, np.sqrt(V / nun * (1 + 1 / kn)))
        ours = wsbm.normal_term(y.size, y.sum(), (y**2).sum(), v0)
        assert np.isclose(ours, total, rtol=1e-12, atol=1e-9)
        one = quad(lambda x, v=v0: np.exp(-wsbm.normal_term(1, x, x * x, v)), -np.inf, np.inf)
        assert np.isclose(one[0], 1.0, atol=1e-7)


def test_lognormal_code_is_unit_free_and_recovers_blocks_hidden_by_node_factors():
    """Weights w_ij = x_i x_j (2 inside blocks) with spread-out node factors x: the exponential
    code cannot see the blocks, the log-normal code (node factors removed) recovers them, its
    description is shorter, auto picks it; changing the weight unit changes no length."""
    rng = np.random.default_rng(10)
    truth = np.repeat([0, 1, 2], 12)
    same = truth[:, None] == truth[None, :]
    x = np.exp(rng.normal(0, 1.0, 36))
    W = np.outer(x, x) * np.where(same, 2.0, 1.0) * np.exp(rng.normal(0, 0.3, (36, 36)))
    W = np.triu(W, 1) + np.triu(W, 1).T
    exp = fit_wsbm(W, seed=0, n_init=1, degree_corrected=False)  # the default code
    auto = fit_wsbm(W, seed=0, n_init=1, degree_corrected=False, weights="auto")
    assert exp.ensemble == "ndc_dense"
    assert auto.ensemble == "ndc_dense_lognormal" and nmi(truth, auto.membership) >= 0.95
    assert nmi(truth, exp.membership) < 0.5
    assert auto.description_length < exp.description_length - 100
    for b in (truth, auto.membership, np.zeros(36, int)):
        d = describe_partition(W, b, weights="lognormal", dense=True).description_length
        assert d > 0
        assert np.isclose(d, describe_partition(1e-3 * W, b, weights="lognormal",
                                                dense=True).description_length)


def tiny_reference_graph():
    N = 14
    W = np.zeros((N, N))
    for i, j in itertools.combinations(range(N), 2):
        if (i * 7 + j * 11 + i * j) % 5 < 2:
            W[i, j] = W[j, i] = 1.0 + ((i * j) % 7) / 3.0
    return W, np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 0, 1])


def test_description_length_matches_graph_tool():
    """Values from graph-tool 2.45 (Debian python3-graph-tool) on this graph:
    ``BlockState(g, b, deg_corr=False).entropy()``, ``.entropy(dense=True, multigraph=False)``,
    ``NestedBlockState(g, bs=[b, [0, 0, 1], [0, 0]], deg_corr=False).entropy()``, and the
    weight part with ``recs=[w], rec_types=["real-exponential"], rec_params=[{alpha: 1, beta:
    mean weight}]``. The degree-corrected code differs only through graph-tool's asymptotic
    ``ln q(m, n)`` (ours is exact: see test_partition_table_matches_enumeration)."""
    W, b = tiny_reference_graph()
    kw = dict(weighted=False)
    assert np.isclose(wsbm.description_length(W, b, **kw), 86.26082573003325, atol=1e-9)
    assert np.isclose(wsbm.description_length(W, b, dense=True, **kw), 78.44416923005593, atol=1e-9)
    levels = [b, np.array([0, 0, 1]), np.array([0, 0])]
    assert np.isclose(wsbm.nested_description_length(W, levels, **kw), 90.57938279075844,
                      atol=1e-9)
    weights_part = 142.02709138014552 - 89.9115760682147  # graph-tool, DC, with - without recs
    ours = (wsbm.description_length(W, b, degree_corrected=True)
            - wsbm.description_length(W, b, degree_corrected=True, weighted=False))
    E, mean_w = (W > 0).sum() / 2, W[W > 0].mean()
    resolution = E * (wsbm.WEIGHT_BITS * np.log(2) - np.log(mean_w))  # -E ln(epsilon)
    assert np.isclose(ours, weights_part + resolution, atol=1e-9)


def test_lfr_strength_weights_match_degrees_and_internal_share():
    """Weighted-LFR weights (issue 18): s_i = k_i^beta, internal share 1 - mu_w per node."""
    W, memb = lfr_weighted(n=60, avg_degree=12, max_degree=30, mu=0.4, mu_w=0.3,
                           min_community=10, max_community=25, strength_exponent=1.5, seed=3)
    k = (W > 0).sum(1)
    same = memb[:, None] == memb[None, :]
    ok = ((W > 0) & same).any(1) & ((W > 0) & ~same).any(1)  # both kinds of edge present
    assert np.allclose(W.sum(1), k**1.5, rtol=1e-6)
    assert np.allclose((W * same).sum(1)[ok] / W.sum(1)[ok], 0.7, atol=1e-6)


def _lstsq_residuals(i, j, y, slot_i, slot_j, n_slots):
    """Least-squares residuals of ``y_e ~ u[slot_i] + u[slot_j]`` by a dense solver."""
    D = np.zeros((y.size, n_slots))
    D[np.arange(y.size), slot_i] += 1.0
    D[np.arange(y.size), slot_j] += 1.0
    return y - D @ np.linalg.lstsq(D, y, rcond=None)[0]


def test_node_factors_match_dense_least_squares_also_when_singular():
    """CG factors give the least-squares residuals of a dense solver, on a graph with a
    bipartite component (a star and a square: the system is singular there)."""
    i = np.array([0, 0, 0, 4, 5, 6, 7, 8, 8, 9])
    j = np.array([1, 2, 3, 5, 6, 7, 4, 9, 10, 10])
    y = np.random.default_rng(0).normal(0, 1, i.size)
    res = wsbm.node_factors(i, j, y, np.zeros(11))
    assert np.allclose(res, _lstsq_residuals(i, j, y, i, j, 11), atol=1e-7)


def test_lognormal_statistics_match_their_formula():
    """One-factor log-normal code of a tiny graph: centred least-squares residuals (dense
    solver), prior scale = their variance, constant sum ln w + E (24 ln 2 - ln mean w) +
    sum_i 1/2 ln(1 + k_i tau2 / v0) (tau2 the log-weights' variance)."""
    W, _ = tiny_reference_graph()
    A, X = wsbm.edges_from_weights(W)
    i, j = np.nonzero(np.triu(A, 1))
    lw = np.log(X[i, j])
    y = _lstsq_residuals(i, j, lw, i, j, W.shape[0])
    y -= y.mean()
    k = A.sum(axis=1)
    Y, v0, const = wsbm.lognormal_statistics(A, X)
    assert np.allclose(Y.real[i, j], y, atol=1e-8) and np.allclose(Y.imag[i, j], y**2, atol=1e-8)
    assert np.isclose(v0, y.var())
    expected = (lw.sum() + lw.size * (24 * np.log(2) - np.log(np.exp(lw).mean()))
                + 0.5 * np.log(1 + k[k > 0] * lw.var() / y.var()).sum())  # fmt: skip
    assert np.isclose(const, expected, rtol=0, atol=1e-8)


def test_split_code_matches_its_formula_term_by_term():
    """Split log-normal description length of a tiny graph, written out: topology code +
    sum ln w + E (24 ln 2 - ln mean w) + ln(number of scales) + at the best scale v (v1 4^-j
    >= 2^-48, v1 the one-factor code's scale) the factors' 1/2 ln(1 + k tau2 / v) (tau2 the
    log-weights' variance; k each factor's edges) and per block pair the normal code of the
    least-squares residuals (inside and outside factors by a dense solver)."""
    W, b = tiny_reference_graph()
    A, X = wsbm.edges_from_weights(W)
    i, j = np.nonzero(np.triu(A, 1))
    w = X[i, j]
    out = (b[i] != b[j]).astype(int)
    N = W.shape[0]
    y = _lstsq_residuals(i, j, np.log(w), i + N * out, j + N * out, 2 * N)
    k = np.bincount(np.r_[i + N * out, j + N * out], minlength=2 * N)
    k = k[k > 0]
    v1 = wsbm.lognormal_statistics(A, X)[1]
    scales = [v1 * 4.0**-s for s in range(200) if v1 * 4.0**-s >= 2.0**-48]
    expected = (describe_partition(W, b, degree_corrected=True, weighted=False).description_length
                + np.log(w).sum() + w.size * (24 * np.log(2) - np.log(w.mean()))
                + np.log(len(scales)))  # fmt: skip
    pairs = np.sort(np.c_[b[i], b[j]], axis=1)
    codes = []
    for v in scales:
        codes.append(0.5 * np.log(1 + k * np.log(w).var() / v).sum())
        for r, s in itertools.combinations_with_replacement(range(3), 2):
            sel = (pairs[:, 0] == r) & (pairs[:, 1] == s)
            codes[-1] += wsbm.normal_term(int(sel.sum()), y[sel].sum(), (y[sel] ** 2).sum(), v)
    expected += min(codes)
    ours = describe_partition(W, b, degree_corrected=True, weights="split").description_length
    assert np.isclose(ours, expected, rtol=0, atol=1e-6)


def test_split_code_prefers_the_planted_partition_of_strength_weights():
    """Weighted-LFR weights (products of internal / external node factors): at the planted
    partition the split residuals vanish, and polishing a start with 12 nodes moved to wrong
    blocks restores the planted partition, which no other code prefers."""
    W, truth = lfr_weighted(n=60, avg_degree=12, max_degree=30, mu=0.4, mu_w=0.4,
                            min_community=10, max_community=25, strength_exponent=1.5, seed=5)
    A, X = wsbm.edges_from_weights(W)
    split = wsbm.SplitFactors(A, X)
    Y = split.statistics(truth)[0]
    assert np.abs(Y.real).max() < 1e-6
    rng = np.random.default_rng(1)
    start = truth.copy()
    moved = rng.choice(60, 12, replace=False)
    start[moved] = (start[moved] + 1) % (truth.max() + 1)
    g = fit.LevelGraph(A, X, wsbm.ENS_DC, wsbm.W_NONE, table=wsbm.partitions_table_for(A))
    b, dl = fit.refine_split(g, split, start, rng)
    assert np.array_equal(b, wsbm.compact(truth))
    assert np.isclose(dl, fit.level_objective(g, b) + split.const + split.weight_dl(b))
    for w in ("exponential", "lognormal"):
        f = fit_wsbm(W, seed=0, degree_corrected=True, weights=w)
        assert nmi(truth, f.membership) < 0.9
