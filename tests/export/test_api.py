"""The public API (``neurodyn.load``, ``neurodyn.open_run``), self-describing HDF5 files
(dimension scales, units, group names) and the tensorly view of a factorization."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5netcdf  # noqa: F401 (a core dependency: xarray's engine below)
import h5py
import numpy as np
import pytest
import xarray as xr


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A small run directory with every stage output: calcium (affinity -> factorize ->
    communities) and spikes (states, bicluster)."""
    from typer.testing import CliRunner

    from neurodyn.cli import app

    d = tmp_path_factory.mktemp("run")
    runner = CliRunner()

    def cli(*args):
        r = runner.invoke(app, ["-q", *map(str, args)], catch_exceptions=False)
        assert r.exit_code == 0, r.output

    cli("simulate", "calcium", "--out", d / "calcium.h5", "--animals", "2", "--neurons", "10",
        "--frames", "240", "--groups", "2", "--seed", "0")
    cli("affinity", d / "calcium.h5", "--out", d / "affinity.h5")
    cli("factorize", d / "affinity.h5", "--out", d / "ntf.h5", "--rank", "2", "--restarts", "1")
    cli("communities", d / "ntf.h5", "--out", d / "communities.h5")
    cli("simulate", "hmmglm", "--out", d / "recordings.h5", "--states", "2", "--neurons", "5",
        "--sequences", "2", "--length", "200", "--recordings", "2", "--seed", "0")
    cli("states", d / "recordings.h5", "--out", d / "states.h5", "--states", "2", "--restarts",
        "1", "--max-iter", "20")
    cli("bicluster", d / "recordings.h5", "--out", d / "bicluster.h5", "--iters", "20",
        "--burn-in", "10", "--chains", "2", "--jobs", "1", "--seed", "0")
    return d


# dims each stage file must show to xarray (engine h5netcdf), by group and variable
EXPECTED = {
    "affinity.h5": {"/": {"present": ("recording", "neuron"), "labels": ("neuron",),
                          "windows": ("window", "bound")},
                    "/observed": {"values": ("row", "window"), "mask": ("row", "window"),
                                  "pair_index": ("row",), "offsets": ("recording_bound",)},
                    "/events": {"onset": ("event",)}},
    "ntf.h5": {"/factors": {"pairs": ("pair", "component"), "time": ("window", "component"),
                            "animal": ("recording", "component"), "weights": ("component",)},
               "/components": {"matrices": ("component", "neuron", "neuron_j")},
               "/rank_selection": {"error": ("rank",)}},
    "communities.h5": {"/component_0": {"membership": ("neuron",),
                                        "block_matrix": ("block", "block_j")}},
    "states.h5": {"/hmmglm%2Fsim%2Frec0": {
        "posterior": ("time", "state"), "weights": ("state", "neuron", "source"),
        "transition": ("state", "next_state"), "basis": ("lag",), "viterbi": ("time",),
        "labels": ("neuron",)}},
    "bicluster.h5": {"/hmmglm%2Fsim%2Frec0": {
        "neuron_similarity": ("neuron", "neuron_j"), "state_sequence": ("time",)},
        "/hmmglm%2Fsim%2Frec0/traces": {"loglik": ("chain", "draw"),
                                        "n_states_all": ("chain", "sweep")},
        "/hmmglm%2Fsim%2Frec0/latent": {"mean": ("cluster", "time", "latent_dim")}},
    "recordings.h5": {"/recordings/hmmglm%2Fsim%2Frec1": {"traces": ("time", "channel"),
                                                          "labels": ("channel",)}},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_xarray_opens_every_group_of_each_stage_file_with_named_dims(run, name):
    path = run / name
    groups = ["/"]
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: groups.append("/" + n) if isinstance(o, h5py.Group) else None)
        for n, ds in _datasets(f):
            assert "units" in ds.attrs, f"{name}:{n} has no units"
            assert ds.is_scale or all(len(d) == 1 for d in ds.dims), f"{name}:{n} lacks dims"
            if ds.dtype.kind == "O":
                assert h5py.check_string_dtype(ds.dtype).encoding == "utf-8"
    for g in groups:
        assert "|" not in g
        with xr.open_dataset(path, engine="h5netcdf", group=g) as ds:  # no phony_dims needed
            for var, dims in EXPECTED[name].get(g, {}).items():
                assert ds[var].dims == dims, (name, g, var)
            for var in ds.variables.values():
                if var.dtype.kind == "O":
                    assert all(isinstance(x, str) for x in var.values.ravel())  # not bytes


