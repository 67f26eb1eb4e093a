"""Hostile and careless inputs, run as a user runs them: the ``neurodyn`` console script.

Each row of :data:`CASES` runs in a fresh copy of a small scratch directory, as a subprocess
(PYTHONPATH points at this checkout), and must exit with the given code, print exactly one
``error: ...`` line naming what it should, and leave every file of the directory unchanged
(names and SHA-256 before and after). Rows run a few at a time to keep the wall time low.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from neurodyn.errors import InputError
from neurodyn.io import outputs, store
from neurodyn.recording import Recording

ROOT = Path(__file__).resolve().parents[2]

PIPELINE = """
[pipeline]
name = "p"
inputs = ["rec.h5"]

[stages.ingest]
"""

# (id, arguments, exit code, text the one error line must contain)
CASES: list[tuple[str, list[str], int, str]] = [
    # --out equal to an input, through any spelling, symlink or hard link
    ("ingest-same", ["ingest", "rec.h5", "--out", "rec.h5"], 2, "is the input file"),
    ("preprocess-spelling", ["preprocess", "rec.h5", "--out", "r/../rec.h5"], 2, "is the input file"),
    ("preprocess-symlink", ["preprocess", "rec.h5", "--out", "link.h5"], 2, "is the input file"),
    ("affinity-hardlink", ["affinity", "rec.h5", "--out", "hard.h5"], 2, "is the input file"),
    ("factorize-same", ["factorize", "r/affinity.h5", "--out", "r/affinity.h5"], 2, "is the input"),
    ("communities-same", ["communities", "r/ntf.h5", "--out", "./r/ntf.h5"], 2, "is the input"),
    ("states-same", ["states", "rec.h5", "--out", "rec.h5"], 2, "is the input file"),
    ("bicluster-same", ["bicluster", "rec.h5", "--out", "hard.h5"], 2, "is the input file"),
    ("report-over-stage", ["report", "r", "--out", "r/ntf.h5"], 2, "is the input file"),
    ("compare-over-stage", ["compare-connectome", "r", "-c", "x", "--out", "r/affinity.h5"], 2,
     "is the input file"),
    ("run-input-in-rundir", ["run", "p.toml", "--input", "r/recordings/recordings.h5", "--out", "r"],
     2, "is the input file"),
    ("batch-over-pipeline", ["batch", "p.toml", "--emit-sbatch", "p.toml"], 2, "is the input file"),
    # a file where a directory is expected, and the reverse
    ("figures-outdir-file", ["figures", "r", "--outdir", "r/ntf.h5"], 2, "must be a directory"),
    ("run-out-file", ["run", "p.toml", "--out", "r/ntf.h5"], 2, "must be a directory"),
    ("simulate-out-dir", ["simulate", "calcium", "--out", "r"], 2, "names a directory"),
    ("out-under-file", ["preprocess", "rec.h5", "--out", "rec.h5/x.h5"], 2, "is a file, not a directory"),
    # usage errors of `neurodyn run` leave no run directory behind
    ("run-jobs-0", ["run", "p.toml", "--out", "new", "--jobs", "0"], 2, "--jobs"),
    ("run-executor", ["run", "p.toml", "--out", "new", "--executor", "bogus"], 2, "--executor"),
    ("run-from", ["run", "p.toml", "--out", "new", "--from", "nope"], 2, "--from"),
    ("run-index", ["run", "p.toml", "--out", "new", "--index", "99"], 2, "--index"),
    # pipeline files that would run code, write outside the run, or are not text
    ("code-stage", ["run", "code.toml", "--out", "new"], 2, "--allow-code"),
    ("output-escapes", ["run", "escape.toml", "--out", "new"], 2, "inside the unit directory"),
    ("output-absolute", ["run", "absolute.toml", "--out", "new"], 2, "inside the unit directory"),
    ("pipeline-not-utf8", ["run", "latin1.toml", "--out", "new"], 2, "not UTF-8"),
    ("sbatch-newline", ["batch", "newline.toml", "--out", "new", "--emit-sbatch", "new.sh"], 2,
     "control character"),
    # sizes that cannot be allocated are refused before allocating, naming the option
    ("rank-too-large", ["factorize", "r/affinity.h5", "--out", "f.h5", "--rank", "100000"], 2,
     "--rank: the rank-100000 NTF workspace would need"),
    ("resample-too-fast", ["preprocess", "rec.h5", "--out", "p.h5", "--fs", "1e9"], 2,
     "--fs: the resampled traces would need"),
    ("spike-at-1e12-s", ["ingest", "late.csv", "--out", "s.h5"], 2, "binned spike counts would need"),
    ("bin-1e-6-ms", ["ingest", "spikes.csv", "--out", "s.h5", "--reader-options", "bin_ms=1e-6"], 2,
     "binned spike counts would need"),
    # a forced reader on a corrupt archive
    ("corrupt-zip", ["ingest", "bad.zip", "--format", "celegans-venkatachalam", "--out", "z.h5"], 2,
     "bad.zip: cannot read"),
    ("corrupt-npz", ["ingest", "bad.npz", "--format", "spikes-table", "--out", "z.h5"], 2,
     "bad.npz: cannot read"),
]

# (id, environment, arguments, exit code, text): --version and --help read no environment,
# and each option's variable is named after its flag
ENV_CASES: list[tuple[str, dict[str, str], list[str], int, str]] = [
    ("env-version-help", {"NEURODYN_VERSION": "1", "NEURODYN_HELP": "1",
                          "NEURODYN_SHOW_COMPLETION": "1", "NEURODYN_INSTALL_COMPLETION": "1"},
     ["preprocess", "rec.h5", "--out", "rec.h5"], 2, "is the input file"),
    ("env-flag-name", {"NEURODYN_PREPROCESS_FS": "1e9"},
     ["preprocess", "rec.h5", "--out", "p.h5"], 2, "--fs"),
    ("env-reader-option", {"NEURODYN_INGEST_READER_OPTIONS": "bin_ms=1e-6"},
     ["ingest", "spikes.csv", "--out", "s.h5"], 2, "binned spike counts would need"),
]


def _recording(rid: str = "a") -> Recording:
    rng = np.random.default_rng(0)
    return Recording(traces=rng.random((50, 3)).astype(np.float32), labels=["x", "y", "z"],
                     modality="calcium", fs=4.0, id=rid)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rec.h5, a run directory r/ of stage files and a pipeline; links made per case."""
    d = tmp_path_factory.mktemp("hostile")
    store.write_recordings(d / "rec.h5", [_recording()])
    (d / "r" / "recordings").mkdir(parents=True)
    for name in ("recordings.h5", "affinity.h5", "ntf.h5"):
        shutil.copy(d / "rec.h5", d / "r" / name)
    shutil.copy(d / "rec.h5", d / "r" / "recordings" / "recordings.h5")
    (d / "p.toml").write_text(PIPELINE)
    (d / "code.toml").write_text(PIPELINE + '[stages.evil]\nfunction = "os:system"\n')
    (d / "escape.toml").write_text(PIPELINE.replace("[stages.ingest]",
                                                    '[stages.ingest]\noutput = "../../x.h5"'))
    (d / "absolute.toml").write_text(PIPELINE.replace("[stages.ingest]",
                                                      f'[stages.ingest]\noutput = "{d}/abs.h5"'))
    (d / "latin1.toml").write_bytes(PIPELINE.replace('"p"', '"caf\u00e9"').encode("latin-1"))
    (d / "newline.toml").write_text(PIPELINE + '[slurm]\nwalltime = "1:00\\ntouch PWNED"\n')
    (d / "spikes.csv").write_text("unit,time\n0,0.5\n1,2000.0\n")  # 1e-6 ms bins: 15 TiB
    (d / "late.csv").write_text("unit,time\n0,0.5\n1,1e12\n")
    (d / "bad.zip").write_bytes(b"PK\x03\x04 truncated archive")
    (d / "bad.npz").write_bytes(b"PK\x03\x04 truncated archive")
    _write_affinity(d / "r" / "affinity.h5")
    return d


