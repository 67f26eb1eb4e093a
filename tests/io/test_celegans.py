"""C. elegans readers: the real Dag2023 file, the Homogenized collection (parquet, pickle) and
every raw lab layout (fixtures built here in each exact layout), broken inputs through the CLI."""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
from helpers import one_line_error

from neurodyn.errors import InputError
from neurodyn.io import store
from neurodyn.io.registry import find_reader, read
from neurodyn.names import (
    CANONICAL_NEURONS,
    assign_labels,
    canonical_neuron_name,
    is_canonical,
    resolve_ambiguous,
)

# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------




def assert_no_output(out: Path):
    assert not out.exists()
    assert not list(out.parent.glob(out.name + "*")), list(out.parent.iterdir())


# ----------------------------------------------------------------------------------------
# canonical names
# ----------------------------------------------------------------------------------------


def test_canonical_list():
    assert len(CANONICAL_NEURONS) == 300 == len(set(CANONICAL_NEURONS))
    assert list(CANONICAL_NEURONS) == sorted(CANONICAL_NEURONS)
    assert CANONICAL_NEURONS[:3] == ("ADAL", "ADAR", "ADEL")
    assert CANONICAL_NEURONS.index("AS10") == CANONICAL_NEURONS.index("AS1") + 1
    assert is_canonical("DA06") and is_canonical(" aval ") and is_canonical("VC6")
    assert not is_canonical("CANL") and not is_canonical("SMB??") and not is_canonical("12")
    assert canonical_neuron_name("VB02") == "VB2" and canonical_neuron_name("IL2DL") == "IL2DL"


def test_resolve_ambiguous():
    assert resolve_ambiguous("SMB??") == "SMBDL"
    assert resolve_ambiguous("SMB??", {"SMBDL"}) == "SMBDR"
    assert resolve_ambiguous("IL2?", {"IL2L"}) == "IL2R"
    assert resolve_ambiguous("RMD?") == "RMDL"  # same length first
    assert resolve_ambiguous("RMD?", {"RMDL", "RMDR"}) == "RMDDL"  # then longer names
    assert resolve_ambiguous("SMB??", {"SMBDL", "SMBDR", "SMBVL", "SMBVR"}) is None
    assert resolve_ambiguous("XYZ?") is None


def test_assign_labels_rules():
    got = assign_labels(["AVAL", "SMB??", "AVAL", "", None, "12", "SMB??", "SMBDL", "AVA", "merge"])
    # stated names win over '?' guesses; duplicates and junk are unlabelled
    assert got == ["AVAL", "SMBDR", None, None, None, None, "SMBVL", "SMBDL", None, None]
    assert assign_labels(["AVA", "AVA", "AVA"], bilateral_suffix=True) == ["AVAL", "AVAR", None]


# ----------------------------------------------------------------------------------------
# real file: Dag2023 (Flavell lab per-worm HDF5)
# ----------------------------------------------------------------------------------------


def test_dag2023_real_file(dag_h5):
    (rec,) = read(dag_h5)
    assert find_reader(dag_h5).name == "celegans-flavell"
    assert (rec.n_samples, rec.n_channels) == (800, 146)
    info = rec.channel_info
    assert int(info["is_labeled"].sum()) == 104
    lab = [x for x, ok in zip(rec.labels, info["is_labeled"]) if ok]
    assert lab == sorted(lab, key=str) and list(rec.labels[:104]) == lab
    assert sum(x.startswith("SMB??") for x in lab) == 2 and int(info["ambiguous"].sum()) >= 2
    assert all(x.startswith("roi") for x in rec.labels[104:])
    assert sorted(info["source_column"]) == list(range(146))
    dt = np.diff(rec.times)
    assert np.median(dt) == pytest.approx(0.600, abs=0.001)
    assert rec.times[-1] - rec.times[0] == pytest.approx(480.7, abs=0.1)
    assert rec.dataset == "Dag2023" and rec.id == "Dag2023/2022-07-26-31"
    assert len(rec.events) == 34 and set(rec.events["label"]) == {"reversal"}
    assert np.all(rec.events["offset"] >= rec.events["onset"])
    # traces are the F/F20 columns, reordered
    with h5py.File(dag_h5, "r") as f:
        raw = f["gcamp/traces_array_F_F20"][()]
    np.testing.assert_allclose(rec.data, raw[:, info["source_column"]].astype(np.float32))
    assert float(raw.min()) > 0.02 and float(raw.max()) < 6.0


def _copy_dag(tmp_path: Path, dag_h5: Path) -> Path:
    d = tmp_path / "dag"
    d.mkdir()
    dst = d / dag_h5.name
    shutil.copy(dag_h5, dst)
    dst.chmod(0o644)
    return dst