def _datasets(f):
    from neurodyn.io.layout import datasets

    return list(datasets(f))


def test_recording_traces_carry_their_physical_unit(run):
    with h5py.File(run / "recordings.h5", "r") as f:
        assert f["recordings/hmmglm%2Fsim%2Frec0/traces"].attrs["units"] == "counts"
    with xr.open_dataset(run / "states.h5", engine="h5netcdf", group="hmmglm%2Fsim%2Frec0") as ds:
        assert ds["time"].attrs["units"] == "s" and ds["posterior"].attrs["units"] == "1"


def test_group_names_are_reversible_and_old_names_still_read(tmp_path):
    from neurodyn.io.layout import group_name, recording_id
    from neurodyn.io.store import read_recordings, write_recordings
    from neurodyn.recording import Recording

    for rid in ("spikes/all_unit", "a|b/c", "50%/x", ".hidden", "plain", "Dag2023/worm 3"):
        name = group_name(rid)
        assert "/" not in name and "|" not in name and not name.startswith(".")
        assert recording_id(name) == rid
    assert group_name("spikes/all_unit") == "spikes%2Fall_unit"
    assert recording_id("spikes|all_unit") == "spikes/all_unit"  # written by older versions
    rec = Recording(np.ones((4, 2)), ["a", "b"], "calcium", fs=2.0, id="x/y")
    p = write_recordings(tmp_path / "r.h5", [rec])
    with h5py.File(p, "a") as f:  # an old file: '|' group name, no dimension scales
        f.move("recordings/x%2Fy", "recordings/x|y")
    assert read_recordings(p)[0].id == "x/y"


def test_load_returns_typed_results(run):
    import pandas as pd

    import neurodyn

    recs = neurodyn.load(run / "recordings.h5")
    assert list(recs) == ["hmmglm/sim/rec0", "hmmglm/sim/rec1"]
    assert isinstance(recs["hmmglm/sim/rec0"], neurodyn.Recording)
    assert isinstance(recs["hmmglm/sim/rec0"].events, pd.DataFrame)
    states = neurodyn.load(run / "states.h5")
    ds = states["hmmglm/sim/rec0"]
    assert isinstance(ds, xr.Dataset)
    assert ds["posterior"].dims == ("time", "state")
    np.testing.assert_allclose(ds["time"].values, recs["hmmglm/sim/rec0"].times)
    assert list(ds["neuron"].values) == list(recs["hmmglm/sim/rec0"].labels)
    np.testing.assert_allclose(ds["posterior"].sum("state"), 1.0, atol=1e-5)
    assert ds.attrs["stage"] == "states" and "parameters" in ds.attrs
    ntf = neurodyn.load(run / "ntf.h5")
    assert ntf["factors_time"].dims == ("window", "component")
    assert ntf["window"].attrs["units"] == "s"
    assert list(ntf["recording"].values) == ["sim/animal0", "sim/animal1"]
    assert ntf.attrs["rank_selection_chosen"] == 2
    com = neurodyn.load(run / "communities.h5")
    assert com["component_0_membership"].dims == ("neuron",)
    bc = neurodyn.load(run / "bicluster.h5")["hmmglm/sim/rec1"]
    assert bc["traces_loglik"].dims == ("chain", "draw") and bc.sizes["chain"] == 2
    # a netCDF round trip keeps everything
    out = run / "states_copy.nc"
    ds.to_netcdf(out, engine="h5netcdf")
    with xr.open_dataset(out, engine="h5netcdf") as back:
        xr.testing.assert_identical(back.load(), ds)
    out.unlink()


