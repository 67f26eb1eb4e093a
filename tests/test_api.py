"""The public API (``neurodyn.load``, ``neurodyn.open_run``), self-describing HDF5 files
(dimension scales, units, group names) and the tensorly view of a factorization."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")


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
    "affinity.h5": {"/": {"affinity": ("pair", "window", "recording"),
                          "present": ("recording", "neuron"), "labels": ("neuron",),
                          "windows": ("window", "bound")},
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
    with h5py.File(run / "affinity.h5", "r") as f:
        x, mask = f["affinity"][()], f["mask"][()]
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