def test_dag2023_broken_copies(cli, tmp_path, dag_h5):
    src = dag_h5.read_bytes()
    cases = {}
    (tmp_path / "trunc-data.h5").write_bytes(src[: len(src) // 3])
    cases["trunc"] = tmp_path / "trunc-data.h5"
    bad = bytearray(src)
    bad[0:512] = bytes(512)  # superblock wiped
    (tmp_path / "corrupt-data.h5").write_bytes(bytes(bad))
    cases["corrupt"] = tmp_path / "corrupt-data.h5"
    wrong = tmp_path / "wrongkeys-data.h5"
    with h5py.File(wrong, "w") as f:
        f["gcamp/other"] = np.zeros((5, 2))
        f["timing/timestamp_confocal"] = np.arange(5.0)
    cases["wrong keys"] = wrong
    nan = _copy_dag(tmp_path, dag_h5)
    with h5py.File(nan, "r+") as f:
        f["gcamp/traces_array_F_F20"][...] = np.nan
    cases["nan"] = nan
    for what, path in cases.items():
        out = tmp_path / f"out-{what.replace(' ', '_')}.h5"
        r = cli("ingest", path, "--out", out)
        one_line_error(r, str(path))
        assert_no_output(out)


def test_dag2023_options_and_nan(tmp_path, dag_h5):
    (r,) = read(dag_h5, resolve_ambiguous=True)
    lab = [x for x, ok in zip(r.labels, r.channel_info["is_labeled"]) if ok]
    assert len(lab) == 104 and not any("?" in x for x in lab)
    assert {"SMBDL", "SMBDR"} <= set(lab)
    assert all(is_canonical(x) for x, a in zip(r.labels, r.channel_info["ambiguous"]) if a)
    dst = _copy_dag(tmp_path, dag_h5)
    with h5py.File(dst, "r+") as f:
        x = f["gcamp/traces_array_F_F20"]
        x[10:20, 0] = np.nan
        x[:, 5] = np.nan
    (m,) = read(dst)
    assert m.n_channels == 145 and m.meta["n_dropped_all_nan"] == 1
    j = list(m.channel_info["source_column"]).index(0)
    assert not m.mask[10:20, j].any() and m.mask.sum() == 800 * 145 - 10


def test_flavell_h5_dataset_named_from_content_not_assumed(tmp_path, dag_h5):
    """Only Dag2023 worms are called Dag2023; others are named by the file or flavell/<stem>."""
    other = _copy_dag(tmp_path, dag_h5).rename(tmp_path / "dag" / "2023-01-09-28-data.h5")
    (rec,) = read(other)
    assert rec.dataset == "flavell" and rec.id == "flavell/2023-01-09-28"
    assert rec.meta["dataset_from"].startswith("unknown")
    assert read(other, dataset="Atanas2023")[0].id == "Atanas2023/2023-01-09-28"
    with h5py.File(other, "r+") as f:
        f.attrs["doi"] = "https://doi.org/10.1016/j.cell.2023.07.035"
    assert read(other)[0].id == "Flavell2023/2023-01-09-28"
    with h5py.File(other, "r+") as f:
        f.attrs["dataset"] = "Pradhan2024"
    (rec,) = read(other)
    assert rec.id == "Pradhan2024/2023-01-09-28" and rec.meta["dataset_from"] == (
        "file attribute dataset")


def test_dag2023_json_labels(tmp_path, dag_h5):
    """The collection's NeuroPAL_labels_dict.json layout {worm: [index map, extra]}."""
    dst = _copy_dag(tmp_path, dag_h5)
    labels = {"2022-07-26-31": [{"3": {"label": "AVAL"}, "10": {"label": "RMD?"}}, None]}
    (dst.parent / "NeuroPAL_labels_dict.json").write_text(json.dumps(labels))
    (rec,) = read(dst)
    assert rec.labels[:2] == ("AVAL", "RMD?") and int(rec.channel_info["is_labeled"].sum()) == 2
    assert list(rec.channel_info["source_column"][:2]) == [2, 9]


# ----------------------------------------------------------------------------------------
# the published parquet (fixture in the exact column layout of FORMATS.md 1.1)
# ----------------------------------------------------------------------------------------

WORMS = {
    # (dataset, worm): (labelled names, unlabelled numeric names, T resampled, T original, dt_orig)
    ("Yemini2021", "worm0"): (["AVAR", "AS10", "AS2", "ADAL"], ["7", "12"], 30, 40, 0.25),
    ("Yemini2021", "worm3"): (["AVAL", "RMDVL"], [], 24, 32, 0.25),
    ("Kato2015", "worm0"): (["AVAL", "RIML", "SMDVR"], ["3"], 27, 30, 0.30),
    ("Flavell2023", "worm1"): (["AVAL", "I2L"], ["0", "1"], 20, 11, 0.60),
}


def _worm_rows(ds, worm, named, unnamed, T, To, dto, rng):
    rows = []
    t = np.arange(T, dtype=np.float32) * np.float32(0.333)
    to = np.arange(To, dtype=np.float32) * np.float32(dto)
    for k, name in enumerate(named + unnamed):
        lab = k < len(named)
        slot = CANONICAL_NEURONS.index(name) if lab else 250 + k
        rows.append(
            {
                "source_dataset": ds,
                "raw_data_file": f"opensource_neural_data/{ds}/file.mat",
                "worm": worm,
                "neuron": name,
                "slot": slot,
                "is_labeled_neuron": lab,
                "smooth_method": "moving",
                "interpolate_method": "linear",
                "normalization_method": "standard",
                "original_calcium_data": rng.standard_normal(To).astype(np.float32),
                "calcium_data": rng.standard_normal(T).astype(np.float32),
                "original_time_in_seconds": to,
                "time_in_seconds": t,
                "original_max_timesteps": To,
                "max_timesteps": T,
            }
        )
    return rows


def make_parquet(path: Path, worms=WORMS, seed=0, shuffle=True, dup=None, nan=False) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    rows = []
    for (ds, worm), spec in worms.items():
        rows += _worm_rows(ds, worm, *spec, rng)
    if dup is not None:
        rows.append(dict(rows[dup]))
    if nan:
        for r in rows:
            r["calcium_data"] = np.full_like(r["calcium_data"], np.nan)
    if shuffle:
        rows = [rows[i] for i in rng.permutation(len(rows))]
    df = pd.DataFrame(rows)
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, row_group_size=4)
    return df


@pytest.fixture
def parquet_file(tmp_path):
    path = tmp_path / "celegans_neural_data.parquet"
    df = make_parquet(path)
    return path, df


def test_parquet_reader(parquet_file):
    path, df = parquet_file
    assert find_reader(path).name == "celegans-parquet"
    recs = read(path)
    assert [r.id for r in recs] == ["Flavell2023/worm1", "Kato2015/worm0", "Yemini2021/worm0", "Yemini2021/worm3"]
    r = recs[2]
    assert r.labels == ("ADAL", "AS10", "AS2", "AVAR", "roi7", "roi12")
    assert list(r.channel_info["is_labeled"]) == [True] * 4 + [False] * 2
    assert r.subject == "worm0" and r.dataset == "Yemini2021" and r.units == "z"
    assert r.n_samples == 30 and r.fs == pytest.approx(1 / 0.333, rel=1e-3)
    for j, name in enumerate(r.channel_info["source_name"]):
        row = df[(df.source_dataset == "Yemini2021") & (df.worm == "worm0") & (df.neuron == name)].iloc[0]
        np.testing.assert_array_equal(r.data[:, j], row["calcium_data"])
        assert r.channel_info["slot"][j] == row["slot"]
    # original traces on their own time axis
    o = read(path, trace="original", worms="Yemini2021/worm0")[0]
    assert o.n_samples == 40 and o.fs == pytest.approx(4.0, rel=1e-4)
    row = df[(df.source_dataset == "Yemini2021") & (df.worm == "worm0") & (df.neuron == "AS2")].iloc[0]
    np.testing.assert_array_equal(o.data[:, o.labels.index("AS2")], row["original_calcium_data"])
    with pytest.raises(InputError, match="smoothed"):
        read(path, trace="smooth")


def test_parquet_selection_pushdown(parquet_file, monkeypatch):
    import pyarrow.parquet as pq

    path, _ = parquet_file
    seen = {}
    real = pq.read_table

    def spy(*a, **k):
        seen.update(k)
        return real(*a, **k)

    monkeypatch.setattr(pq, "read_table", spy)
    recs = read(path, datasets="Yemini2021", worms="worm3", labeled_only="true")
    assert [r.id for r in recs] == ["Yemini2021/worm3"]
    assert ("source_dataset", "in", ["Yemini2021"]) in seen["filters"]
    assert "original_calcium_data" not in seen["columns"]
    recs = read(path, worms=["Yemini2021/worm0", "worm1"], neurons="AVAL,AVAR")
    assert [(r.id, r.labels) for r in recs] == [
        ("Flavell2023/worm1", ("AVAL",)), ("Yemini2021/worm0", ("AVAR",))
    ]
    with pytest.raises(InputError, match="datasets in the file: Flavell2023, Kato2015, Yemini2021"):
        read(path, datasets="Nope2020")


def test_ingest_selection_on_parquet(cli, parquet_file, tmp_path):
    path, _ = parquet_file
    out = tmp_path / "rec.h5"
    r = cli("ingest", path, "--out", out, "--datasets", "Yemini2021,Kato2015", "--subjects", "worm0",
            "--labeled-only")
    assert r.exit_code == 0, r.output
    recs = store.read_recordings(out)
    assert [x.id for x in recs] == ["Kato2015/worm0", "Yemini2021/worm0"]
    assert recs[1].labels == ("ADAL", "AS10", "AS2", "AVAR")
    out2 = tmp_path / "rec2.h5"
    r = cli("ingest", path, "--out", out2, "--neurons", "AVAL,RIML")
    assert r.exit_code == 0, r.output
    got = {x.id: x.labels for x in store.read_recordings(out2)}
    assert got == {"Flavell2023/worm1": ("AVAL",), "Kato2015/worm0": ("AVAL", "RIML"),
                   "Yemini2021/worm3": ("AVAL",)}
    out3 = tmp_path / "rec3.h5"
    r = cli("ingest", path, "--out", out3, "--reader-options", "datasets=Flavell2023",
            "--reader-options", "trace=original")
    assert r.exit_code == 0, r.output
    (rec,) = store.read_recordings(out3)
    assert rec.id == "Flavell2023/worm1" and rec.n_samples == 11
    assert rec.channel_info["is_labeled"].tolist() == [True, True, False, False]


def test_parquet_sharded_folder(tmp_path):
    import pyarrow.parquet as pq

    d = tmp_path / "celegans_neural_data" / "data"
    d.mkdir(parents=True)
    df = make_parquet(tmp_path / "whole.parquet", shuffle=False)
    table = pq.read_table(tmp_path / "whole.parquet")
    n = len(df) // 2
    pq.write_table(table.slice(0, n), d / "train-00000-of-00002.parquet")
    pq.write_table(table.slice(n), d / "train-00001-of-00002.parquet")
    folder = tmp_path / "celegans_neural_data"
    assert find_reader(folder).name == "celegans-parquet"
    whole = {r.id: r for r in read(tmp_path / "whole.parquet")}
    shards = {r.id: r for r in read(folder)}
    assert whole.keys() == shards.keys()
    for k in whole:
        assert whole[k].labels == shards[k].labels
        np.testing.assert_array_equal(whole[k].data, shards[k].data)
    assert [r.id for r in read(folder, datasets="Kato2015")] == ["Kato2015/worm0"]


def test_parquet_stimulus_table(parquet_file, tmp_path, cli):
    path, _ = parquet_file
    stim = tmp_path / "yemini_stimuli.csv"
    pd.DataFrame(
        {"dataset": ["Yemini2021"] * 3 + [""], "worm": ["", "", "worm3", "Kato2015/worm0"],
         "onset": [1.0, 3.0, 5.0, 2.0], "offset": [2.0, 4.0, 6.0, 2.5],
         "label": ["2-butanone", "NaCl", "2,3-pentanedione", "O2"]}
    ).to_csv(stim, index=False)
    recs = {r.id: r for r in read(path, stimuli=str(stim))}
    assert recs["Yemini2021/worm0"].events["label"].tolist() == ["2-butanone", "NaCl"]
    assert recs["Yemini2021/worm3"].events["onset"].tolist() == [1.0, 3.0, 5.0]
    assert recs["Kato2015/worm0"].events["label"].tolist() == ["O2"]
    assert recs["Flavell2023/worm1"].events.empty
    out = tmp_path / "rec.h5"
    r = cli("ingest", path, "--out", out, "--datasets", "Yemini2021", "--reader-options", f"stimuli={stim}")
    assert r.exit_code == 0, r.output
    back = {x.id: x for x in store.read_recordings(out)}
    assert back["Yemini2021/worm3"].events["label"].tolist() == ["2-butanone", "NaCl", "2,3-pentanedione"]
    bad = tmp_path / "bad.csv"
    bad.write_text("onset,offset,label\n3,1,x\n")
    one_line_error(cli("ingest", path, "--out", out.with_name("b.h5"), "--reader-options", f"stimuli={bad}"),
                   str(bad), "offset >= onset")


def test_parquet_broken(cli, tmp_path, parquet_file):
    path, _ = parquet_file
    data = path.read_bytes()
    trunc = tmp_path / "trunc.parquet"
    trunc.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.parquet"
    bad = bytearray(data)
    bad[-200:-8] = b"\xff" * 192  # footer metadata garbled, magic intact
    corrupt.write_bytes(bytes(bad))
    dup = tmp_path / "dup.parquet"
    make_parquet(dup, dup=0)
    nan = tmp_path / "nan.parquet"
    make_parquet(nan, nan=True)
    wrong = tmp_path / "wrong.parquet"
    make_parquet(wrong)
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(wrong).drop(["time_in_seconds"]), wrong)
    for broken in (trunc, corrupt, dup, nan, wrong):
        out = tmp_path / f"out-{broken.stem}.h5"
        r = cli("ingest", broken, "--out", out)
        one_line_error(r, str(broken))
        assert_no_output(out)
    r = cli("ingest", dup, "--out", tmp_path / "o.h5")
    assert "duplicate" in r.stderr