def test_load_reads_files_written_before_dimension_scales(run, tmp_path):
    import neurodyn

    old = tmp_path / "states.h5"
    with h5py.File(run / "states.h5", "r") as src, h5py.File(old, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for key in src:  # plain copies: no dimension scales, no units, old group names
            g = dst.create_group(key.replace("%2F", "|"))
            for k, v in src[key].attrs.items():
                g.attrs[k] = v
            for n, ds in src[key].items():
                if isinstance(ds, h5py.Dataset) and "NAME" not in ds.attrs:
                    g.create_dataset(n, data=ds[()], dtype=ds.dtype)
    new = neurodyn.load(run / "states.h5")["hmmglm/sim/rec0"]
    back = neurodyn.load(old)["hmmglm/sim/rec0"]
    assert back["posterior"].dims == ("time", "state")
    np.testing.assert_array_equal(back["weights"].values, new["weights"].values)
    assert list(back["neuron"].values) == list(new["neuron"].values)


def test_open_run_status_and_cp_tensor(run):
    import tensorly as tl
    from tensorly.cp_tensor import CPTensor

    import neurodyn

    r = neurodyn.open_run(run)
    assert {"states", "ntf", "bicluster"} <= set(r.keys())
    st = r.status()
    assert st["complete"].all() and set(st["stage"]) >= {"states", "factorize", "bicluster"}
    assert isinstance(r["states"], dict)
    cp = r.cp_tensor()
    assert isinstance(cp, CPTensor) and cp.rank == 2
    from neurodyn.affinity import result

    x, mask = result.read(run / "affinity.h5").dense()
    fit = tl.cp_to_tensor(cp)
    assert fit.shape == x.shape
    err = np.linalg.norm((fit - x)[mask]) / np.linalg.norm(x[mask])
    with h5py.File(run / "ntf.h5", "r") as f:
        assert err == pytest.approx(f.attrs["relative_error"], rel=1e-3, abs=1e-3)
    with pytest.raises(KeyError, match="no 'nope'"):
        r["nope"]


def test_import_neurodyn_is_cheap_and_exports_the_api():
    code = ("import sys, neurodyn; heavy = {'xarray', 'h5py', 'scipy', 'pandas', 'numba'}; "
            "print(sorted(heavy & set(sys.modules))); print(sorted(neurodyn.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert {"load", "open_run", "Recording"} <= set(eval(out[1]))


# -- export ----------------------------------------------------------------------------------
def _export(run, fmt, out=None, *extra):
    from typer.testing import CliRunner

    from neurodyn.cli import app

    out = out or run / f"export-{fmt}"
    r = CliRunner().invoke(app, ["-q", "export", str(run), "--to", fmt, "--out", str(out),
                                 *map(str, extra)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return out


def _labels_from_intervals(time, start, stop, value):
    """Per-bin labels from intervals (-1 where none covers a bin)."""
    out = np.full(len(time), -1)
    for a, b, v in zip(start, stop, value):
        out[(time >= a - 1e-9) & (time < b - 1e-9)] = v
    return out


def test_export_nwb_round_trip(run):
    from pynwb import NWBHDF5IO

    import neurodyn

    out = _export(run, "nwb")
    rec = neurodyn.load(run / "recordings.h5")["hmmglm/sim/rec1"]
    st = neurodyn.load(run / "states.h5")["hmmglm/sim/rec1"]
    bc = neurodyn.load(run / "bicluster.h5")["hmmglm/sim/rec1"]
    with NWBHDF5IO(str(out / "hmmglm_sim_rec1.nwb"), "r") as io:
        nwb = io.read()
        ts = nwb.acquisition["traces"]
        np.testing.assert_array_equal(ts.data[:], rec.data)
        assert ts.rate == rec.fs and ts.unit == "counts" and nwb.session_id == rec.id
        mod = nwb.processing["neurodyn"]
        assert list(mod["channels"]["label"][:]) == list(rec.labels)
        iv = mod["hmmglm_states"].to_dataframe()
        got = _labels_from_intervals(rec.times, iv.start_time, iv.stop_time, iv.state)
        np.testing.assert_array_equal(got, st["viterbi"].values)
        np.testing.assert_array_equal(mod["hmmglm_posterior"].data[:], st["posterior"].values)
        iv = mod["bicluster_states"].to_dataframe()
        got = _labels_from_intervals(rec.times, iv.start_time, iv.stop_time, iv.state)
        np.testing.assert_array_equal(got, bc["state_sequence"].values)
        np.testing.assert_array_equal(mod["bicluster_neurons"]["cluster"][:],
                                      bc["neuron_clusters"].values)
        ev = nwb.intervals["events"].to_dataframe()
        np.testing.assert_allclose(ev.start_time, rec.events.onset)
        assert list(ev.label) == list(rec.events.label)


def test_export_netcdf_round_trip(run):
    import neurodyn

    out = _export(run, "netcdf")
    path = out / f"{run.name}.nc"
    tree = xr.open_datatree(path, engine="h5netcdf")
    st = neurodyn.load(run / "states.h5")["hmmglm/sim/rec0"]
    xr.testing.assert_identical(tree["states/hmmglm%2Fsim%2Frec0"].to_dataset().load(), st)
    ntf = neurodyn.load(run / "ntf.h5")
    xr.testing.assert_identical(tree["ntf"].to_dataset().load(), ntf)
    rec = neurodyn.load(run / "recordings.h5")["hmmglm/sim/rec0"]
    g = tree["recordings/hmmglm%2Fsim%2Frec0"]
    np.testing.assert_array_equal(g["traces"].values, rec.data)
    assert list(g["channel"].values) == list(rec.labels) and g["traces"].attrs["units"] == "counts"
    tree.close()


def test_export_pynapple_round_trip(run):
    import pynapple as nap  # a test dependency (pyproject [test]): missing is a failure

    import neurodyn

    out = _export(run, "pynapple")
    rec = neurodyn.load(run / "recordings.h5")["hmmglm/sim/rec0"]
    st = neurodyn.load(run / "states.h5")["hmmglm/sim/rec0"]
    traces = nap.load_file(str(out / "hmmglm_sim_rec0_traces.npz"))
    assert isinstance(traces, nap.TsdFrame) and list(traces.columns) == list(rec.labels)
    np.testing.assert_array_equal(traces.values, rec.data)
    np.testing.assert_allclose(traces.index.values, rec.times)
    ep = nap.load_file(str(out / "hmmglm_sim_rec0_hmmglm_states.npz"))
    assert isinstance(ep, nap.IntervalSet)
    for k in range(2):  # restricting to state k keeps exactly the bins decoded as k
        kept = traces.restrict(ep[ep["state"] == k]).index.values
        np.testing.assert_allclose(kept, rec.times[st["viterbi"].values == k])
    events = nap.load_file(str(out / "hmmglm_sim_rec0_events.npz"))
    assert list(events["label"]) == list(rec.events.sort_values("onset").label)


def test_export_arviz_round_trip(run):
    import arviz as az

    import neurodyn

    out = _export(run, "arviz")
    bc = neurodyn.load(run / "bicluster.h5")["hmmglm/sim/rec0"]
    idata = az.from_netcdf(out / "hmmglm_sim_rec0.nc")
    np.testing.assert_array_equal(idata.posterior["loglik"].values, bc["traces_loglik"].values)
    np.testing.assert_array_equal(idata.posterior["n_states"].values, bc["traces_n_states"].values)
    assert idata.warmup_posterior["n_clusters"].shape == (2, 10)  # chains x burn-in sweeps
    assert idata.posterior.attrs["recording"] == "hmmglm/sim/rec0"
    assert idata.posterior.attrs["sweeps_per_chain"] == bc.attrs["diagnostics_sweeps_per_chain"]
    assert idata.posterior.attrs["stopped_by"] == bc.attrs["diagnostics_stopped_by"]


def test_export_mne_round_trip_with_state_annotations(tmp_path):
    import mne
    from typer.testing import CliRunner

    import neurodyn
    from neurodyn.cli import app
    from neurodyn.export.bundle import states_of
    from neurodyn.io.store import write_recordings
    from neurodyn.recording import Recording

    rng = np.random.default_rng(0)
    fs, n = 100.0, 1200
    x = rng.normal(size=(n, 3)) * 1e-5
    x[n // 2:, 0] += 4e-5 * np.sin(2 * np.pi * 10 * np.arange(n - n // 2) / fs)  # alpha burst
    info = {"channel": ["Fz", "Cz", "Pz"], "type": ["eeg"] * 3,
            "x": [0.0, 0.0, 0.0], "y": [0.07, 0.0, -0.07], "z": [0.06, 0.09, 0.06]}
    import pandas as pd

    rec = Recording(x, ["Fz", "Cz", "Pz"], "eeg", fs=fs, units="V", id="eeg/s1",
                    events=pd.DataFrame({"onset": [2.0], "offset": [4.0], "label": ["task"]}),
                    channel_info=pd.DataFrame(info))
    run = tmp_path / "eeg"
    write_recordings(run / "recordings.h5", [rec])
    r = CliRunner().invoke(app, ["-q", "states", str(run / "recordings.h5"), "--out",
                                 str(run / "states.h5"), "--states", "2", "--restarts", "1"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = _export(run, "mne")
    raw = mne.io.read_raw_fif(out / "eeg_s1_raw.fif", preload=True, verbose="error")
    np.testing.assert_allclose(raw.get_data().T, rec.data, rtol=1e-6)
    assert raw.ch_names == ["Fz", "Cz", "Pz"] and raw.info["sfreq"] == fs
    np.testing.assert_allclose(raw.info["chs"][1]["loc"][:3], [0.0, 0.0, 0.09])
    ann = raw.annotations
    assert list(ann.description).count("task") == 1
    st = neurodyn.load(run / "states.h5")["eeg/s1"]
    iv = states_of(st, "viterbi", fs)
    keep = [d.startswith("hmmglm_state/") for d in ann.description]
    np.testing.assert_allclose(ann.onset[keep], iv["start"], atol=1e-6)
    np.testing.assert_allclose(ann.duration[keep], iv["stop"] - iv["start"], atol=1e-6)
    assert iv["start"].iloc[0] == pytest.approx(0.0, abs=1e-9)
    assert iv["stop"].iloc[-1] == pytest.approx(n / fs)


def test_export_refuses_an_input_as_output_and_bad_requests(run, tmp_path):
    from typer.testing import CliRunner

    from neurodyn.cli import app

    def cli(*args):
        return CliRunner().invoke(app, [str(a) for a in args])

    r = cli("export", run, "--to", "netcdf", "--out", run / "states.h5")
    assert r.exit_code == 2 and "error:" in r.output and "states.h5" in r.output
    r = cli("export", run, "--to", "mne")  # no EEG here
    assert r.exit_code == 2 and "EEG" in r.output
    r = cli("export", run, "--to", "matlab")
    assert r.exit_code == 2
    r = cli("export", tmp_path, "--to", "nwb")
    assert r.exit_code == 2 and "no neurodyn result" in r.output


def test_factorize_solver_tensorly_from_the_command_line(run, tmp_path):
    from typer.testing import CliRunner

    from neurodyn.cli import app

    def cli(*args):
        return CliRunner().invoke(app, ["-q", *map(str, args)])

    r = cli("factorize", run / "affinity.h5", "--out", tmp_path / "a.h5", "--solver", "tensorly")
    assert r.exit_code == 2 and "fixed --rank" in r.output
    r = cli("factorize", run / "affinity.h5", "--out", tmp_path / "a.h5", "--solver", "tensorly",
            "--rank", "2")
    assert r.exit_code == 2 and "missing entries" in r.output  # animals lack some neurons
    assert cli("affinity", run / "calcium.h5", "--out", tmp_path / "aff.h5", "--align",
               "intersection").exit_code == 0
    errors = {}
    for solver in ("hals", "tensorly"):
        out = tmp_path / f"{solver}.h5"
        r = cli("factorize", tmp_path / "aff.h5", "--out", out, "--solver", solver, "--rank", "2",
                "--restarts", "1", "--tol", "1e-8")
        assert r.exit_code == 0, r.output
        with h5py.File(out, "r") as f:
            errors[solver] = f.attrs["relative_error"]
    assert errors["tensorly"] == pytest.approx(errors["hals"], abs=5e-3)


def test_report_lists_community_members_by_name(run):
    from neurodyn.report.build import community_members

    table = community_members(run / "communities.h5")
    com = xr.open_dataset(run / "communities.h5", engine="h5netcdf")
    labels = list(com["labels"].values)
    com.close()
    for comp in {row[0] for row in table.rows}:
        rows = [r for r in table.rows if r[0] == comp]
        members = [m for r in rows for m in r[3].split(", ")]
        assert sorted(members) == sorted(labels)  # every neuron once per component, by name
        assert sum(r[2] for r in rows) == len(labels)


def test_neuron_labels_stay_readable_on_large_matrices():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurodyn.plots import style

    names = [f"N{i:03d}" for i in range(104)]
    fig, ax = plt.subplots()
    style.label_matrix_axes(ax, names)
    ticks = ax.get_xticklabels()
    assert all(t.get_fontsize() >= style.MIN_LABEL_PT for t in ticks)
    assert [t.get_text() for t in ticks] == names[::3] and "35 of 104 names shown" in ax.get_xlabel()
    plt.close(fig)
