"""Running (or resuming) a whole pipeline, and the status of a run directory."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from neurodyn.errors import InputError
from neurodyn.io.outputs import check_output
from neurodyn.params import ParamError
from neurodyn.pipeline.config import Pipeline
from neurodyn.pipeline.executors import run_tasks
from neurodyn.pipeline.resume import check, load_hash_cache, record_of, save_hash_cache, write_json
from neurodyn.pipeline.stages import META
from neurodyn.pipeline.tasks import Task, build_tasks, select_tasks


@dataclass
class RunSummary:
    """What a run did: results per task key, failures, wall time."""

    rundir: Path
    results: dict[str, dict[str, Any]]
    seconds: float
    executor: str

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.results.values())

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.results.values() if r["status"] in ("failed", "blocked")]


def plan_path(rundir: Path) -> Path:
    return rundir / META / "plan.json"


def failures_path(rundir: Path, units: Sequence[str] | None = None) -> Path:
    if units is None:
        return rundir / "failures.json"
    return rundir / META / f"failures-{'-'.join(units)}.json"


def run_pipeline(
    pipe: Pipeline,
    rundir: str | os.PathLike,
    *,
    jobs: int = 1,
    executor: str = "local",
    force: bool = False,
    start: str | None = None,
    until: str | None = None,
    index: int | None = None,
    on_error: str = "abort",
    log: Callable[[str], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> RunSummary:
    """Run (or resume) a pipeline into ``rundir``.

    Parameters
    ----------
    jobs : int
        Parallel tasks; 1 runs in this process, -1 uses every core.
    executor : {"local", "slurm"}
        ``"local"``: this process or a dask LocalCluster; ``"slurm"``: dask-jobqueue.
    force, start, until, index
        ``--force``, ``--from``, ``--until`` and ``--index`` (one unit of
        :meth:`Pipeline.index_units`, for job arrays).
    on_error : {"abort", "continue"}
        With continue, independent tasks go on; failures land in ``failures.json``.
    on_start : callable, optional
        Called once every usage check has passed and the units are locked, before anything
        is written to ``rundir`` (the CLI starts ``run.log`` there).
    """
    # every usage error is raised before the run directory is created or touched
    root = Path(rundir).resolve()
    inputs = [f for u in pipe.units for f in u.inputs]
    check_output(rundir, [pipe.path, *inputs], directory=True)
    if on_error not in ("abort", "continue"):
        raise ParamError("on_error", f"expected abort or continue, got {on_error!r}")
    if executor not in ("local", "slurm"):
        raise ParamError("executor", f"expected local or slurm, got {executor!r}")
    if jobs == 0 or jobs < -1:
        raise ParamError("jobs", f"expected a positive number or -1, got {jobs}")
    units = None
    names = pipe.index_units()
    if index is not None:
        if not 0 <= index < len(names):
            raise ParamError("index", f"{index} is out of range: this pipeline has {len(names)} array tasks (0-{len(names) - 1})")
        units = [names[index]]
    all_tasks = build_tasks(pipe, root)
    for t in all_tasks:  # e.g. --input RUNDIR/u/recordings.h5: its unit would write over it
        check_output(t.out, inputs, option=f"stage {t.stage} output")
    tasks = select_tasks(all_tasks, start=start, until=until, units=units, force=force)
    with run_lock(root, units or names):
        if on_start is not None:  # usage checked and the units locked: the run begins here
            on_start()
        return _run(pipe, root, all_tasks, tasks, units, jobs=jobs, executor=executor,
                    on_error=on_error, log=log)


def _run(pipe: Pipeline, root: Path, all_tasks: list[Task], tasks: list[Task],
         units: list[str] | None, *, jobs: int, executor: str, on_error: str,
         log: Callable[[str], None] | None) -> RunSummary:

    t0 = time.perf_counter()
    load_hash_cache(root)
    write_json(plan_path(root), {"pipeline": pipe.to_dict(), "tasks": [asdict(t) for t in all_tasks]})
    # up-to-date tasks are settled here, so a cached rerun starts no worker at all
    results: dict[str, dict[str, Any]] = {}
    pending: list[Task] = []
    pending_keys: set[str] = set()
    for t in tasks:
        if not t.force and not pending_keys.intersection(t.deps) and check(t)[0] == "done":
            results[t.key] = {"key": t.key, "unit": t.unit, "stage": t.stage,
                              "status": "skipped", "seconds": 0.0}
        else:
            pending.append(t)
            pending_keys.add(t.key)
    results.update(run_tasks(
        pending, jobs=jobs, executor=executor, on_error=on_error, slurm=pipe.slurm, rundir=root, log=log
    ))
    order = {t.key: i for i, t in enumerate(tasks)}
    results = dict(sorted(results.items(), key=lambda kv: order[kv[0]]))
    save_hash_cache(root, (r["hash"] for r in results.values() if "hash" in r))
    summary = RunSummary(root, results, time.perf_counter() - t0, executor)
    fpath = failures_path(root, units)
    if summary.failures:
        write_json(fpath, [{k: r.get(k) for k in ("unit", "stage", "status", "error")}
                            for r in summary.failures])
    else:
        with contextlib.suppress(FileNotFoundError):
            fpath.unlink()
    return summary


@contextlib.contextmanager
def run_lock(root: Path, units: Sequence[str]) -> Iterator[None]:
    """Hold ``RUNDIR/.neurodyn/lock-<unit>`` for each unit run, so that two ``neurodyn run``
    on one run directory never work on the same unit at once (job-array tasks on different
    units do run side by side). A second run exits 2 instead of waiting.

    POSIX record locks (``lockf``) also hold across NFS clients with a lock daemon; the lock
    is released when this process ends, however it ends.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows: no locking)
        yield
        return
    (root / META).mkdir(parents=True, exist_ok=True)
    held: list[int] = []
    try:
        for unit in sorted(set(units)):
            path = root / META / f"lock-{unit}"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise InputError(root, f"another `neurodyn run` is working on unit {unit} of this "
                                       "run directory; wait for it to finish (or use another --out)"
                                 ) from None
            held.append(fd)
        yield
    finally:
        for fd in held:
            os.close(fd)