# ----------------------------------------------------------------------------------------
# the intermediate pickle (<Dataset>.pickle)
# ----------------------------------------------------------------------------------------


def make_pickle(path: Path, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    data = {}
    for k, (named, unnamed, T) in enumerate([(["AVAL", "AS2", "AS10"], ["5"], 12), (["RIML"], [], 9)]):
        slots_l = {CANONICAL_NEURONS.index(n): n for n in named}
        free = [s for s in range(300) if s not in slots_l]
        slots_u = {free[-1 - i]: n for i, n in enumerate(unnamed)}
        x = np.zeros((T, 300), np.float32)
        xo = np.zeros((T + 3, 300), np.float32)
        for s in [*slots_l, *slots_u]:
            x[:, s] = rng.standard_normal(T)
            xo[:, s] = rng.standard_normal(T + 3)
        labm = np.zeros(300, bool)
        labm[list(slots_l)] = True
        data[f"worm{k}"] = {
            "calcium_data": x, "smooth_calcium_data": x * 0.5, "original_calcium_data": xo,
            "time_in_seconds": (np.arange(T) * 0.333).astype(np.float32).reshape(-1, 1),
            "original_time_in_seconds": (np.arange(T + 3) * 0.25).reshape(-1, 1),
            "max_timesteps": T, "original_max_timesteps": T + 3,
            "labeled_neurons_mask": labm,
            "slot_to_labeled_neuron": slots_l, "slot_to_unlabeled_neuron": slots_u,
            "slot_to_neuron": {**slots_l, **slots_u},
            "source_dataset": "Kato2015", "worm": f"worm{k}", "smooth_method": "moving",
            "extra_info": {"citation": "Kato et al. 2015", "data_file": "WT_Stim.mat"},
        }
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return data


def test_pickle_reader(tmp_path):
    path = tmp_path / "Kato2015.pickle"
    data = make_pickle(path)
    assert find_reader(path).name == "celegans-pickle"
    recs = read(path)
    assert [r.id for r in recs] == ["Kato2015/worm0", "Kato2015/worm1"]
    r = recs[0]
    assert r.labels == ("AS10", "AS2", "AVAL", "roi5")
    assert r.channel_info["is_labeled"].tolist() == [True, True, True, False]
    s = CANONICAL_NEURONS.index("AVAL")
    np.testing.assert_array_equal(r.data[:, 2], data["worm0"]["calcium_data"][:, s])
    sm = read(path, trace="smooth", worms="worm0")[0]
    np.testing.assert_allclose(sm.data, r.data * 0.5)
    o = read(path, trace="original", labeled_only=True)[0]
    assert o.n_samples == 15 and o.fs == pytest.approx(4.0) and o.labels == ("AS10", "AS2", "AVAL")
    assert r.meta["extra_data_file"] == "WT_Stim.mat"


def test_pickle_tensors_and_refusals(tmp_path):
    from neurodyn.io.readers.celegans_collection import to_numpy

    class FakeTensor:  # torch-like: has .numpy()
        def __init__(self, a):
            self.a = a

        def numpy(self):
            return self.a

    np.testing.assert_array_equal(to_numpy(FakeTensor(np.arange(3))), np.arange(3))
    evil = tmp_path / "evil.pickle"
    evil.write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueR.")
    with pytest.raises(InputError, match="refusing"):
        read(evil)
    evil.write_bytes(b"\x80\x02cnumpy\nload\nX\x03\x00\x00\x00abcR.")
    with pytest.raises(InputError, match="refusing to load numpy.load"):
        read(evil)
    try:
        import torch  # noqa: F401
    except ImportError:
        t = tmp_path / "Torchy.pickle"
        t.write_bytes(b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n)R.")
        with pytest.raises(InputError, match="install torch"):
            read(t)


def test_pickle_broken(cli, tmp_path):
    path = tmp_path / "Kato2015.pickle"
    make_pickle(path)
    trunc = tmp_path / "trunc.pickle"
    trunc.write_bytes(path.read_bytes()[:300])
    out = tmp_path / "o.h5"
    one_line_error(cli("ingest", trunc, "--out", out), str(trunc))
    assert_no_output(out)


# ----------------------------------------------------------------------------------------
# raw lab formats
# ----------------------------------------------------------------------------------------


def _cell(items) -> np.ndarray:
    arr = np.empty((1, len(items)), dtype=object)
    for i, x in enumerate(items):
        arr[0, i] = x
    return arr


def _zimmer_worms(rng):
    ids = [["AVAL", "", ["RIML", "RIMR"], "SMB??", "AVAL", "42"], ["ASKL", "AVBR", ""]]
    traces = [rng.standard_normal((50, 6)), rng.standard_normal((40, 3))]
    tvs = [np.arange(50) / 2.85, np.arange(40) / 2.85]
    return ids, traces, tvs


def test_zimmer_mat_v5(tmp_path):
    rng = np.random.default_rng(2)
    ids, traces, tvs = _zimmer_worms(rng)
    path = tmp_path / "WT_Stim.mat"
    stim = {"switchtimes": np.array([10.0, 15.0]), "initialstate": 0, "identity": "O2"}
    struct = {
        "IDs": _cell([_cell([_cell([x]) if isinstance(x, list) else x for x in w]) for w in ids]),
        "traces": _cell(traces), "timeVectorSeconds": _cell(tvs), "stimulus": stim,
    }
    scipy.io.savemat(path, {"WT_Stim": struct})
    assert find_reader(path).name == "celegans-zimmer"
    a, b = read(path)
    assert a.id == "Kato2015/WT_Stim-worm0" and b.subject == "WT_Stim-worm1"
    assert a.labels == ("AVAL", "RIML", "SMBDL", "roi1", "roi4", "roi5")
    np.testing.assert_allclose(a.data[:, 0], traces[0][:, 0].astype(np.float32))
    np.testing.assert_allclose(a.data[:, 3], traces[0][:, 1].astype(np.float32))
    assert a.channel_info["ambiguous"].tolist()[2] and a.fs == pytest.approx(2.85)
    assert a.events[["onset", "offset"]].values.tolist() == [[10.0, 15.0]]
    assert a.events["label"].tolist() == ["O2"]
    assert b.labels == ("ASKL", "AVBR", "roi2")


def test_zimmer_single_worm_wbdata(tmp_path):
    rng = np.random.default_rng(12)
    path = tmp_path / "TS20140715e_lite-1_punc-31_NLS3_2eggs_56um_1mMTet_basal_1080s.mat"
    x = rng.standard_normal((30, 3))
    scipy.io.savemat(path, {"wbData": {"NeuronIds": _cell(["AVAL", "", "ALA"]), "deltaFOverF_bc": x,
                                       "deltaFOverF": x + 1, "tv": np.arange(30) / 2.85}})
    (r,) = read(path)
    assert r.dataset == "Kato2015" and r.subject == path.stem
    assert r.labels == ("ALA", "AVAL", "roi1")
    np.testing.assert_allclose(r.data[:, 0], x[:, 2].astype(np.float32))


def test_zimmer_struct_array(tmp_path):
    rng = np.random.default_rng(13)
    ids, traces, tvs = _zimmer_worms(rng)
    arr = np.empty((1, 2), dtype=[("NeuronNames", object), ("traces", object), ("tv", object)])
    for k in range(2):
        arr[0, k] = (_cell([x[0] if isinstance(x, list) else x for x in ids[k]]), traces[k], tvs[k])
    path = tmp_path / "WT_fasted.mat"
    scipy.io.savemat(path, {"WT_fasted": arr})
    a, b = read(path)
    assert a.dataset == "Skora2018" and a.labels[:3] == ("AVAL", "RIML", "SMBDL")
    np.testing.assert_allclose(b.data[:, 0], traces[1][:, 0].astype(np.float32))


def _write_v73(path: Path, var: str, struct: dict):
    """A MATLAB v7.3 file: 512-byte text header, struct as a group, cells as references."""
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        counter = iter(range(10**6))

        def put(group, name, value):
            if isinstance(value, list):
                dt = h5py.ref_dtype
                ds = group.create_dataset(name, (len(value), 1), dtype=dt)
                ds.attrs["MATLAB_class"] = np.bytes_("cell")
                for i, v in enumerate(value):
                    key = f"r{next(counter)}"
                    put(refs, key, v)
                    ds[i, 0] = refs[key].ref
            elif isinstance(value, str):
                ds = group.create_dataset(name, data=np.array([[ord(c)] for c in value], np.uint16))
                ds.attrs["MATLAB_class"] = np.bytes_("char")
            else:
                ds = group.create_dataset(name, data=np.asarray(value, np.float64).T)
                ds.attrs["MATLAB_class"] = np.bytes_("double")

        g = f.create_group(var)
        g.attrs["MATLAB_class"] = np.bytes_("struct")
        for k, v in struct.items():
            put(g, k, v)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + bytes(8) + b"\x00\x02IM")