def _write_affinity(path: Path) -> None:
    """A tiny but real affinity.h5 (4 neurons, 6 pairs, 5 windows, 2 animals)."""
    from neurodyn.affinity import result
    from neurodyn.affinity.tensor import AffinityTensor
    from neurodyn.recording import empty_events
    from neurodyn.tensor.observed import ObservedTensor

    rng = np.random.default_rng(1)
    labels = ["a", "b", "c", "d"]
    pairs = np.array([(i, j) for i in range(4) for j in range(i + 1, 4)], dtype=np.int64)
    t = AffinityTensor(observed=ObservedTensor.from_dense(rng.random((6, 5, 2))),
                       pairs=pairs, labels=labels,
                       windows=np.c_[np.arange(5.0), np.arange(5.0) + 1], animals=["x", "y"],
                       present=np.ones((2, 4), bool), events=empty_events(), fs=4.0)
    path.unlink()
    with store.atomic_h5(path, stage=result.STAGE) as f:
        result.write(f, t, "differential")


def snapshot(d: Path) -> dict[str, str]:
    """Every file and directory under ``d`` -> SHA-256 of its content ("dir" for folders)."""
    out = {}
    for p in sorted(d.rglob("*")):
        key = str(p.relative_to(d))
        out[key] = "dir" if p.is_dir() and not p.is_symlink() else (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "dangling")
    return out