# -- status ---------------------------------------------------------------------------------
def resources(rundir: str | os.PathLike) -> dict[tuple[str, str], tuple[float, float]]:
    """{(unit, stage): (seconds, peak RSS in MB)} of the tasks whose run record has them (tasks
    run by this version; the memory is the peak of the process that ran the task)."""
    root = Path(rundir).resolve()
    try:
        plan = json.loads(plan_path(root).read_text())
    except (OSError, ValueError):
        raise InputError(root, "not a neurodyn run directory (no .neurodyn/plan.json); run `neurodyn run` first") from None
    out = {}
    for t in (Task(**t) for t in plan["tasks"]):
        rec = record_of(t)
        if "seconds" in rec and "peak_rss_mb" in rec:
            out[(t.unit, t.stage)] = (float(rec["seconds"]), float(rec["peak_rss_mb"]))
    return out


def status(rundir: str | os.PathLike) -> tuple[list[str], list[str], dict[tuple[str, str], tuple[str, str]]]:
    """Per (unit, stage) state of a run directory, from its plan, attributes and run records.

    Returns
    -------
    units, stages : lists of names (rows, columns)
    table : {(unit, stage): (state, reason)} with state in done/stale/missing/failed

    See :func:`resources` for each task's wall time and peak memory.
    """
    root = Path(rundir).resolve()
    try:
        plan = json.loads(plan_path(root).read_text())
    except (OSError, ValueError):
        raise InputError(root, "not a neurodyn run directory (no .neurodyn/plan.json); run `neurodyn run` first") from None
    load_hash_cache(root)
    tasks = [Task(**t) for t in plan["tasks"]]
    failed: dict[str, str] = {}
    for fp in [root / "failures.json", *sorted((root / META).glob("failures-*.json"))]:
        with contextlib.suppress(OSError, ValueError):
            for r in json.loads(fp.read_text()):
                failed[f"{r['unit']}/{r['stage']}"] = r.get("error") or r.get("status", "")
    table: dict[tuple[str, str], tuple[str, str]] = {}
    state_of: dict[str, str] = {}
    for t in tasks:
        state, reason = check(t)
        if state == "done" and any(state_of.get(d) != "done" for d in t.deps):
            state, reason = "stale", "an upstream stage is not done"
        if state != "done" and t.key in failed:
            state, reason = "failed", failed[t.key]
        state_of[t.key] = state
        table[(t.unit, t.stage)] = (state, reason)
    units = list(dict.fromkeys(t.unit for t in tasks))
    present = {t.stage for t in tasks}
    stages = [s for s in plan["pipeline"]["order"] if s in present]  # pipeline order
    return units, stages, table