def test_zimmer_mat_v73(tmp_path):
    rng = np.random.default_rng(3)
    ids, traces, tvs = _zimmer_worms(rng)
    path = tmp_path / "Neuron2019_Data_RIShisCl.mat"
    _write_v73(path, "RIShisCl_Neuron2019", {
        "neuron_ID": [[x if isinstance(x, str) else x for x in w] for w in ids],
        "traces_bleach_corrected": traces, "time_vector": tvs,
    })
    assert find_reader(path).name == "celegans-zimmer"
    a, b = read(path)
    assert a.dataset == "Kaplan2020"
    assert a.labels == ("AVAL", "RIML", "SMBDL", "roi1", "roi4", "roi5")
    np.testing.assert_allclose(a.data[:, 1], traces[0][:, 2].astype(np.float32))
    np.testing.assert_allclose(b.times, tvs[1])


def test_yemini_mat(tmp_path):
    rng = np.random.default_rng(4)
    files = ["20190925_worm1", "20190925_worm2"]
    T = 60
    acts = {n: [rng.standard_normal(T) for _ in range(4)] for n in ("AVA", "SMDD")}
    acts["AVG"] = [rng.standard_normal(T), np.zeros(0)]  # not bilateral; absent in worm 2
    # first half: first member of the pair per worm, second half: second member; 1 = left
    is_l = {"AVA": [1, 1, 0, 0], "SMDD": [0, 1, 1, 0], "AVG": [np.nan, np.nan]}
    m = {
        "fps": 4.0, "files": _cell(files), "neurons": _cell(["AVA", "SMDD", "AVG"]),
        "is_L": _cell([_cell(is_l[n]) for n in ("AVA", "SMDD", "AVG")]),
        "norm_traces": _cell([_cell(acts[n]) for n in ("AVA", "SMDD", "AVG")]),
        "stim_names": _cell(["2-butanone", "2,3-pentanedione", "NaCl"]),
        "stim_times": np.array([[60.0, 70.0], [100.0, 110.0], [140.0, 150.0]]),
    }
    path = tmp_path / "Head_Activity_OH15500.mat"
    scipy.io.savemat(path, m)
    assert find_reader(path).name == "celegans-yemini"
    a, b = read(path)
    assert a.id == "Yemini2021/Head_Activity_OH15500-worm0" and a.fs == pytest.approx(4.0)
    assert a.labels == ("AVAL", "AVAR", "AVG", "SMDDL", "SMDDR")
    assert b.labels == ("AVAL", "AVAR", "SMDDL", "SMDDR")
    assert a.n_samples == T - 4 and a.times[0] == 0.0
    np.testing.assert_allclose(a.data[:, a.labels.index("AVAR")], acts["AVA"][2][4:].astype(np.float32))
    np.testing.assert_allclose(b.data[:, b.labels.index("SMDDL")], acts["SMDD"][1][4:].astype(np.float32))
    assert a.events["label"].tolist() == ["2-butanone", "2,3-pentanedione", "NaCl"]
    assert a.events["offset"].tolist() == [70.0, 110.0, 150.0]