def neurodyn_command() -> list[str]:
    """The installed console script, else the same entry point through this interpreter."""
    exe = shutil.which("neurodyn")
    return [exe] if exe else [sys.executable, "-c", "from neurodyn.cli import main; main()"]


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    keep = ("NEURODYN_CACHE_DIR", "NEURODYN_SHARED")  # compiled kernels are shared between runs
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEURODYN_") or k in keep}
    if "NEURODYN_CACHE_DIR" in base:  # a relative cache folder would land in the case's directory
        base["NEURODYN_CACHE_DIR"] = os.path.abspath(base["NEURODYN_CACHE_DIR"])
    base.update(PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run(neurodyn_command() + args, cwd=cwd, env=base, capture_output=True,
                          text=True, timeout=kw.pop("timeout", 120), **kw)


def assert_one_line(proc: subprocess.CompletedProcess, code: int, needle: str, what: str) -> None:
    err = proc.stderr.strip()
    assert proc.returncode == code, f"{what}: exit {proc.returncode}\n{proc.stderr}"
    assert err.startswith("error: ") and "\n" not in err, f"{what}: {err}"
    assert needle in err, f"{what}: {err!r} lacks {needle!r}"


def prepare(template: Path, root: Path, name: str) -> Path:
    d = root / name
    shutil.copytree(template, d)
    (d / "link.h5").symlink_to("rec.h5")
    os.link(d / "rec.h5", d / "hard.h5")
    return d


def test_refusals_touch_nothing(template: Path, tmp_path: Path) -> None:
    """Every case: exit code, one error line, and not one byte of the directory changed."""
    cases = [(name, {}, args, code, needle) for name, args, code, needle in CASES] + ENV_CASES
    dirs = {c[0]: prepare(template, tmp_path, c[0]) for c in cases}
    before = {name: snapshot(d) for name, d in dirs.items()}
    with ThreadPoolExecutor(4) as pool:
        procs = dict(zip(dirs, pool.map(lambda c: run_cli(c[2], dirs[c[0]], c[1]), cases)))
    for name, _, _, code, needle in cases:
        assert_one_line(procs[name], code, needle, name)
        assert snapshot(dirs[name]) == before[name], f"{name} changed files"


# -- disk full, read-only directories ----------------------------------------------------------
def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                       capture_output=True)
    return r.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


