"""Pipelines: spec resolution, resume, --from/--until, failures, parallel = serial, job arrays."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurodyn.errors import InputError
from neurodyn.io.store import atomic_h5, group_name, put, read_recordings, write_recordings
from neurodyn.params import ParamError
from neurodyn.pipeline import (
    JOINT,
    build_tasks,
    derive_seed,
    load_pipeline,
    parse_sets,
    run_pipeline,
    sbatch_script,
    status,
)
from neurodyn.simulate import simulate_calcium

TESTS = Path(__file__).resolve().parent


# -- test-only stages (importable by worker processes as ``test_pipeline:...``) --------------
def scale_stage(
    input_path: Path, out: Path, *, seed: int = 0, factor: float = 2.0, delay: float = 0.0,
    fail_marker: str = "",
) -> Path:
    """Traces x factor + seeded noise; sleeps ``delay`` s mid-write; fails for listed units."""
    unit = Path(input_path).parent.name
    if fail_marker and Path(fail_marker).exists() and unit in Path(fail_marker).read_text().split():
        raise ValueError(f"planted failure in {unit}")
    recs = read_recordings(input_path)
    rng = np.random.default_rng(seed)
    params = dict(factor=factor, delay=delay, fail_marker=fail_marker)
    with atomic_h5(out, stage="scale", params=params, inputs=[input_path], seed=seed) as f:
        for r in recs:
            put(f, group_name(r.id), r.data * factor + rng.normal(size=r.data.shape).astype("f4"))
            f.attrs["numba_threads"] = os.environ.get("NUMBA_NUM_THREADS", "unset")
            f.flush()
            time.sleep(delay)
    return Path(out)


def summary_stage(input_path: Path, out: Path, *, seed: int = 0, power: int = 1) -> Path:
    """Per-dataset column sums of |x|**power."""
    with h5py.File(input_path, "r", locking=False) as src:
        sums = {k: (np.abs(src[k][()]) ** power).sum(axis=0) for k in src}
    with atomic_h5(out, stage="summary", params=dict(power=power), inputs=[input_path], seed=seed) as f:
        for k, v in sums.items():
            put(f, k, v)
    return Path(out)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Three single-animal recordings files, one per unit."""
    d = tmp_path / "data"
    recs, _ = simulate_calcium(n_animals=3, n_neurons=8, n_frames=80, fs=4.0, n_groups=2,
                               missing_fraction=0.0, noise=0.1, seed=1)
    for i, r in enumerate(recs):
        write_recordings(d / f"u{i}.h5", [r])
    return d


def write_spec(path: Path, data: Path, *, delay: float = 0.0, marker: str = "", extra: str = "") -> Path:
    path.write_text(f"""
[pipeline]
name = "toy"
seed = 7
inputs = ["{data}/u*.h5"]
allow_code = true

[stages.ingest]

[stages.scale]
function = "test_pipeline:scale_stage"
after = "ingest"
output = "scale.h5"
factor = 3.0
delay = {delay}
fail_marker = "{marker}"

[stages.summary]
function = "test_pipeline:summary_stage"
after = "scale"
output = "summary.h5"
{extra}
""")
    return path