def test_flavell2023_json_and_h5(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 30))
    t = 1000.0 + np.arange(30) * 0.6
    d = {
        "trace_array": x.tolist(), "trace_original": (x * 3 + 10).tolist(),
        "timestamp_confocal": t.tolist(),
        "labeled": {"1": {"label": "SMB??", "confidence": 3}, "2": {"label": "AVAL"},
                    "4": {"label": "SMB??"}, "5": {"label": "SMBDL"}},
        "reversal_events": [[3, 6], [20, 24]], "velocity": [0.0] * 30,
    }
    js = tmp_path / "2021-05-26-07.json"
    js.write_text(json.dumps(d))
    assert find_reader(js).name == "celegans-flavell2023"
    (r,) = read(js)
    assert r.labels == ("AVAL", "SMBDL", "SMBDR", "SMBVL", "roi2")
    assert r.channel_info["source_column"].tolist() == [1, 4, 0, 3, 2]
    assert r.channel_info["ambiguous"].tolist() == [False, False, True, True, False]
    np.testing.assert_allclose(r.data[:, 0], x[1].astype(np.float32))
    assert r.units == "z" and r.time[0] == 0.0 and r.meta["time_origin_s"] == 1000.0
    np.testing.assert_allclose(r.events[["onset", "offset"]].values, [[1.2, 3.0], [11.4, 13.8]])
    (o,) = read(js, trace="original")
    np.testing.assert_allclose(o.data[:, 0], (x[1] * 3 + 10).astype(np.float32), rtol=1e-6)
    h5 = tmp_path / "2021-05-26-07.h5"
    with h5py.File(h5, "w") as f:
        f["trace_array"] = x
        f["trace_original"] = x * 3 + 10
        f["timestamp_confocal"] = t
        f["labeled/2/label"] = "AVAL"
        f["labeled/1/label"] = "SMB??"
    assert find_reader(h5).name == "celegans-flavell2023-h5"
    (h,) = read(h5)
    assert h.labels == ("AVAL", "SMBDL", "roi2", "roi3", "roi4")
    assert r.id == "Flavell2023/2021-05-26-07" and h.dataset == "Flavell2023"
    d["uid"] = "2022-07-27-38"  # a Dag2023 worm served by WormWideWeb
    js.write_text(json.dumps(d))
    assert read(js)[0].id == "Dag2023/2021-05-26-07"


