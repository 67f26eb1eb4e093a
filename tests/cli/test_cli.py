"""The CLI end to end: in-process through Typer's runner and once as a real subprocess."""

import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from helpers import one_line_error

from neurodyn import __version__
from neurodyn.io import store


def test_version_and_help(cli):
    r = cli("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"neurodyn {__version__}"
    assert r.stderr == ""
    r = cli("--help")
    assert r.exit_code == 0
    for cmd in ("ingest", "inspect", "simulate", "formats"):
        assert cmd in r.stdout


def test_simulate_ingest_inspect(cli, tmp_path):
    sim = tmp_path / "sim.h5"
    r = cli("simulate", "calcium", "--out", sim, "--animals", 3, "--neurons", 12, "--frames", 200, "--seed", 5)
    assert r.exit_code == 0 and str(sim) in r.stdout
    with h5py.File(sim, "r") as f:
        assert f["ground_truth/membership"].shape == (12,)
        assert f.attrs["seed"] == 5
    out = tmp_path / "rec.h5"
    r = cli("ingest", sim, "--out", out, "--subjects", "animal0,animal2", "--crop", "10:40", "--fs", "2")
    assert r.exit_code == 0, r.output
    recs = store.read_recordings(out)
    assert [x.subject for x in recs] == ["animal0", "animal2"]
    assert all(x.fs == 2.0 and x.n_samples == 60 for x in recs)
    # the former names still work for one release (hidden options)
    old = tmp_path / "old.h5"
    r = cli("ingest", sim, "--out", old, "--worm", "animal0", "--worm", "animal2", "--crop", "10:40",
            "--resample", "2")
    assert r.exit_code == 0, r.output
    assert store.provenance(old)["parameters"] == store.provenance(out)["parameters"]
    assert "--worm" not in cli("ingest", "--help").output
    r = cli("inspect", out)
    assert r.exit_code == 0
    assert "stage: ingest   complete: True" in r.stdout and "sim/animal2" in r.stdout
    assert "sha256:" in r.stdout


def test_ingest_real_celegans(cli, tmp_path, dag_h5, varshney_mat):
    out = tmp_path / "rec.h5"
    r = cli("ingest", dag_h5, varshney_mat, "--out", out, "--labeled-only")
    assert r.exit_code == 0, r.output
    (rec,) = store.read_recordings(out)
    assert rec.n_samples == 800 and rec.n_channels == 104
    assert rec.labels == tuple(sorted(rec.labels, key=str))
    assert rec.fs == pytest.approx(1 / 0.6, rel=0.01)
    assert len(rec.events) == 34
    prov = store.provenance(out)
    assert set(prov["inputs"]) == {str(dag_h5), str(varshney_mat)}


@pytest.mark.parametrize("case", ["missing", "truncated", "interrupted", "unknown", "badcrop"])
def test_bad_input_exit_2_nothing_written(cli, tmp_path, case):
    out = tmp_path / "out.h5"
    sim = tmp_path / "sim.h5"
    cli("simulate", "calcium", "--out", sim, "--animals", 1, "--neurons", 6, "--frames", 50)
    args = {
        "missing": [tmp_path / "nope.h5"],
        "unknown": [tmp_path / "notes.txt"],
        "truncated": [tmp_path / "trunc.h5"],
        "interrupted": [tmp_path / "half.h5"],
        "badcrop": [sim, "--crop", "abc"],
    }[case]
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "trunc.h5").write_bytes(sim.read_bytes()[:3000])
    shutil.copy(sim, tmp_path / "half.h5")
    with h5py.File(tmp_path / "half.h5", "r+") as f:
        f.attrs["complete"] = False
    r = cli("ingest", *args, "--out", out)
    one_line_error(r, {"badcrop": "--crop"}.get(case, str(args[0])))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_option_out_of_range_is_a_usage_error_exit_2(cli, tmp_path):
    """An option below its declared minimum is bad input (exit 2, typer's usage message), not an
    "unexpected failure" (exit 1): typer >= 0.2x raises its own vendored click exceptions."""
    out = tmp_path / "bc.h5"
    r = cli("bicluster", tmp_path / "counts.h5", "--out", out, "--iters", "0")
    assert r.exit_code == 2, r.output
    assert "--iters" in r.output and "unexpected failure" not in r.output
    assert not out.exists()


def test_unexpected_failure_exits_1(cli, tmp_path, monkeypatch):
    import neurodyn.ingest

    def boom(*a, **k):
        raise ZeroDivisionError("kaboom")

    monkeypatch.setattr(neurodyn.ingest, "ingest", boom)
    r = cli("ingest", tmp_path, "--out", tmp_path / "o.h5")
    assert r.exit_code == 1
    assert "unexpected failure: ZeroDivisionError: kaboom" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli("-v", "ingest", tmp_path, "--out", tmp_path / "o.h5")
    assert r.exit_code == 1 and "Traceback" in r.stderr


def test_config_file_sets_defaults_and_flags_win(cli, tmp_path):
    cfg = tmp_path / "nd.toml"
    cfg.write_text("[simulate.calcium]\nanimals = 2\nneurons = 8\nframes = 40\nseed = 11\n")
    out = tmp_path / "s.h5"
    r = cli("--config", cfg, "simulate", "calcium", "--out", out, "--neurons", 9)
    assert r.exit_code == 0, r.output
    p = store.provenance(out)["parameters"]
    assert (p["n_animals"], p["n_neurons"], p["n_frames"], p["seed"]) == (2, 9, 40, 11)
    bad = tmp_path / "bad.toml"
    bad.write_text("[x\n")
    one_line_error(cli("--config", bad, "formats"), str(bad), "invalid TOML")
    # a typo is refused, not ignored: key names are the options' (dashes or underscores)
    bad.write_text("[simulate.calcium]\nnueron = 8\n")
    one_line_error(cli("--config", bad, "formats"), str(bad),
                   "[simulate.calcium] nueron: not an option of `neurodyn simulate calcium` "
                   "(did you mean neurons?)")
    bad.write_text("[factorise]\nrank = 3\n")
    one_line_error(cli("--config", bad, "formats"), str(bad), "(did you mean [factorize]?)")
    cfg.write_text("[simulate.calcium]\nmissing = 0.0\n[factorize]\nrank = '3'\n"
                   "[compare_connectome]\nn-perm = 10\n")
    assert cli("--config", cfg, "formats").exit_code == 0


def test_real_subprocess_console_script(tmp_path):
    exe = shutil.which("neurodyn")
    cmd = [exe] if exe else [sys.executable, "-c", "from neurodyn.cli import main; main()"]
    out = tmp_path / "s.h5"
    env = {**os.environ, "NEURODYN_SIMULATE_CALCIUM_ANIMALS": "2"}
    p = subprocess.run([*cmd, "simulate", "calcium", "--out", str(out), "--frames", "30", "--neurons", "6"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert f"wrote {out}" in p.stdout
    assert len(store.read_recordings(out)) == 2  # environment variable applied
    p = subprocess.run([*cmd, "inspect", str(tmp_path / "none.h5")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip() == f"error: {tmp_path / 'none.h5'}: no such file"
    data = store.read_recordings(out)[0].data
    assert np.isfinite(data).all()