def datasets(rundir: Path) -> dict[str, np.ndarray]:
    """Every dataset of every stage output in a run directory (provenance attrs excluded)."""
    out: dict[str, np.ndarray] = {}
    for f in sorted(rundir.glob("*/*.h5")):
        with h5py.File(f, "r") as h:
            h.visititems(lambda name, obj, f=f: out.__setitem__(
                f"{f.parent.name}/{f.name}:{name}", obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def statuses(summary) -> dict[str, str]:
    return {k: r["status"] for k, r in summary.results.items()}


# -- spec resolution --------------------------------------------------------------------------
def test_units_named_by_the_folder_that_tells_equal_file_names_apart(tmp_path: Path) -> None:
    """BIDS/HBN trees hold one file name per subject (NDAR.../EEG/raw/RestingState.set): the
    units are named by subject, not by the shared 'raw' folder or a counter."""
    from neurodyn.pipeline import expand_inputs

    for sub in ("NDARAA1", "NDARBB2"):
        (tmp_path / "hbn" / sub / "EEG" / "raw").mkdir(parents=True)
        (tmp_path / "hbn" / sub / "EEG" / "raw" / "RestingState.set").touch()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.edf").touch()
    (tmp_path / "x.edf").touch()
    units = expand_inputs(["hbn/*/EEG/raw/RestingState.set", "a/x.edf", "x.edf", "x.edf"],
                          tmp_path, "p.toml")
    assert [u.name for u in units] == ["NDARAA1_RestingState", "NDARBB2_RestingState", "a_x",
                                       f"{tmp_path.name}_x", f"{tmp_path.name}_x_1"]


def test_spec_units_precedence_and_validation(tmp_path: Path, data_dir: Path) -> None:
    spec = write_spec(tmp_path / "p.toml", data_dir)
    pipe = load_pipeline(spec, sets=parse_sets(["summary.power=3"]),
                         environ={"NEURODYN_SCALE_FACTOR": "5", "NEURODYN_SUMMARY_POWER": "2"})
    assert [u.name for u in pipe.units] == ["u0", "u1", "u2"]
    assert list(pipe.stages) == ["ingest", "scale", "summary"]
    scale, summary = pipe.stages["scale"], pipe.stages["summary"]
    assert (scale.params["factor"], scale.origin["factor"]) == (5, "env")  # env beats TOML
    assert (scale.params["delay"], scale.origin["delay"]) == (0.0, "toml")
    assert (summary.params["power"], summary.origin["power"]) == (3, "flag")  # flag beats env
    assert pipe.stages["ingest"].origin["labeled_only"] == "default"
    tasks = build_tasks(pipe, tmp_path / "run")
    assert [t.key for t in tasks][:3] == ["u0/ingest", "u0/scale", "u0/summary"]
    assert tasks[1].deps == ["u0/ingest"] and tasks[1].inputs == [tasks[0].out]
    assert tasks[1].seed == derive_seed(7, "u0", "scale") != tasks[4].seed

    # a stage restricted to some units (e.g. one modality); its descendants follow it
    spec_only = tmp_path / "only.toml"
    spec_only.write_text(spec.read_text().replace('output = "scale.h5"', 'output = "scale.h5"\nonly = ["u[12]"]'))
    keys = [t.key for t in build_tasks(load_pipeline(spec_only), tmp_path / "run")]
    assert keys == ["u0/ingest"] + [f"u{i}/{s}" for i in (1, 2) for s in ("ingest", "scale", "summary")]

    # a second instance of a built-in stage with its own parameters
    spec_uses = tmp_path / "uses.toml"
    spec_uses.write_text(spec.read_text() + '\n[stages.zs]\nuses = "preprocess"\nnormalize = "zscore"\n')
    zs = load_pipeline(spec_uses).stages["zs"]
    assert (zs.defn.target, zs.defn.output, zs.input_stage) == ("neurodyn.preprocess:run", "zs.h5", "ingest")
    assert zs.params["normalize"] == "zscore" and zs.origin["filter_order"] == "default"

    with pytest.raises(InputError, match="no parameter 'bogus'"):
        load_pipeline(spec, sets=parse_sets(["scale.bogus=1"]))
    with pytest.raises(ParamError, match="STAGE.PARAM=VALUE") as exc:
        parse_sets(["scale=1"])
    assert exc.value.name == "set"
    bad = tmp_path / "bad.toml"
    bad.write_text(spec.read_text() + "\n[stages.afinity]\n")
    with pytest.raises(InputError, match="unknown stage 'afinity'"):
        load_pipeline(bad)
    bad.write_text(spec.read_text().replace("u*.h5", "nothing*.h5"))
    with pytest.raises(InputError, match="matches no file"):
        load_pipeline(bad)
    bad.write_text(spec.read_text().replace("test_pipeline:summary_stage", "no_such_module_x:run"))
    with pytest.raises(InputError, match="not available"):
        load_pipeline(bad)


def test_joint_scope_ingests_all_inputs_together(tmp_path: Path, data_dir: Path) -> None:
    spec = write_spec(tmp_path / "p.toml", data_dir)
    joint = spec.read_text().replace('output = "summary.h5"', 'output = "summary.h5"\nscope = "joint"')
    spec.write_text(joint)
    pipe = load_pipeline(spec)
    assert [t.key for t in build_tasks(pipe, tmp_path / "r")] == [f"{JOINT}/{s}" for s in ("ingest", "scale", "summary")]
    assert pipe.index_units() == [JOINT]
    # a unit-scope branch beside the joint one: per-unit chains plus the joint chain
    spec.write_text(joint + '\n[stages.extra]\nfunction = "test_pipeline:summary_stage"\nafter = "scale"\n')
    pipe = load_pipeline(spec)
    keys = [t.key for t in build_tasks(pipe, tmp_path / "r")]
    assert keys == [f"u{i}/{s}" for i in range(3) for s in ("ingest", "scale", "extra")] + [
        f"{JOINT}/ingest", f"{JOINT}/scale", f"{JOINT}/summary"]
    assert pipe.index_units() == ["u0", "u1", "u2", JOINT]
    run_pipeline(pipe, tmp_path / "r", jobs=1, index=3)  # the joint array task only
    assert len(read_recordings(tmp_path / "r" / JOINT / "recordings.h5")) == 3
    assert (tmp_path / "r" / JOINT / "summary.h5").exists()
    assert not (tmp_path / "r" / "u0").exists()


# -- resume -----------------------------------------------------------------------------------
def test_changing_one_parameter_reruns_that_stage_and_descendants(tmp_path: Path, data_dir: Path) -> None:
    spec = write_spec(tmp_path / "p.toml", data_dir)
    run = tmp_path / "run"
    first = run_pipeline(load_pipeline(spec), run)
    assert set(statuses(first).values()) == {"done"}
    assert set(statuses(run_pipeline(load_pipeline(spec), run)).values()) == {"skipped"}

    s = statuses(run_pipeline(load_pipeline(spec, sets=parse_sets(["summary.power=2"])), run))
    assert {k for k, v in s.items() if v == "done"} == {f"u{i}/summary" for i in range(3)}

    s = statuses(run_pipeline(load_pipeline(spec, environ={"NEURODYN_SCALE_FACTOR": "4.0"}), run))
    assert {k for k, v in s.items() if v == "done"} == {f"u{i}/{x}" for i in range(3) for x in ("scale", "summary")}
    # the summary's recorded power went back to its default (1): it reruns too, as it must

    # an input file's content changes -> only that unit reruns, from ingest on
    rec = read_recordings(data_dir / "u1.h5")[0]
    write_recordings(data_dir / "u1.h5", [rec.replace(traces=rec.data * 2)])
    pipe = load_pipeline(spec, environ={"NEURODYN_SCALE_FACTOR": "4.0"})
    s = statuses(run_pipeline(pipe, run))
    assert {k for k, v in s.items() if v == "done"} == {"u1/ingest", "u1/scale", "u1/summary"}

    # --force, --until, --from
    s = statuses(run_pipeline(pipe, run, until="scale", force=True))
    assert s == {f"u{i}/{x}": "done" for i in range(3) for x in ("ingest", "scale")}
    s = statuses(run_pipeline(load_pipeline(spec), run, until="scale"))  # factor back to 3
    assert s == {**{f"u{i}/ingest": "skipped" for i in range(3)}, **{f"u{i}/scale": "done" for i in range(3)}}
    _, _, table = status(run)
    assert table[("u0", "summary")] == ("stale", "inputs changed")
    s = statuses(run_pipeline(pipe, run, start="scale"))
    assert set(s) == {f"u{i}/{x}" for i in range(3) for x in ("scale", "summary")}
    assert set(s.values()) == {"done"}
    _, _, table = status(run)
    assert {v[0] for v in table.values()} == {"done"}


def test_resume_after_sigkill_mid_stage(tmp_path: Path, data_dir: Path) -> None:
    spec = write_spec(tmp_path / "p.toml", data_dir, delay=1.0)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-c", "from neurodyn.cli import main; main()", "run", str(spec),
           "--out", str(run), "--jobs", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while not list((run / "u1").glob(".scale.h5.tmp-*")):  # u1's scale is being written
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "the run never reached u1/scale"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    finished = [run / "u0" / "recordings.h5", run / "u0" / "scale.h5", run / "u0" / "summary.h5",
                run / "u1" / "recordings.h5"]
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished}
    assert not (run / "u1" / "scale.h5").exists()  # never a half file under the final name

    s = statuses(run_pipeline(load_pipeline(spec), run))
    assert [k for k, v in s.items() if v == "skipped"] == ["u0/ingest", "u0/scale", "u0/summary", "u1/ingest"]
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in finished} == before
    assert not list(run.glob("*/.*.tmp-*"))  # the killed writer's temporary was cleaned
    reference = tmp_path / "ref"
    run_pipeline(load_pipeline(spec, sets=parse_sets(["scale.delay=0.0"])), reference)
    uninterrupted = datasets(reference)
    assert_same(datasets(run), uninterrupted)


