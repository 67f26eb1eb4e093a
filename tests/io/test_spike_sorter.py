"""Spike-sorter output (phy / Kilosort folders) and binned count matrices as spikes recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import one_line_error

from neurodyn.errors import InputError
from neurodyn.io import store
from neurodyn.io.readers.phy import parse_params
from neurodyn.io.registry import find_reader, read
from neurodyn.params import ParamError

FS = 30_000.0
#: cluster id -> (curated group, KSLabel, channel, depth um, rate Hz)
CLUSTERS = {0: ("good", "good", 3, 40.0, 12.0), 2: ("good", "mua", 7, 120.0, 8.0),
            5: ("good", "good", 11, 200.0, 15.0), 7: ("mua", "mua", 14, 260.0, 20.0),
            9: ("noise", "good", 20, 380.0, 30.0)}


def phy_folder(root: Path, duration: float = 20.0, seed: int = 0, *, info: bool = True,
               group_file: bool = True) -> tuple[Path, dict[int, np.ndarray]]:
    """A Kilosort/phy folder: 3 good, 1 mua, 1 noise cluster; times in samples at 30 kHz.

    Returns the folder and each cluster's sorted spike times in samples.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    trains = {c: np.sort(rng.choice(int(duration * FS), rng.poisson(rate * duration),
                                    replace=False)).astype(np.uint64)
              for c, (*_, rate) in CLUSTERS.items()}
    times = np.concatenate(list(trains.values()))
    clus = np.concatenate([np.full(len(t), c, np.int32) for c, t in trains.items()])
    order = np.argsort(times, kind="stable")
    np.save(root / "spike_times.npy", times[order].reshape(-1, 1))  # Kilosort writes (S, 1)
    np.save(root / "spike_clusters.npy", clus[order])
    (root / "params.py").write_text(
        "dat_path = 'session_g0_t0.imec0.ap.bin'\nn_channels_dat = 385\ndtype = 'int16'\n"
        "offset = 0\nsample_rate = 30000.\nhp_filtered = False\n")
    if group_file:
        (root / "cluster_group.tsv").write_text(
            "cluster_id\tgroup\n" + "".join(f"{c}\t{g}\n" for c, (g, *_) in CLUSTERS.items()))
    (root / "cluster_KSLabel.tsv").write_text(
        "cluster_id\tKSLabel\n" + "".join(f"{c}\t{v[1]}\n" for c, v in CLUSTERS.items()))
    if info:
        rows = "".join(f"{c}\t{len(trains[c]) / duration:.3f}\t{ch}\t{d}\t{g}\t{ks}\t"
                       f"{len(trains[c])}\n" for c, (g, ks, ch, d, _) in CLUSTERS.items())
        (root / "cluster_info.tsv").write_text(
            "cluster_id\tfr\tch\tdepth\tgroup\tKSLabel\tn_spikes\n" + rows)
    return root, trains