def test_disk_full_and_read_only_on_real_file_systems(tmp_path: Path) -> None:
    """A 256 KiB tmpfs fills up during the write; a read-only tmpfs refuses it (root only)."""
    full, ro = tmp_path / "full", tmp_path / "ro"
    if not _mount_tmpfs(full, "size=256k"):
        pytest.skip("cannot mount a tmpfs here (needs root); the monkeypatched test covers it")
    try:
        _mount_tmpfs(ro, "ro,size=64k")
        procs = [
            run_cli(["simulate", "calcium", "--frames", "4000", "--out", str(full / "sim.h5")], tmp_path),
            run_cli(["simulate", "calcium", "--frames", "20", "--out", str(ro / "sim.h5")], tmp_path),
        ]
        assert_one_line(procs[0], 2, f"{full / 'sim.h5'}: no space left on device", "disk full")
        assert list(full.iterdir()) == []  # the temporary file is gone
        assert_one_line(procs[1], 2, "read-only file system", "read-only")
    finally:
        _umount(full)
        _umount(ro)


class _FullDisk:
    """A file object whose writes fail with ENOSPC after ``room`` bytes (a disk filling up)."""

    def __init__(self, path: Path, mode: str, room: int, **kw) -> None:
        self._fh = open(path, mode, **kw)  # noqa: SIM115
        self.room = room

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        if n > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= n
        return self._fh.write(data)

    def __getattr__(self, name: str):
        return getattr(self._fh, name)


def test_disk_full_monkeypatched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk full at any point of an HDF5 write: one InputError, no temporary file, no output."""
    real_create = outputs.create
    for room in (0, 4096, 60_000):
        monkeypatch.setattr(outputs, "create", lambda p, mode="wb", room=room, **kw:
                            _FullDisk(p, mode, room, **kw))
        out = tmp_path / f"out{room}.h5"
        with pytest.raises(InputError, match="no space left on device"):
            store.write_recordings(out, [_recording(f"r{i}") for i in range(20)])
        assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(outputs, "create", real_create)
    store.write_recordings(tmp_path / "ok.h5", [_recording()])
    assert store.is_complete(tmp_path / "ok.h5")


# -- job scripts from hostile pipeline files ---------------------------------------------------
HOSTILE = """
[pipeline]
name = "x$(touch PWNED-name)`touch PWNED-tick`"
inputs = ["rec.h5"]

[stages.ingest]

[stages."pre$(touch PWNED-stage)"]
uses = "preprocess"

[slurm]
walltime = "1:00:00; touch PWNED-walltime"
queue = "q' ; touch PWNED-queue ; '"
account = "a\\" ; touch PWNED-account ; \\""
job_extra_directives = ["--gres=gpu:1 $(touch PWNED-directive)"]
"""


def test_sbatch_script_quotes_every_value(template: Path, tmp_path: Path, monkeypatch) -> None:
    """A hostile pipeline file gives a script that bash parses and that runs only neurodyn
    (here `echo` in its place) with the hostile strings as plain arguments."""
    from neurodyn.pipeline import load_pipeline, parse_sets, slurm

    d = prepare(template, tmp_path, "sbatch")
    (d / "hostile.toml").write_text(HOSTILE)
    sets = ["pre$(touch PWNED-stage).reference=\"A1; touch PWNED-set\""]
    pipe = load_pipeline(d / "hostile.toml", sets=parse_sets(sets))
    monkeypatch.setattr(slurm, "neurodyn_executable", lambda: "echo")
    script = d / "job.sh"
    script.write_text(slurm.sbatch_script(pipe, d / "run $(touch PWNED-dir)",
                                          extra_args=["--set", sets[0]]))
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    r = subprocess.run(["bash", str(script)], cwd=d, capture_output=True, text=True,
                       env={"PATH": os.environ["PATH"], "SLURM_ARRAY_TASK_ID": "0"})
    assert r.returncode == 0, r.stderr
    assert not list(d.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))
    assert sets[0] in r.stdout and "run $(touch PWNED-dir)" in r.stdout  # passed verbatim
    assert "--index 0 " in r.stdout


# -- what else the issue asked for ---------------------------------------------------------------
def test_env_var_names_follow_flags() -> None:
    """Every option's variable is NEURODYN_<COMMAND...>_<LONG FLAG>; help/version/completion none."""
    import typer.main

    from neurodyn.cli import app

    def walk(cmd, prefix):
        for p in cmd.params:
            if getattr(p, "param_type_name", "") != "option":
                continue
            longs = [o for o in p.opts if o.startswith("--")]
            if p.name in ("help", "version", "install_completion", "show_completion") or not longs:
                assert p.envvar is None, p.name
            else:
                assert p.envvar == f"{prefix}_{longs[0][2:].upper().replace('-', '_')}", p.opts
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            yield name
            yield from walk(sub, f"{prefix}_{name.upper().replace('-', '_')}")

    names = list(walk(typer.main.get_command(app), "NEURODYN"))
    assert {"ingest", "run", "calcium"} <= set(names)