# -- failures -----------------------------------------------------------------------------------
def test_failures_json_exit_3_and_retry(tmp_path: Path, data_dir: Path, cli) -> None:
    marker = tmp_path / "fail-units"
    marker.write_text("u1")
    spec = write_spec(tmp_path / "p.toml", data_dir, marker=str(marker))
    run = tmp_path / "run"
    res = cli("run", spec, "--out", run, "--jobs", "1", "--on-error", "continue")
    assert res.exit_code == 3, res.output
    failures = json.loads((run / "failures.json").read_text())
    assert [(f["unit"], f["stage"], f["status"]) for f in failures] == [
        ("u1", "scale", "failed"), ("u1", "summary", "blocked")]
    assert "planted failure in u1" in failures[0]["error"]
    assert (run / "u2" / "summary.h5").exists()
    log = (run / "run.log").read_text().splitlines()  # timestamped lines of this run
    assert log[0].split(" ", 2)[1:] == ["INFO", f"neurodyn.pipeline: command: {' '.join(sys.argv)}"]
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d (INFO|WARNING|ERROR) ", x) for x in log)
    assert any("FAILED   u1/scale: " in x and "planted failure" in x for x in log), log
    res = cli("status", run)
    assert res.exit_code == 0
    row = next(line.split() for line in res.output.splitlines() if line.startswith("u1 "))
    assert row == ["u1", "done", "failed", "failed"]

    res = cli("run", spec, "--out", run, "--jobs", "1")  # abort mode: stops at the failure
    assert res.exit_code == 3 and "1 task(s) failed" in res.output
    marker.write_text("")
    res = cli("run", spec, "--out", run, "--jobs", "1", "--on-error", "continue")
    assert res.exit_code == 0, res.output
    assert "2 ran, 7 up to date" in res.output  # only the failed and blocked tasks reran
    assert not (run / "failures.json").exists()

    log_before = (run / "run.log").read_text()
    res = cli("run", spec, "--out", run, "--set", "scale.nope=1")
    assert res.exit_code == 2 and "no parameter 'nope'" in res.output
    assert (run / "run.log").read_text() == log_before  # a refused run writes nothing