def expected_counts(trains: dict[int, np.ndarray], ids, bin_samples: int = 300) -> np.ndarray:
    """Reference binning from t = 0 in exact integer arithmetic (10 ms = 300 samples)."""
    n_bins = int(max(trains[c].max() for c in ids)) // bin_samples + 1
    return np.stack([np.bincount((trains[c] // bin_samples).astype(np.int64), minlength=n_bins)
                     for c in ids], axis=1)


def no_output(res, out: Path, *needles: str) -> None:
    one_line_error(res, *needles)
    assert not out.exists() and not list(out.parent.glob(out.name + "*"))


# -- phy ------------------------------------------------------------------------------------
def test_phy_good_units_in_seconds_with_cluster_metadata(tmp_path):
    folder, trains = phy_folder(tmp_path / "ks")
    edge = {c: t - t % 300 for c, t in trains.items()}  # every spike on a bin edge
    np.save(folder / "spike_times.npy", np.concatenate(
        [edge[c] for c in CLUSTERS]).reshape(-1, 1))
    np.save(folder / "spike_clusters.npy", np.concatenate(
        [np.full(len(t), c, np.int32) for c, t in edge.items()]))
    trains = edge
    assert find_reader(folder).name == "phy"
    assert find_reader(folder / "params.py").name == "phy"
    assert find_reader(folder / "spike_times.npy").name == "phy"  # (S, 1): not a count matrix
    [rec] = read(folder)
    assert rec.modality == "spikes" and rec.units == "counts" and rec.id == "phy/ks"
    assert list(rec.labels) == ["0", "2", "5"]  # curated group beats KSLabel (2: mua -> good)
    assert rec.fs == pytest.approx(100.0) and rec.times[0] == 0.0
    np.testing.assert_array_equal(rec.data, expected_counts(trains, [0, 2, 5]))
    info = rec.channel_info
    assert list(info["group"]) == ["good"] * 3
    assert list(info["channel"]) == [3, 7, 11] and list(info["depth"]) == [40.0, 120.0, 200.0]
    np.testing.assert_allclose(info["firing_rate"], [len(trains[c]) / 20.0 for c in (0, 2, 5)],
                               atol=1e-3)
    assert rec.meta["sample_rate"] == FS and rec.meta["clusters_by_group"] == {
        "good": 3, "mua": 1, "noise": 1}
    assert rec.meta["n_spikes_other_clusters"] == len(trains[7]) + len(trains[9])


def test_phy_groups_option_and_kslabel_fallback(tmp_path):
    folder, trains = phy_folder(tmp_path / "ks")
    [rec] = read(folder, groups="good,mua")
    assert list(rec.labels) == ["0", "2", "5", "7"]
    assert list(read(folder, groups="all")[0].labels) == ["0", "2", "5", "7", "9"]
    # uncurated Kilosort output: labels from cluster_KSLabel.tsv only
    raw, _ = phy_folder(tmp_path / "raw", info=False, group_file=False)
    [rec] = read(raw)
    assert list(rec.labels) == ["0", "5", "9"] and "depth" not in rec.channel_info
    with pytest.raises(InputError, match="no cluster labelled"):
        read(raw, groups="nonsense")


def test_params_py_is_parsed_never_executed(tmp_path):
    folder, _ = phy_folder(tmp_path / "ks")
    canary = tmp_path / "executed"
    (folder / "params.py").write_text(
        f"import os\nopen({str(canary)!r}, 'w').write('x')\n"
        "dat_path = os.path.join('a', 'b.bin')\nsample_rate = 20000.0\nn_channels_dat = 4\n")
    params = parse_params(folder / "params.py")
    assert params == {"sample_rate": 20000.0, "n_channels_dat": 4}
    [rec] = read(folder)
    assert rec.meta["sample_rate"] == 20000.0 and not canary.exists()
    [rec] = read(folder, fs="30000")  # the option overrides params.py
    assert rec.meta["sample_rate"] == 30000.0


def test_phy_cli_and_bad_folders(tmp_path, cli):
    folder, trains = phy_folder(tmp_path / "ks")
    out = tmp_path / "run" / "rec.h5"
    res = cli("ingest", folder, "--out", out, "--reader-options", "groups=good,mua",
              "--reader-options", "bin_ms=50")
    assert res.exit_code == 0, res.output
    [rec] = store.read_recordings(out)
    assert list(rec.labels) == ["0", "2", "5", "7"] and rec.fs == pytest.approx(20.0)
    assert int(rec.data.sum()) == sum(len(trains[c]) for c in (0, 2, 5, 7))

    bad = tmp_path / "bad.h5"
    no_output(cli("ingest", folder, "--out", bad, "--reader-options", "bin=5"), bad,
              "phy takes no option bin; it takes: groups, fs, bin_ms")
    (folder / "spike_clusters.npy").rename(tmp_path / "clusters.npy")
    no_output(cli("ingest", folder, "--out", bad), bad, "spike_clusters.npy")
    np.save(folder / "spike_clusters.npy", np.load(tmp_path / "clusters.npy")[:-3])
    no_output(cli("ingest", folder, "--out", bad), bad, "spikes but spike_clusters.npy")
    (folder / "params.py").write_text("sample_rate = 'fast'\n")
    no_output(cli("ingest", folder, "--out", bad, "--format", "phy"), bad, "sample_rate")


# -- time_unit=samples and the binning size guard --------------------------------------------
def test_spike_table_in_samples_matches_phy(tmp_path, cli):
    folder, trains = phy_folder(tmp_path / "ks")
    npz = tmp_path / "spikes.npz"
    np.savez(npz, spike_times=np.load(folder / "spike_times.npy"),
             spike_clusters=np.load(folder / "spike_clusters.npy"))
    assert find_reader(npz).name == "spikes-table"
    [tab] = read(npz, time_unit="samples", fs="30000", t_start=0)
    [phy] = read(folder, groups="all")
    np.testing.assert_array_equal(tab.data, phy.data)
    bad = tmp_path / "bad.h5"
    no_output(cli("ingest", npz, "--out", bad), bad, "integers up to", "time_unit=samples fs=HZ")
    # read as seconds, 7 days of 10 us bins: refused before allocating, naming the size
    no_output(cli("ingest", npz, "--out", bad, "--reader-options", "bin_ms=0.01",
                  "--reader-options", "time_unit=s"), bad,
              "the binned spike counts would need", "TiB of memory", "time_unit=samples")
    with pytest.raises(ParamError, match="fs=HZ"):  # the CLI names --reader-options
        read(npz, time_unit="samples")


# -- format detection: valid-but-unknown layout versus corrupt ------------------------------
def test_detection_names_the_closest_reader_or_says_corrupt(tmp_path, cli):
    path = tmp_path / "odd.npz"
    np.savez(path, st=np.array([0.1, 0.2, 0.3]), clu=np.array([1, 1, 2]))
    with pytest.raises(InputError, match=r"valid NPZ .*closest reader spikes-table.*time_col=st"):
        find_reader(path)
    res = cli("ingest", path, "--out", tmp_path / "o.h5", "--reader-options", "unit_col=clu",
              "--reader-options", "time_col=st")
    assert res.exit_code == 0, res.output  # the options the user gave pick the reader
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match="truncated or corrupt"):
        find_reader(trunc)
    import h5py

    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["foo"] = [1]
    with pytest.raises(InputError, match=r"valid HDF5 \(top-level keys: foo\), but no reader"):
        find_reader(tmp_path / "x.h5")
    half = tmp_path / "half"
    half.mkdir()
    np.save(half / "spike_times.npy", np.arange(5))
    with pytest.raises(InputError, match="closest reader phy: .*--format phy"):
        find_reader(half)


# -- count matrices -------------------------------------------------------------------------
@pytest.fixture
def counts_matrix():
    rng = np.random.default_rng(3)
    return rng.poisson(rng.uniform(0.2, 4, size=4), size=(60, 4)).astype(np.int64)  # bins x units


def _write(path: Path, m: np.ndarray, *, header=None, index=None, sep=",") -> Path:
    df = pd.DataFrame(m, columns=header, index=index)
    df.to_csv(path, sep=sep, header=header is not None, index=index is not None)
    return path


def test_counts_round_trip_both_orientations(tmp_path, cli, counts_matrix):
    m = counts_matrix
    names = ["u1", "u2", "u3", "u4"]
    cases = [  # (file, options, expected labels)
        (_write(tmp_path / "bu.csv", m, header=names), [], names),
        (_write(tmp_path / "ub.tsv", m.T, index=names, sep="\t"), [], names),
        (_write(tmp_path / "plain.csv", m.T), ["orientation=units-by-bins"], ["0", "1", "2", "3"]),
    ]
    np.save(tmp_path / "m.npy", m.T.astype(np.uint16))
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    cases.append((tmp_path / "m.npy", [f"labels={tmp_path / 'names.txt'}"], names))
    for i, (path, opts, labels) in enumerate(cases):
        assert find_reader(path).name == "counts", path
        out = tmp_path / f"r{i}.h5"
        args = [a for o in ["bin_s=0.025", *opts] for a in ("--reader-options", o)]
        res = cli("ingest", path, "--out", out, *args)
        assert res.exit_code == 0, (path, res.output)
        [rec] = store.read_recordings(out)
        assert rec.modality == "spikes" and rec.units == "counts" and list(rec.labels) == labels
        assert rec.fs == pytest.approx(40.0) and rec.times[1] == pytest.approx(0.025)
        np.testing.assert_array_equal(rec.data.astype(np.int64), m)  # exact round trip
        assert list(rec.channel_info["n_spikes"]) == list(m.sum(axis=0))


def test_bad_count_matrices(tmp_path, cli, counts_matrix):
    m = counts_matrix.astype(float)
    out = tmp_path / "o.h5"
    frac, neg = m.copy(), m.copy()
    frac[5, 2], neg[7, 1] = 1.5, -2
    _write(tmp_path / "frac.csv", frac, header=list("abcd"))
    no_output(cli("ingest", tmp_path / "frac.csv", "--out", out, "--format", "counts",
                  "--reader-options", "bin_s=0.01"), out, "non-integer count 1.5 at row 6")
    np.save(tmp_path / "neg.npy", neg)
    no_output(cli("ingest", tmp_path / "neg.npy", "--out", out, "--format", "counts",
                  "--reader-options", "bin_s=0.01", "--reader-options", "orientation=bins-by-units"),
              out, "negative count")
    _write(tmp_path / "ok.csv", counts_matrix, header=list("abcd"))
    no_output(cli("ingest", tmp_path / "ok.csv", "--out", out), out, "bin_s")
    np.save(tmp_path / "sq.npy", counts_matrix[:4])
    no_output(cli("ingest", tmp_path / "sq.npy", "--out", out, "--reader-options", "bin_s=0.01"),
              out, "orientation=units-by-bins")