def test_second_run_on_the_same_unit_is_refused(tmp_path: Path) -> None:
    """A held unit lock makes a second `neurodyn run` exit 2; other units stay free."""
    from neurodyn.pipeline.runner import run_lock

    root = tmp_path / "run"
    with run_lock(root, ["u0", "u1"]):
        code = ("import sys; from pathlib import Path; from neurodyn.pipeline.runner import run_lock\n"
                "from neurodyn.errors import InputError\n"
                "try:\n"
                "    with run_lock(Path(sys.argv[1]), [sys.argv[2]]): print('free')\n"
                "except InputError as e: print('locked:', e)\n")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        held = subprocess.run([sys.executable, "-c", code, str(root), "u1"], env=env,
                              capture_output=True, text=True)
        free = subprocess.run([sys.executable, "-c", code, str(root), "u2"], env=env,
                              capture_output=True, text=True)
    assert held.stdout.startswith("locked:") and "another `neurodyn run`" in held.stdout
    assert free.stdout.strip() == "free"


def test_code_stages_run_only_when_allowed(template: Path) -> None:
    from neurodyn.pipeline import load_pipeline

    with pytest.raises(InputError, match="allow-code"):
        load_pipeline(template / "code.toml")
    pipe = load_pipeline(template / "code.toml", allow_code=True)
    assert pipe.stages["evil"].defn.target == "os:system"


def test_numba_cache_outside_the_package(tmp_path: Path) -> None:
    """NUMBA_CACHE_DIR comes from NEURODYN_CACHE_DIR (or the per-user cache), set on import."""
    code = "import neurodyn, os; print(os.environ['NUMBA_CACHE_DIR'])"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "NEURODYN_"))}
    env.update(PYTHONPATH=str(ROOT), NEURODYN_CACHE_DIR=str(tmp_path / "c"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == str(tmp_path / "c" / "numba")
    del env["NEURODYN_CACHE_DIR"]
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip().startswith(str(tmp_path / "xdg")) or sys.platform != "linux"


@pytest.mark.slow
def test_ctrl_c_during_parallel_run(template: Path, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while two dask
    workers run: exit 130 with one line, no worker left behind, no output under its real name."""
    import signal

    d = prepare(template, tmp_path, "ctrlc")
    shutil.copy(d / "rec.h5", d / "a.h5")
    shutil.copy(d / "rec.h5", d / "b.h5")
    (d / "slow.toml").write_text(
        '[pipeline]\ninputs = ["a.h5", "b.h5"]\nallow_code = true\n\n[stages.ingest]\n\n'
        '[stages.scale]\nfunction = "test_pipeline:scale_stage"\nafter = "ingest"\n'
        'output = "scale.h5"\ndelay = 60.0\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEURODYN_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests" / "pipeline")])
    p = subprocess.Popen(neurodyn_command() + ["run", "slow.toml", "--out", "run", "--jobs", "2"],
                         cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        done = 0
        for line in p.stdout:  # both ingests done: the two scale tasks are sleeping mid-write
            done += "/ingest" in line and "done" in line
            if done == 2:
                break
        time.sleep(1.0)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err
    assert err.strip().splitlines() == ["interrupted: outputs already written are kept; rerun to resume"]
    assert not list((d / "run").glob("*/scale.h5"))
    for _ in range(100):  # the process group (workers included) is gone within seconds
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        left = subprocess.run(["ps", "-o", "pid,cmd", "-g", str(p.pid)], capture_output=True,
                              text=True).stdout
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail(f"processes left after the interrupt:\n{left}")