# -- parallel -----------------------------------------------------------------------------------
@pytest.mark.slow  # ~10-20 s: starting a dask LocalCluster on 2 busy cores
def test_localcluster_results_equal_serial(tmp_path: Path, data_dir: Path) -> None:
    spec = write_spec(tmp_path / "p.toml", data_dir)
    serial = run_pipeline(load_pipeline(spec), tmp_path / "serial", jobs=1)
    parallel = run_pipeline(load_pipeline(spec), tmp_path / "dask", jobs=2)
    assert serial.executor == parallel.executor == "local"
    assert set(statuses(parallel).values()) == {"done"}
    assert_same(datasets(tmp_path / "serial"), datasets(tmp_path / "dask"))
    # the dask run wrote from worker processes whose numba threads x workers <= cores
    from neurodyn.pipeline.executors import available_cores, worker_layout

    workers, threads = worker_layout(2, 3)
    assert workers * threads <= available_cores()
    with h5py.File(tmp_path / "dask" / "u0" / "scale.h5", "r") as f:
        assert f.attrs["seed"] == derive_seed(7, "u0", "scale")
        assert f.attrs["numba_threads"] == str(threads)


def test_worker_layout_respects_cores() -> None:
    from neurodyn.pipeline.executors import worker_layout

    assert worker_layout(-1, 10, cores=8) == (8, 1)
    assert worker_layout(2, 10, cores=8) == (2, 4)
    assert worker_layout(4, 3, cores=8) == (3, 2)  # never more workers than tasks
    assert worker_layout(16, 100, cores=4) == (4, 1)
    for w, t in [worker_layout(j, 50, cores=c) for j in (-1, 1, 3, 7) for c in (1, 2, 6)]:
        assert w >= 1 and t >= 1
    with pytest.raises(ParamError, match="positive number or -1") as exc:
        worker_layout(0, 3, cores=2)
    assert exc.value.name == "jobs"


