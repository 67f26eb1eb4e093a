"""Structure versus function: scoring inferred interactions against a connectome."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from neurodyn.analysis import compare as cmp
from neurodyn.connectome import Connectome
from neurodyn.io.store import provenance
from neurodyn.report.synthetic import make_run, planted_connectome


def _connectome(n: int = 40, seed: int = 0) -> Connectome:
    labels = [f"AB{i:02d}" if i % 2 else f"X{i}" for i in range(n)]
    groups = np.arange(n) % 4
    return planted_connectome(labels, groups, seed)


def test_rank_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(5):
        s = rng.integers(0, 6, 300).astype(float)  # many ties
        y = rng.random(300) < 0.3
        assert cmp.rank_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(cmp.rank_auc(np.arange(3.0), np.zeros(3, bool)))


def test_pair_values_symmetrises_by_max_abs():
    m = np.array([[0, -3, 1], [2, 0, 0], [0, 5, 0]], dtype=float)
    assert list(cmp.pair_values(m)) == [3, 1, 5]


def test_co_membership_by_hand():
    mem = np.array([[0, 0, 1, -1], [0, 1, 1, -1]])
    c = cmp.co_membership(mem)
    assert c[0, 1] == 0.5 and c[1, 2] == 0.5 and c[0, 2] == 0
    assert c[3, 3] == 0 and c[2, 3] == 0 and np.all(np.diag(c) == 0)
    assert np.allclose(c, c.T)


def test_p_value_plus_one_correction():
    assert cmp.p_value(1.0, np.zeros(99)) == pytest.approx(0.01)
    assert cmp.p_value(0.0, np.zeros(99)) == 1.0


def test_identical_matrices_score_near_one_and_significant():
    con = _connectome()
    inferred = con.chemical + con.electrical
    sc = cmp.score("same", inferred, list(con.labels), con, n_perm=200, seed=3)
    assert sc.roc_auc > 0.99 and sc.pr_auc > 0.99
    assert sc.p_roc == pytest.approx(1 / 201) and sc.p_pr == pytest.approx(1 / 201)
    assert sc.n_pairs == 40 * 39 // 2 and sc.only_inferred == [] and sc.only_connectome == []
    assert 0.4 < np.mean(sc.null_roc) < 0.6


def test_shuffled_labels_score_near_half_and_not_significant():
    con = _connectome()
    inferred = con.chemical + con.electrical
    perm = np.random.default_rng(5).permutation(len(con.labels))
    sc = cmp.score("shuffled", inferred[np.ix_(perm, perm)], list(con.labels), con,
                   n_perm=200, seed=3)
    assert abs(sc.roc_auc - 0.5) < 0.08
    assert sc.p_roc > 0.05 and sc.p_pr > 0.05


def test_synapse_kind_selects_matrix():
    con = _connectome()
    sc_e = cmp.score("elec", con.electrical, list(con.labels), con, synapses="electrical",
                     n_perm=20)
    assert sc_e.roc_auc > 0.99
    with pytest.raises(ValueError, match="synapse kind"):
        cmp.score("x", con.electrical, list(con.labels), con, synapses="gap")


def test_neurons_on_one_side_are_matched_by_name_and_reported():
    labels = ["AVAL", "AVAR", "DA6", "RIML"]
    chem = np.zeros((4, 4))
    chem[0, 1] = chem[2, 3] = 3
    con = Connectome("c", labels, chem, np.zeros((4, 4)))
    inferred_labels = ["DA06", "AVAL", "AVAR", "NEW1", "RIML"]  # DA06 canonicalises to DA6
    m = np.zeros((5, 5))
    m[1, 2] = m[0, 4] = 1.0
    m[3, :] = 9.0  # unmatched neuron must not count
    sc = cmp.score("x", m, inferred_labels, con, n_perm=10)
    assert sc.labels == ["DA6", "AVAL", "AVAR", "RIML"]
    assert sc.only_inferred == ["NEW1"] and sc.only_connectome == []
    assert sc.roc_auc == 1.0 and sc.n_pairs == 6 and sc.n_connected == 2


def test_null_is_deterministic_for_a_seed():
    con = _connectome(20)
    m = np.random.default_rng(0).random((20, 20))
    a = cmp.score("x", m, list(con.labels), con, n_perm=30, seed=4)
    b = cmp.score("x", m, list(con.labels), con, n_perm=30, seed=4)
    c = cmp.score("x", m, list(con.labels), con, n_perm=30, seed=5)
    assert np.array_equal(a.null_roc, b.null_roc) and not np.array_equal(a.null_roc, c.null_roc)


def test_compare_connectome_writes_compare_h5(tmp_path):
    make_run(tmp_path, seed=2)
    out = cmp.compare_connectome(tmp_path, "planted", n_perm=50, seed=1)
    assert out == tmp_path / "compare.h5"
    prov = provenance(out)
    assert prov["stage"] == "compare" and prov["complete"] and prov["seed"] == 1
    assert prov["parameters"] == {"connectome": "planted", "synapses": "both", "n_perm": 50}
    rows = {r["source"]: r for r in cmp.read_scores(out)}
    assert set(rows) == {"communities", "ntf", "hmmglm:sim/animal0", "hmmglm:sim/animal1"}
    for r in rows.values():  # planted structure is shared by both sides
        assert r["roc_auc"] > 0.75 and r["p_roc"] < 0.05


def test_compare_connectome_errors(tmp_path, cli):
    make_run(tmp_path, seed=0)
    with pytest.raises(ValueError, match="available: planted"):  # the CLI names --connectome
        cmp.compare_connectome(tmp_path, "nope")
    r = cli("compare-connectome", tmp_path, "--connectome", "nope")
    assert r.exit_code == 2 and "planted" in r.output
    r = cli("compare-connectome", tmp_path / "missing", "--connectome", "planted")
    assert r.exit_code == 2


def test_compare_connectome_cli(tmp_path, cli):
    make_run(tmp_path, seed=0)
    r = cli("compare-connectome", tmp_path, "--connectome", "planted", "--n-perm", "30",
            "--synapses", "chemical")
    assert r.exit_code == 0, r.output
    assert "ntf: ROC AUC" in r.output and (tmp_path / "compare.h5").exists()


def test_connectome_from_file(tmp_path, white_json):
    make_run(tmp_path, seed=0)
    con = cmp.load_connectome(tmp_path, str(white_json))
    assert isinstance(con, Connectome) and len(con.labels) > 200


def test_no_shared_names_is_an_input_error(tmp_path, monkeypatch):
    make_run(tmp_path, seed=0)
    other = Connectome("other", ["AVAL", "AVAR"], np.ones((2, 2)), np.zeros((2, 2)))
    monkeypatch.setattr(cmp, "load_connectome", lambda rundir, name: other)
    with pytest.raises(ValueError, match="shares no neuron names"):
        cmp.compare_connectome(tmp_path, "other", n_perm=5)
