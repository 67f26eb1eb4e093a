"""Running one task, deciding whether its output is up to date, and the hash cache."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py

from neurodyn import provenance as prov
from neurodyn.errors import InputError
from neurodyn.params import ParamError
from neurodyn.pipeline.config import jsonable
from neurodyn.pipeline.stages import META, load_callable
from neurodyn.pipeline.tasks import Task


def _read_attrs(path: Path) -> dict[str, Any] | None:
    try:
        with h5py.File(path, "r", locking=False) as f:
            a = f.attrs
            return {k: (v.decode() if isinstance(v, bytes) else v)
                    for k in ("complete", "parameters", "input_digest", "seed") if k in a
                    for v in [a[k]]}
    except OSError:
        return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB). For an array task running one unit
    this is the unit's peak; for a worker that ran several tasks, the largest of them so far."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / (1 << 20 if sys.platform == "darwin" else 1 << 10)  # bytes on macOS, KiB on Linux


def record_of(task: Task) -> dict[str, Any]:
    """The task's run record (``{}`` when absent or unreadable)."""
    try:
        return json.loads(task.record.read_text())
    except (OSError, ValueError):
        return {}


def check(task: Task) -> tuple[str, str]:
    """State of a task's output: ``("done" | "stale" | "missing", reason)``; reads attributes only."""
    out = Path(task.out)
    if not out.exists():
        return "missing", "no output"
    try:
        record = json.loads(task.record.read_text())
    except (OSError, ValueError):
        return "stale", "no run record (written outside this pipeline or interrupted)"
    if record.get("params") != jsonable(task.params):
        changed = sorted(k for k in set(record.get("params", {})) | set(task.params)
                         if record.get("params", {}).get(k) != jsonable(task.params).get(k))
        return "stale", f"parameters changed: {', '.join(changed)}"
    if record.get("seed") != task.seed:
        return "stale", "seed changed"
    missing = [p for p in task.inputs if not Path(p).exists()]
    if missing:
        return "stale", f"input missing: {missing[0]}"
    if task.call == "rundir":
        digest = prov.input_digest(task.params, prov.hashes(task.inputs))
        return ("done", "") if record.get("digest") == digest else ("stale", "inputs changed")
    attrs = _read_attrs(out)
    if attrs is None:
        return "stale", "unreadable output"
    if not bool(attrs.get("complete", False)):
        return "stale", "incomplete output"
    if record.get("digest") != attrs.get("input_digest"):
        return "stale", "output was replaced since this pipeline wrote it"
    try:
        recorded = json.loads(attrs.get("parameters", "{}"))
    except ValueError:
        return "stale", "unreadable parameters attribute"
    if prov.input_digest(recorded, prov.hashes(task.inputs)) != attrs.get("input_digest"):
        return "stale", "inputs changed"
    return "done", ""


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
        os.replace(tmp, path)
    except BaseException:  # disk full, interrupt: no temporary left behind
        tmp.unlink(missing_ok=True)
        raise


def _clean_temporaries(out: Path) -> None:
    """Remove temporary files a killed writer of ``out`` left (one task owns one output)."""
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        with contextlib.suppress(OSError):
            tmp.unlink()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def execute(task: Task, *dep_results: Mapping[str, Any]) -> dict[str, Any]:
    """Run one task unless its output is up to date; never raises (except interrupts).

    Returns a small dict: ``status`` in {"done", "skipped", "failed", "blocked"}, ``key``,
    ``seconds``, ``error`` (one line), and the output's ``hash`` entry for the cache.
    """
    base = {"key": task.key, "unit": task.unit, "stage": task.stage}
    bad = [r["key"] for r in dep_results if r.get("status") in ("failed", "blocked")]
    if bad:
        return {**base, "status": "blocked", "error": f"upstream {bad[0]} did not complete"}
    if not task.force:
        state, _ = check(task)
        if state == "done":
            return {**base, "status": "skipped", "seconds": 0.0}
    for p in task.inputs:
        if not Path(p).exists():
            return {**base, "status": "failed", "kind": "input",
                    "error": f"{p}: input missing (run the earlier stages first)"}
    out = Path(task.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_temporaries(out)
    t0 = time.perf_counter()
    try:
        fn = load_callable(task.target, stage=task.stage)
        if task.call == "ingest":
            fn([Path(p) for p in task.inputs], out, **task.params)
        elif task.call == "rundir":
            fn(out.parent, **task.params)
        else:
            fn(Path(task.inputs[0]), out, seed=task.seed, **task.params)
        if not out.exists():
            raise RuntimeError(f"stage {task.stage} returned without writing {out}")
    except InputError as exc:
        return {**base, "status": "failed", "kind": "input", "error": str(exc),
                "seconds": time.perf_counter() - t0}
    except ParamError as exc:  # a parameter the stage found unusable for this data
        where = f"{exc.name}: " if exc.name else ""
        return {**base, "status": "failed", "kind": "input",
                "error": f"[stages.{task.stage}] {where}{exc.problem}", "seconds": time.perf_counter() - t0}
    except Exception as exc:  # reported in failures.json; the CLI maps it to exit 3
        return {**base, "status": "failed", "kind": "error", "error": _one_line(exc),
                "seconds": time.perf_counter() - t0}
    if task.call == "rundir":
        digest = prov.input_digest(task.params, prov.hashes(task.inputs))
    else:
        digest = (_read_attrs(out) or {}).get("input_digest")
    seconds = time.perf_counter() - t0
    write_json(task.record, {"params": jsonable(task.params), "seed": task.seed,
                              "digest": digest, "target": task.target, "finished": prov.now(),
                              "seconds": round(seconds, 3), "peak_rss_mb": round(peak_rss_mb(), 1)})
    st = out.stat()
    return {**base, "status": "done", "seconds": seconds,
            "hash": [str(out.resolve()), st.st_size, st.st_mtime_ns, prov.file_hash(out)]}


def _cache_path(rundir: Path) -> Path:
    return rundir / META / "hashes.json"


def load_hash_cache(rundir: Path) -> None:
    """Seed :mod:`neurodyn.provenance`'s (path, size, mtime) hash cache from the run directory."""
    try:
        entries = json.loads(_cache_path(rundir).read_text())
    except (OSError, ValueError):
        return
    for path, size, mtime, digest in entries:
        prov._HASH_CACHE[(path, int(size), int(mtime))] = digest


def save_hash_cache(rundir: Path, extra: Iterable[Sequence[Any]] = ()) -> None:
    for path, size, mtime, digest in extra:
        prov._HASH_CACHE[(path, int(size), int(mtime))] = digest
    live = []
    for (path, size, mtime), digest in prov._HASH_CACHE.items():
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if st.st_size == size and st.st_mtime_ns == mtime:
                live.append([path, size, mtime, digest])
    write_json(_cache_path(rundir), sorted(live))