# -- job arrays, status, config ------------------------------------------------------------------
def test_emitted_sbatch_script_line_by_line(tmp_path: Path, data_dir: Path, cli) -> None:
    spec = write_spec(tmp_path / "p.toml", data_dir, extra="""
[slurm]
queue = "short"
account = "lab1"
cores = 2
memory = "3GB"
walltime = "00:20:00"
job_extra_directives = ["--qos=low"]
""")
    script = tmp_path / "array.sbatch"
    res = cli("batch", spec, "--out", tmp_path / "run", "--emit-sbatch", script, "--set", "summary.power=2")
    assert res.exit_code == 0, res.output
    run = (tmp_path / "run").resolve()
    from neurodyn.pipeline import neurodyn_executable

    expected = [
        "#!/bin/bash",
        "#SBATCH --job-name=neurodyn-toy",
        "#SBATCH --array=0-2",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=3072M",
        "#SBATCH --time=00:20:00",
        "#SBATCH --partition=short",
        "#SBATCH --account=lab1",
        f"#SBATCH --output={run}/.neurodyn/slurm/%x-%A_%a.out",
        "#SBATCH --qos=low",
        "set -euo pipefail",
        "export NUMBA_NUM_THREADS=${SLURM_CPUS_PER_TASK:-2}",
        "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-2}",
        "export HDF5_USE_FILE_LOCKING=FALSE",
        f"{neurodyn_executable()} run {spec.resolve()} --out {run} --index \"$SLURM_ARRAY_TASK_ID\" "
        "--jobs 1 --seed 7 --set summary.power=2",
    ]
    assert script.read_text().splitlines() == expected
    assert os.access(script, os.X_OK)
    assert sbatch_script(load_pipeline(spec), run) == script.read_text().replace(" --set summary.power=2", "")

    # each array index runs exactly its unit
    for i in (2, 0):
        assert cli("run", spec, "--out", run, "--index", str(i), "--set", "summary.power=2").exit_code == 0
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == ["run.log", "u0", "u2"]
    res = cli("run", spec, "--out", run, "--index", "3")
    assert res.exit_code == 2 and "out of range" in res.output


def test_status_and_config_commands(tmp_path: Path, data_dir: Path, cli) -> None:
    spec = write_spec(tmp_path / "p.toml", data_dir)
    run = tmp_path / "run"
    res = cli("run", spec, "--out", run, "--jobs", "1", "--until", "scale")
    assert res.exit_code == 0 and "6 ran" in res.output and f"wrote {run.resolve()}" in res.output
    res = cli("status", run)
    lines = res.output.splitlines()
    assert lines[0].split() == ["unit", "ingest", "scale", "summary"]
    assert [line.split() for line in lines[1:4]] == [[f"u{i}", "done", "done", "missing"] for i in range(3)]
    assert lines[-1].startswith("3 missing, 6 done") or lines[-1].startswith("6 done, 3 missing")
    # each done task's wall time and peak memory, summarised per stage (what a job should ask for)
    usage = [line.split() for line in lines if line.startswith(("  ingest:", "  scale:"))]
    assert [u[:3] for u in usage] == [["ingest:", "3", "unit(s),"], ["scale:", "3", "unit(s),"]]
    (run / "u2" / "scale.h5").unlink()
    rows = json.loads(cli("status", run, "--json").output)
    assert {(r["unit"], r["stage"]): r["state"] for r in rows}[("u2", "scale")] == "missing"
    done = [r for r in rows if r["state"] == "done"]
    assert len(done) == 5 and all(r["seconds"] >= 0 and r["peak_rss_mb"] > 50 for r in done)
    assert all(r["seconds"] is None for r in rows if r["stage"] == "summary")
    assert cli("status", tmp_path).exit_code == 2

    res = cli("config", "show", spec, "--set", "scale.factor=1.5")
    assert res.exit_code == 0
    assert "factor = 1.5  # flag" in res.output and "delay = 0.0  # toml" in res.output
    assert "power = 1  # default" in res.output
    tpl = tmp_path / "new.toml"
    assert cli("config", "init", tpl).exit_code == 0
    import tomllib

    data = tomllib.loads(tpl.read_text())
    assert {"pipeline", "stages", "slurm"} <= set(data) and "ingest" in data["stages"]
    assert cli("config", "init", tpl).exit_code == 2  # refuses to overwrite