def test_leifer_txt(tmp_path, cli):
    rng = np.random.default_rng(6)
    for i, labels in enumerate([["AVA", "", "AVA", "merge", "RID", "RID"], ["AWCL", "AVA"]]):
        x = rng.standard_normal((25, len(labels)))
        if i == 0:
            x[:, 3] = np.nan  # all-NaN ROI: dropped
            x[5:8, 0] = np.nan  # short gap: masked
        np.savetxt(tmp_path / f"{i}_gcamp.txt", x, fmt="%.6e", delimiter=" ")
        (tmp_path / f"{i}_labels.txt").write_text("\n".join(labels + ["EXTRA"]) + "\n")
        np.savetxt(tmp_path / f"{i}_t.txt", np.arange(25) / 2.0 + 7.0, fmt="%.6e")
    assert find_reader(tmp_path).name == "celegans-leifer"
    a, b = read(tmp_path)
    assert a.id == "Leifer2023/worm0" and a.labels == ("AVAL", "AVAR", "RID", "roi1", "roi5")
    assert a.meta["n_dropped_all_nan"] == 1
    assert a.mask is not None and not a.mask[5:8, 0].any() and a.mask[:, 1:].all()
    assert b.labels == ("AVAL", "AWCL") and b.fs == pytest.approx(2.0)
    (one,) = read(tmp_path / "1_gcamp.txt")
    assert one.labels == b.labels
    out = tmp_path / "rec.h5"
    r = cli("ingest", tmp_path / "0_gcamp.txt", "--out", out)
    assert r.exit_code == 0, r.output
    (back,) = store.read_recordings(out)
    np.testing.assert_array_equal(back.mask, a.mask)


