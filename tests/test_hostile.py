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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from neurodyn.errors import InputError
from neurodyn.io import outputs, store
from neurodyn.recording import Recording

ROOT = Path(__file__).resolve().parents[1]

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
    return d


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
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEURODYN_")}
    base.update(PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(cwd / ".numba"), **(env or {}))
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
    dirs = {name: prepare(template, tmp_path, name) for name, *_ in CASES}
    before = {name: snapshot(d) for name, d in dirs.items()}
    with ThreadPoolExecutor(4) as pool:
        procs = dict(zip(dirs, pool.map(lambda c: run_cli(c[1], dirs[c[0]]), CASES)))
    for name, _, code, needle in CASES:
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
