"""Spike-train readers and the binning kernel."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
from conftest import shared_file

from neurodyn.binning import bin_spikes, bin_trains
from neurodyn.errors import InputError
from neurodyn.io import store
from neurodyn.io.registry import find_reader, read
from neurodyn.params import ParamError

REAL_COUNTS = [3238, 2532, 1167, 1253, 485, 3423, 1253, 1593, 1056, 1771, 5230, 2610, 4756,
               2711, 1231, 803]


def reference_bins(times, units, n_units, t0, t1, width):
    """Slow, obvious reference: np.histogram per unit with explicit edges."""
    n_bins = int(np.ceil((t1 - t0) / width))
    edges = t0 + np.arange(n_bins + 1) * width
    out = np.zeros((n_bins, n_units))
    for u in range(n_units):
        t = times[(units == u) & (times >= t0) & (times < t1)]
        out[:, u] = np.histogram(t, bins=edges)[0]
    return out


def random_trains(seed=0, n_units=7, rate=20.0, duration=30.0):
    rng = np.random.default_rng(seed)
    return [np.sort(rng.uniform(0.05, duration, rng.poisson(rate * duration))) for _ in range(n_units)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_histogram_reference(seed):
    rng = np.random.default_rng(seed)
    times = rng.uniform(-1, 11, 5000)
    units = rng.integers(0, 5, 5000)
    t0, t1, w = rng.uniform(0, 1), rng.uniform(8, 10), rng.choice([0.001, 0.01, 0.037])
    got = bin_spikes(times, units, 5, t0, t1, w)
    ref = reference_bins(times, units, 5, t0, t1, w)
    assert got.shape == ref.shape and got.dtype == np.float32
    # identical except possibly spikes lying exactly on a float-rounded bin edge
    assert np.abs(got - ref).sum() <= 2
    assert got.sum() == ((times >= t0) & (times < t1)).sum()


def test_bin_trains_defaults_count_every_spike():
    trains = random_trains()
    counts, starts, t0, t1 = bin_trains(trains, 0.01)
    np.testing.assert_array_equal(counts.sum(axis=0), [len(t) for t in trains])
    assert t0 <= min(t.min() for t in trains) < t0 + 0.01
    assert starts[-1] <= max(t.max() for t in trains) < t1
    np.testing.assert_allclose(np.diff(starts), 0.01)


def test_bin_spikes_rejects_bad_arguments():
    with pytest.raises(ValueError):
        bin_spikes(np.zeros(1), np.zeros(1, int), 1, 0, 1, 0)
    with pytest.raises(ValueError):
        bin_spikes(np.zeros(1), np.array([3]), 1, 0, 1, 0.1)


# -- the real MATLAB file -------------------------------------------------------------------
def test_real_unit_mat_matches_provenance():
    path = shared_file("spikes-rat-hippocampus-tetrode/all_unit.mat")
    assert find_reader(path).name == "spikes-mat"
    [rec] = read(path)
    assert rec.modality == "spikes" and rec.units == "counts"
    assert list(rec.labels) == [str(i) for i in range(16)]
    assert rec.fs == pytest.approx(100.0)  # default bin_ms = 10
    np.testing.assert_array_equal(rec.data.sum(axis=0), REAL_COUNTS)
    assert rec.channel_info["n_spikes"].tolist() == REAL_COUNTS
    assert int(rec.data.sum()) == 35_112 == rec.meta["n_spikes_total"]
    assert rec.meta["first_spike_s"] == pytest.approx(0.70, abs=0.005)
    assert rec.meta["last_spike_s"] == pytest.approx(998.18, abs=0.005)
    assert rec.times[0] <= rec.meta["first_spike_s"] < rec.times[0] + 0.01
    assert rec.times[-1] <= rec.meta["last_spike_s"] < rec.times[-1] + 0.01


def test_real_unit_mat_window_and_bin_width():
    path = shared_file("spikes-rat-hippocampus-tetrode/all_unit.mat")
    [rec] = read(path, bin_ms="50", t_start="100", t_stop="200")
    assert rec.fs == pytest.approx(20.0) and rec.n_samples == 2000
    m = scipy.io.loadmat(path)["unit_t"].ravel()
    inside = [int(((x >= 100) & (x < 200)).sum()) for x in m]
    np.testing.assert_array_equal(rec.data.sum(axis=0), inside)
    assert rec.meta["n_spikes_outside"] == 35_112 - sum(inside)


# -- tables ---------------------------------------------------------------------------------
def spike_frame(trains, unit="unit", time="time", region=True):
    rows = [(u, t) for u, tr in enumerate(trains) for t in tr]
    df = pd.DataFrame(rows, columns=[unit, time]).sample(frac=1.0, random_state=0)
    if region:
        df["region"] = np.where(df[unit] < 3, "CA1", "CA3")
    return df


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".npz"])
def test_table_formats_bin_like_the_kernel(tmp_path, suffix):
    trains = random_trains(seed=4)
    df = spike_frame(trains)
    path = tmp_path / f"spikes{suffix}"
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".tsv":
        df.to_csv(path, sep="\t", index=False)
    elif suffix == ".parquet":
        df.to_parquet(path)
    else:
        np.savez(path, **{c: df[c].to_numpy() for c in ["unit", "time"]})
    assert find_reader(path).name == "spikes-table"
    [rec] = read(path, bin_ms=20)
    counts, *_ = bin_trains(trains, 0.02)
    np.testing.assert_array_equal(rec.data, counts)
    assert list(rec.labels) == [str(i) for i in range(7)]
    if suffix != ".npz":
        assert list(rec.channel_info["region"]) == ["CA1"] * 3 + ["CA3"] * 4


def test_table_column_autodetect_and_options(tmp_path):
    trains = random_trains(seed=5, n_units=3)
    df = spike_frame(trains, unit="cluster", time="spike_time", region=False)
    df["spike_time"] *= 1000.0
    path = tmp_path / "ms.csv"
    df.to_csv(path, index=False)
    [rec] = read(path, time_unit="ms")
    np.testing.assert_array_equal(rec.data.sum(axis=0), [len(t) for t in trains])
    other = tmp_path / "odd.csv"
    df.rename(columns={"cluster": "who", "spike_time": "when"}).to_csv(other, index=False)
    [rec2] = read(other, format="spikes-table", unit_col="who", time_col="when", time_unit="ms")
    np.testing.assert_array_equal(rec2.data, rec.data)


def test_table_string_unit_ids(tmp_path):
    df = pd.DataFrame({"unit": ["b", "a", "b", "c"], "t": [0.1, 0.2, 0.3, 0.35]})
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    [rec] = read(path, bin_ms=100)
    assert list(rec.labels) == ["a", "b", "c"]
    np.testing.assert_array_equal(rec.data.sum(axis=0), [1, 2, 1])


# -- NWB ------------------------------------------------------------------------------------
def make_nwb(path: Path, trains, *, empty=False) -> Path:
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject

    nwb = NWBFile(session_description="test", identifier="sess-1",
                  session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
                  subject=Subject(subject_id="rat7", species="Rattus norvegicus"))
    dev = nwb.create_device("probe")
    groups = [nwb.create_electrode_group(f"tetrode{i}", "tt", location=loc, device=dev)
              for i, loc in enumerate(["CA1", "CA3"])]
    for i in range(4):
        nwb.add_electrode(group=groups[i // 2], location=groups[i // 2].location)
    if empty:
        from pynwb.misc import Units

        nwb.units = Units(name="units", description="no units")  # written with zero rows
    for u, tr in enumerate(trains):
        nwb.add_unit(spike_times=tr, electrodes=[2 * (u % 2)], id=100 + u)
    nwb.add_trial_column("trial_type", "kind of trial")
    nwb.add_trial(start_time=1.0, stop_time=2.5, trial_type="left")
    nwb.add_trial(start_time=3.0, stop_time=4.0, trial_type="right")
    nwb.add_epoch(start_time=0.0, stop_time=10.0, tags=["sleep"])
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_nwb_units_regions_and_events(tmp_path):
    trains = random_trains(seed=6, n_units=4, duration=12.0)
    path = make_nwb(tmp_path / "s.nwb", trains)
    assert find_reader(path).name == "spikes-nwb"
    [rec] = read(path, bin_ms=5)
    assert list(rec.labels) == ["100", "101", "102", "103"]
    assert rec.subject == "rat7" and rec.fs == pytest.approx(200.0)
    counts, *_ = bin_trains(trains, 0.005)
    np.testing.assert_array_equal(rec.data, counts)
    assert list(rec.channel_info["region"]) == ["CA1", "CA3", "CA1", "CA3"]
    ev = rec.events
    assert list(ev["label"]) == ["left", "right", "sleep"]
    np.testing.assert_allclose(ev["onset"], [1.0, 3.0, 0.0])
    np.testing.assert_allclose(ev["offset"], [2.5, 4.0, 10.0])


# -- broken inputs through the CLI ----------------------------------------------------------
def _expect_exit2(cli, path: Path, out: Path, *extra: str) -> str:
    res = cli("ingest", path, "--out", out, *extra)
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert not out.exists()
    return lines[0]


def test_broken_nwb_empty_units_table(tmp_path, cli):
    path = make_nwb(tmp_path / "e.nwb", [], empty=True)
    assert "empty units table" in _expect_exit2(cli, path, tmp_path / "o.h5")


def test_broken_nwb_truncated(tmp_path, cli):
    src = make_nwb(tmp_path / "s.nwb", random_trains(n_units=2)).read_bytes()
    bad = tmp_path / "t.nwb"
    bad.write_bytes(src[: len(src) // 3])
    _expect_exit2(cli, bad, tmp_path / "o.h5")


def test_broken_mat_truncated_and_wrong_header(tmp_path, cli):
    path = shared_file("spikes-rat-hippocampus-tetrode/all_unit.mat")
    src = path.read_bytes()
    bad = tmp_path / "trunc.mat"
    bad.write_bytes(src[: len(src) // 2])
    _expect_exit2(cli, bad, tmp_path / "o.h5")
    bad2 = tmp_path / "hdr.mat"
    bad2.write_bytes(b"NOTAMAT" + src[7:])
    assert "no reader recognises" in _expect_exit2(cli, bad2, tmp_path / "o.h5")


def test_mat_integer_sample_times_need_a_time_unit(tmp_path, cli):
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0] = np.array([[0.5], [1.5]])
    cell[0, 1] = np.array([[300], [45_000]], dtype=np.int64)  # samples at 30 kHz
    scipy.io.savemat(tmp_path / "s.mat", {"unit_t": cell})
    msg = _expect_exit2(cli, tmp_path / "s.mat", tmp_path / "o.h5")
    assert "cell 1" in msg and "time_unit=samples fs=HZ" in msg
    [rec] = read(tmp_path / "s.mat", time_unit="samples", fs=30000, bin_ms=500, t_start=0)
    assert rec.data[:, 1].tolist() == [1, 0, 0, 1]  # 0.01 s and 1.5 s: bins 0 and 3


def test_broken_mat_nan_and_empty_cells(tmp_path, cli):
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0] = np.array([[0.1], [np.nan]])
    cell[0, 1] = np.array([[0.2]])
    scipy.io.savemat(tmp_path / "nan.mat", {"unit_t": cell})
    assert "non-finite" in _expect_exit2(cli, tmp_path / "nan.mat", tmp_path / "o.h5")
    cell[0, 0] = np.zeros((0, 1))
    cell[0, 1] = np.zeros((0, 1))
    scipy.io.savemat(tmp_path / "empty.mat", {"unit_t": cell})
    assert "no spikes" in _expect_exit2(cli, tmp_path / "empty.mat", tmp_path / "o.h5")


def test_broken_tables(tmp_path, cli):
    (tmp_path / "header_only.csv").write_text("unit,time\n")
    assert "empty" in _expect_exit2(cli, tmp_path / "header_only.csv", tmp_path / "o.h5")
    (tmp_path / "nan.csv").write_text("unit,time\n0,0.1\n1,\n")
    assert "missing" in _expect_exit2(cli, tmp_path / "nan.csv", tmp_path / "o.h5")
    (tmp_path / "cols.csv").write_text("a,b\n0,0.1\n")
    msg = _expect_exit2(cli, tmp_path / "cols.csv", tmp_path / "o.h5")
    assert "valid text table" in msg and "unit_col=a time_col=b" in msg
    (tmp_path / "ok.csv").write_text("unit,time\n0,0.1\n")
    res = cli("ingest", tmp_path / "ok.csv", "--out", tmp_path / "o.h5", "--reader-options",
              "bin_ms=-1")
    assert res.exit_code == 2 and "bin_ms" in res.output and not (tmp_path / "o.h5").exists()


def test_bad_window_is_input_error(tmp_path):
    (tmp_path / "ok.csv").write_text("unit,time\n0,0.1\n1,0.2\n")
    with pytest.raises(ParamError, match="t_stop"):
        read(tmp_path / "ok.csv", t_start=1, t_stop=0.5)
    with pytest.raises(InputError, match="no spike falls"):
        read(tmp_path / "ok.csv", t_start=5, t_stop=6)


def test_cli_ingest_spikes_with_bin_option(tmp_path, cli):
    path = shared_file("spikes-rat-hippocampus-tetrode/all_unit.mat")
    out = tmp_path / "rec.h5"
    res = cli("ingest", path, "--out", out, "--reader-options", "bin_ms=100")
    assert res.exit_code == 0, res.output
    [rec] = store.read_recordings(out)
    assert rec.fs == pytest.approx(10.0) and int(rec.data.sum()) == 35_112
    assert rec.channel_info["n_spikes"].tolist() == REAL_COUNTS


def test_bundled_sample_copy_reads_like_provenance():
    from conftest import SAMPLE

    [rec] = read(SAMPLE / "spikes" / "all_unit.mat")
    assert rec.channel_info["n_spikes"].tolist() == REAL_COUNTS


@pytest.mark.parametrize("suffix", [".parquet", ".npz"])
def test_broken_binary_tables_truncated(tmp_path, cli, suffix):
    df = spike_frame(random_trains(seed=7, n_units=2), region=False)
    good = tmp_path / f"good{suffix}"
    if suffix == ".parquet":
        df.to_parquet(good)
    else:
        np.savez(good, unit=df["unit"].to_numpy(), time=df["time"].to_numpy())
    src = good.read_bytes()
    bad = tmp_path / f"trunc{suffix}"
    bad.write_bytes(src[: len(src) // 2])
    _expect_exit2(cli, bad, tmp_path / "o.h5")