def test_lin_mat(tmp_path):
    rng = np.random.default_rng(7)
    F = rng.random((4, 20)) + 1
    F[:, 0] = np.nan
    m = {
        "corrected_F": F, "F_0": np.array([[1.0], [2.0], [3.0], [4.0]]),
        "use_flag": np.array([[1], [0], [1], [1]]),
        "proofread_neurons": _cell(["AWCL", "AWCR", "ASHL", ""]),
        "times": _cell([np.vstack([np.zeros(20), np.arange(20) * 0.2])]),
    }
    path = tmp_path / "20220101_worm5.mat"
    scipy.io.savemat(path, m)
    assert find_reader(path).name == "celegans-lin"
    (r,) = read(path)
    assert r.labels == ("ASHL", "AWCL", "roi2")
    assert r.data[0].tolist() == [3.0, 1.0, 4.0] and r.fs == pytest.approx(5.0)


def test_venkatachalam_zip(tmp_path):
    rng = np.random.default_rng(8)
    meta = {"neuron": ["AVAL", "ASEL", "RMD?"], "worm": [1, 1, 1], "stim": ["x"] * 3}
    df = pd.DataFrame(meta)
    blank = pd.DataFrame(np.nan, index=range(3), columns=[str(i) for i in range(5)])
    vals = pd.DataFrame(rng.standard_normal((3, 12)), columns=[str(i) for i in range(5, 17)])
    table = pd.concat([df, blank, vals], axis=1)
    path = tmp_path / "worm_2024_01.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("worm_2024_01.csv", table.to_csv(index=False))
    assert find_reader(path).name == "celegans-venkatachalam"
    (r,) = read(path)
    assert r.labels == ("ASEL", "AVAL", "RMDL")
    assert r.n_samples == 12 and r.fs == pytest.approx(1 / 0.375) and r.time[0] == 0.0


