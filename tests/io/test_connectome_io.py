"""Connectome readers: Varshney MAT and White JSON (real files), the collection's consensus CSV
(fixture in its exact column layout), canonical-name agreement, broken copies via the CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.io
from helpers import one_line_error

from neurodyn.connectome import Connectome
from neurodyn.errors import InputError
from neurodyn.io import store
from neurodyn.io.readers.connectome import symmetrize_gap
from neurodyn.io.registry import find_reader, read
from neurodyn.names import CANONICAL_NEURONS, canonical_neuron_name


def test_varshney_real(varshney_mat):
    assert find_reader(varshney_mat).name == "connectome-varshney"
    (con,) = read(varshney_mat)
    assert isinstance(con, Connectome) and len(con.labels) == 279
    assert "DA6" in con.labels and "DA06" not in con.labels
    assert np.count_nonzero(con.chemical) == 2194 and con.chemical.sum() == 6394
    assert np.count_nonzero(con.electrical) == 1031 and con.electrical.sum() == 1777
    np.testing.assert_array_equal(con.electrical, con.electrical.T)
    a = con.labels.index("AVAL")
    top = [con.labels[k] for k in np.argsort(-con.chemical[a], kind="stable")[:4]]
    assert top == ["DA6", "PVCL", "VA8", "AS7"]
    top_in = {con.labels[k] for k in np.argsort(-con.chemical[:, a], kind="stable")[:4]}
    assert top_in == {"SAAVL", "AVDR", "FLPL", "AVDL"}


def test_white_json_real(white_json):
    assert find_reader(white_json).name == "connectome-json"
    (con,) = read(white_json)
    records = json.loads(white_json.read_text())
    chem = [e for e in records if e["typ"] == 0]
    elec = [e for e in records if e["typ"] == 2]
    assert (len(chem), len(elec)) == (2405, 1144) and len(con.labels) == 319
    assert con.chemical.sum() == sum(sum(e["syn"]) for e in chem)
    np.testing.assert_array_equal(con.electrical, con.electrical.T)
    i, j = con.labels.index("AVAL"), con.labels.index("AVAR")
    assert con.electrical[i, j] > 0


def test_canonical_list_matches_real_connectomes(varshney_mat, white_json):
    (v,) = read(varshney_mat)
    (w,) = read(white_json)
    canon = set(CANONICAL_NEURONS)
    assert set(v.labels) <= canon
    assert canon - set(v.labels) == (canon & set(w.labels)) - set(v.labels)
    # everything White names beyond the 300 is a muscle/end organ or glia, not a neuron slot
    assert canon <= set(w.labels) and len(set(w.labels) - canon) == 19


def make_consensus(path, *, functional=True, asym=0.0, trimmed=False):
    rng = np.random.default_rng(0)
    names = ["AVAL", "AVAR", "DA6", "VA8", "RIML"]
    rows = []
    gap = rng.integers(0, 4, (5, 5)).astype(float)
    gap = np.triu(gap, 1)
    gap = gap + gap.T
    chem = rng.integers(0, 6, (5, 5)).astype(float)
    np.fill_diagonal(chem, 0)
    fun = rng.normal(size=(5, 5))
    if asym:
        gap[0, 1] += asym  # the published table's reported inconsistency
    for a in range(5):
        for b in range(5):
            if a == b:
                continue
            g, c = gap[a, b], chem[a, b]
            if trimmed and g == 0 and c == 0:
                continue
            row = {
                "from_neuron": names[a] if a != 2 else "DA06", "to_neuron": names[b],
                "from_pos": "(0.1, 0.2, 0.3)", "to_pos": "(1.0, 2.0, 3.0)",
                "from_type": "inter", "to_type": "motor",
                "mean_gap_weight": g if g else np.nan, "mean_chem_weight": c,
                "uncertainty": 0.5,
            }
            if functional:
                row["functional_weight"] = fun[a, b]
            row["data_sources"] = "['white_1986_whole', 'witvliet_8']"
            rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return names, gap, chem, fun


def test_consensus_csv(tmp_path):
    path = tmp_path / "consensus_connectome_full_withfunc.csv"
    names, gap, chem, fun = make_consensus(path)
    assert find_reader(path).name == "connectome-consensus"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (con,) = read(path)
    assert con.name == "consensus_connectome_full_withfunc"
    assert con.labels == tuple(sorted(canonical_neuron_name(x) for x in names))
    c, e, present = con.aligned(names)
    assert present.all()
    np.testing.assert_array_equal(c, chem)
    np.testing.assert_array_equal(e, gap)
    anat, func = read(path, weights="all")
    assert func.name.endswith("_functional")
    f, e2, _ = func.aligned(names)
    np.testing.assert_allclose(f, fun * (1 - np.eye(5)))
    assert not e2.any()
    nofunc = tmp_path / "consensus_connectome_trimmed_nofunc.csv"
    make_consensus(nofunc, functional=False, trimmed=True)
    with pytest.raises(InputError, match="functional_weight"):
        read(nofunc, weights="functional")
    with pytest.raises(InputError, match="unknown weights"):
        read(path, weights="both")


def test_consensus_gap_asymmetry(tmp_path, caplog):
    path = tmp_path / "consensus_connectome_full_nofunc.csv"
    names, gap, _, _ = make_consensus(path, functional=False, asym=3.0)
    with pytest.warns(UserWarning, match="1 neuron pairs have asymmetric gap"):
        (con,) = read(path)
    _, e, _ = con.aligned(names)
    np.testing.assert_array_equal(e, e.T)
    assert e[0, 1] == pytest.approx((gap[0, 1] + gap[1, 0]) / 2)
    sym, n = symmetrize_gap(gap)
    assert n == 1 and np.allclose(sym, sym.T)
    assert symmetrize_gap(sym)[1] == 0


def test_consensus_ingest_and_broken(cli, tmp_path):
    path = tmp_path / "consensus_connectome_full_withfunc.csv"
    make_consensus(path)
    out = tmp_path / "con.h5"
    r = cli("ingest", path, "--out", out, "--reader-options", "weights=all")
    assert r.exit_code == 0, r.output
    with store.open_h5(out) as f:
        got = sorted(f["connectome"])
        back = store.read_connectome(f["connectome"][got[0]])
    assert got == ["consensus_connectome_full_withfunc", "consensus_connectome_full_withfunc_functional"]
    assert back.labels[0] == "AVAL"
    dup = tmp_path / "dup.csv"
    text = path.read_text().splitlines()
    dup.write_text("\n".join(text + [text[1]]) + "\n")
    one_line_error(cli("ingest", dup, "--out", out.with_name("d.h5")), str(dup), "duplicate")
    assert not out.with_name("d.h5").exists()


def test_connectome_broken_copies(cli, tmp_path, varshney_mat, white_json):
    mat = varshney_mat.read_bytes()
    js = white_json.read_bytes()
    trunc_mat = tmp_path / "ConnOrdered_trunc.mat"
    trunc_mat.write_bytes(mat[: len(mat) // 2])
    corrupt_mat = tmp_path / "ConnOrdered_corrupt.mat"
    bad = bytearray(mat)
    bad[200:4000] = bytes(range(256)) * 14 + bytes(range(224))
    corrupt_mat.write_bytes(bytes(bad))
    trunc_json = tmp_path / "white_trunc.json"
    trunc_json.write_bytes(js[: len(js) // 2])
    wrong_mat = tmp_path / "wrong.mat"
    scipy.io.savemat(wrong_mat, {"Neuron_ordered": np.array(["A", "B"], dtype=object),
                                 "A_init_t_ordered": np.zeros((3, 3)), "Ag_t_ordered": np.zeros((3, 3))})
    for broken in (trunc_mat, corrupt_mat, trunc_json, wrong_mat):
        out = tmp_path / f"out-{broken.stem}.h5"
        r = cli("ingest", broken, "--out", out)
        one_line_error(r, str(broken))
        assert not out.exists() and not list(tmp_path.glob(f"out-{broken.stem}.h5*"))


def test_graph_tensors(tmp_path):
    from neurodyn.io.readers.connectome import connectome_from_graph_tensors

    graph = {
        # AVAL->DA06 chemical 3; AVAL<->AVAR gap 2 both ways; RIML->AVAL gap listed one way
        "edge_index": np.array([[0, 0, 1, 3, 0], [2, 1, 0, 0, 3]]),
        "edge_attr": np.array([[0, 3], [2, 0], [2, 0], [1, 0], [0, 0]], dtype=float),
        "node_label": {0: "AVAL", 1: "AVAR", 2: "DA06", 3: "RIML"},
    }
    con = connectome_from_graph_tensors(graph, "witvliet_8")
    assert con.labels == ("AVAL", "AVAR", "DA6", "RIML")
    assert con.chemical[0, 2] == 3 and con.chemical.sum() == 3
    assert con.electrical[0, 1] == con.electrical[1, 0] == 2
    assert con.electrical[0, 3] == con.electrical[3, 0] == 1
    with pytest.raises(InputError, match="edge_attr"):
        connectome_from_graph_tensors({**graph, "edge_attr": np.zeros((4, 2))}, "x")
    try:
        import torch  # noqa: F401
    except ImportError:
        import zipfile

        pt = tmp_path / "graph_tensors_witvliet_8.pt"
        with zipfile.ZipFile(pt, "w") as z:
            z.writestr("graph_tensors_witvliet_8/data.pkl", b"\x80\x02}q\x00.")
        assert find_reader(pt).name == "connectome-graph-tensors"
        with pytest.raises(InputError, match="needs torch"):
            read(pt)