def test_nejatbakhsh_nwb(tmp_path):
    rng = np.random.default_rng(9)
    path = tmp_path / "worm_07.nwb"
    with h5py.File(path, "w") as f:
        f["processing/CalciumActivity/SignalRawFluor/SignalCalciumImResponseSeries/data"] = (
            rng.random((16, 3))
        )
        f["processing/CalciumActivity/NeuronIDs/labels"] = np.array([b"AVAR", b"", b"URXL"])
    assert find_reader(path).name == "celegans-nwb"
    (r,) = read(path)
    assert r.id == "Nejatbakhsh2020/worm_07" and r.labels == ("AVAR", "URXL", "roi1")
    assert r.fs == pytest.approx(4.0)


def test_raw_broken(cli, tmp_path):
    # Yemini file whose trace cells do not match the worm count, and a NaN-only Leifer worm
    bad = tmp_path / "Tail_Activity_OH16230.mat"
    scipy.io.savemat(bad, {"fps": 4.0, "files": _cell(["a", "b"]), "neurons": _cell(["AVA"]),
                           "is_L": _cell([_cell([1, 1, 1])]),
                           "norm_traces": _cell([_cell([np.ones(9)] * 3)])})
    out = tmp_path / "o.h5"
    one_line_error(cli("ingest", bad, "--out", out), str(bad), "trace cells")
    assert_no_output(out)
    d = tmp_path / "leifer"
    d.mkdir()
    np.savetxt(d / "0_gcamp.txt", np.full((5, 2), np.nan))
    (d / "0_labels.txt").write_text("AVAL\nAVAR\n")
    np.savetxt(d / "0_t.txt", np.arange(5.0))
    one_line_error(cli("ingest", d / "0_gcamp.txt", "--out", out), "0_gcamp.txt", "NaN")
    assert_no_output(out)
    trunc = tmp_path / "WT_NoStim.mat"
    rng = np.random.default_rng(0)
    ids, traces, tvs = _zimmer_worms(rng)
    scipy.io.savemat(trunc, {"WT_NoStim": {"IDs": _cell([_cell(w) for w in ids]),
                                           "traces": _cell(traces), "timeVectorSeconds": _cell(tvs)}})
    trunc.write_bytes(trunc.read_bytes()[:400])
    one_line_error(cli("ingest", trunc, "--out", out), str(trunc))
    assert_no_output(out)
