"""Executors for pipeline tasks: in this process, a dask LocalCluster, or SLURM via dask-jobqueue.

Tasks are :class:`neurodyn.pipeline.tasks.Task` objects (paths and JSON values only) run by
:func:`neurodyn.pipeline.resume.execute`, which returns a small status dict and never raises; so
workers exchange file paths on the shared filesystem, never arrays.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from neurodyn.errors import InputError
from neurodyn.params import ParamError
from neurodyn.pipeline.resume import execute

log = logging.getLogger(__name__)

THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SLURM_KEYS = ("queue", "account", "cores", "memory", "walltime", "job_extra_directives",
              "processes", "jobs", "interface", "local_directory", "job_script_prologue",
              "startup_timeout", "python")


def available_cores() -> int:
    """CPU cores this process may use (affinity mask aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS)
        return os.cpu_count() or 1


def worker_layout(jobs: int, n_tasks: int, cores: int | None = None) -> tuple[int, int]:
    """``(workers, threads per worker)`` with workers x threads <= cores.

    ``jobs = -1`` means every core; never more workers than tasks.
    """
    cores = cores or available_cores()
    if jobs == 0 or jobs < -1:
        raise ParamError("jobs", f"expected a positive number or -1, got {jobs}")
    want = cores if jobs == -1 else jobs
    workers = max(1, min(want, n_tasks, cores))
    return workers, max(1, cores // workers)


def thread_env(threads: int) -> dict[str, str]:
    """Environment of a worker: numba/BLAS threads, and no HDF5 file locking (NFS/Lustre)."""
    return {**{k: str(threads) for k in THREAD_VARS}, "HDF5_USE_FILE_LOCKING": "FALSE"}


def run_tasks(
    tasks: Sequence[Any],
    *,
    jobs: int = 1,
    executor: str = "local",
    on_error: str = "abort",
    slurm: Mapping[str, Any] | None = None,
    rundir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run tasks respecting their dependencies; ``{task key: result dict}``.

    A task whose upstream failed is ``blocked``. With ``on_error="abort"`` the first failure
    stops scheduling (running tasks are cancelled).
    """
    say = log or (lambda msg: None)
    if not tasks:
        return {}
    if executor == "slurm":
        return _run_dask(tasks, on_error, say, slurm=dict(slurm or {}), jobs=jobs, rundir=rundir)
    if executor != "local":
        raise ParamError("executor", f"expected local or slurm, got {executor!r}")
    workers, threads = worker_layout(jobs, _max_width(tasks))
    if workers == 1:
        return _run_serial(tasks, on_error, say)
    return _run_dask(tasks, on_error, say, workers=workers, threads=threads)


def _max_width(tasks: Sequence[Any]) -> int:
    """The most tasks that can ever run at once (tasks at the same dependency depth)."""
    depth: dict[str, int] = {}
    keys = {t.key for t in tasks}
    for t in tasks:  # dependency order
        depth[t.key] = 1 + max((depth[d] for d in t.deps if d in keys), default=0)
    counts: dict[int, int] = {}
    for d in depth.values():
        counts[d] = counts.get(d, 0) + 1
    return max(counts.values())


def _report(say: Callable[[str], None], r: Mapping[str, Any]) -> None:
    if r["status"] == "done":
        say(f"  done     {r['key']} ({r['seconds']:.1f} s)")
    elif r["status"] == "failed":
        say(f"  FAILED   {r['key']}: {r['error']}")
    elif r["status"] == "blocked":
        say(f"  blocked  {r['key']}: {r['error']}")


def _run_serial(tasks: Sequence[Any], on_error: str, say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for t in tasks:
        deps = [results[d] for d in t.deps if d in results]
        r = execute(t, *deps)
        results[t.key] = r
        _report(say, r)
        if r["status"] == "failed" and on_error == "abort":
            break
    return results


def _run_dask(
    tasks: Sequence[Any],
    on_error: str,
    say: Callable[[str], None],
    *,
    workers: int = 1,
    threads: int = 1,
    slurm: dict[str, Any] | None = None,
    jobs: int = 1,
    rundir: Path | None = None,
) -> dict[str, dict[str, Any]]:
    import dask
    from distributed import Client, as_completed

    with dask.config.set({"distributed.worker.daemon": False}), _quiet_logs("distributed", "dask_jobqueue"):
        cluster = (_slurm_cluster(slurm or {}, jobs, len(tasks), rundir, say) if slurm is not None
                   else _local_cluster(workers, threads, say))
        results: dict[str, dict[str, Any]] = {}
        try:
            with Client(cluster) as client:
                if slurm is not None:
                    timeout = float((slurm or {}).get("startup_timeout", 300))
                    client.wait_for_workers(1, timeout=timeout)
                    if rundir is not None:
                        _record_jobs(cluster, rundir)
                futures = {}
                for i, t in enumerate(tasks):
                    deps = [futures[d] for d in t.deps if d in futures]
                    futures[t.key] = client.submit(execute, t, *deps, key=f"neurodyn-{i}-{t.key}", pure=False)
                by_future = {f.key: k for k, f in futures.items()}
                for fut in as_completed(list(futures.values())):
                    key = by_future[fut.key]
                    try:
                        r = fut.result()
                    except Exception as exc:  # a lost worker, not a stage error
                        t = next(t for t in tasks if t.key == key)
                        r = {"key": key, "unit": t.unit, "stage": t.stage, "status": "failed",
                             "kind": "error", "error": f"worker lost: {type(exc).__name__}: {exc}"}
                    results[key] = r
                    _report(say, r)
                    if r["status"] == "failed" and on_error == "abort":
                        client.cancel([f for f in futures.values() if not f.done()])
                        break
        finally:
            with contextlib.suppress(Exception):
                cluster.close()
    order = {t.key: i for i, t in enumerate(tasks)}
    return dict(sorted(results.items(), key=lambda kv: order[kv[0]]))


@contextlib.contextmanager
def _quiet_logs(*names: str) -> Any:
    """Only errors from dask's loggers while a cluster runs (its INFO chatter is not ours)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _local_cluster(workers: int, threads: int, say: Callable[[str], None]) -> Any:
    from distributed import LocalCluster

    say(f"dask LocalCluster: {workers} workers x {threads} threads")
    with _quiet_children():
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
            silence_logs=logging.ERROR, env=thread_env(threads),
        )


@contextlib.contextmanager
def _quiet_children() -> Any:
    """Processes started inside this block ignore SIGINT (they inherit the disposition) and
    multiprocessing's resource tracker does not warn about the semaphores of killed workers.

    Ctrl-C in a terminal signals the whole process group; only this process should react
    (close the cluster, exit 130 with one line), not every worker with its own traceback.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_warn = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = ",".join(
        w for w in (old_warn, "ignore:resource_tracker:UserWarning") if w)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if old_warn is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = old_warn


def _slurm_cluster(
    conf: dict[str, Any], jobs: int, n_tasks: int, rundir: Path | None, say: Callable[[str], None]
) -> Any:
    """A dask-jobqueue SLURMCluster configured from the pipeline's ``[slurm]`` table."""
    from dask_jobqueue import SLURMCluster

    unknown = set(conf) - set(SLURM_KEYS)
    if unknown:
        raise InputError("[slurm]", f"unknown keys {sorted(unknown)}; allowed {list(SLURM_KEYS)}")
    cores = int(conf.get("cores", 1))
    processes = int(conf.get("processes", 1))
    threads = max(1, cores // processes)
    n_jobs = int(conf.get("jobs", jobs if jobs > 0 else 1))
    n_jobs = max(1, min(n_jobs, n_tasks))
    logdir = (rundir or Path.cwd()) / ".neurodyn" / "slurm"
    logdir.mkdir(parents=True, exist_ok=True)
    prologue = [f"export {k}={v}" for k, v in thread_env(threads).items()]
    prologue += list(conf.get("job_script_prologue", []))
    kwargs: dict[str, Any] = dict(
        cores=cores, processes=processes, memory=str(conf.get("memory", "2GB")),
        walltime=str(conf.get("walltime", "01:00:00")), job_name="neurodyn",
        job_extra_directives=list(conf.get("job_extra_directives", [])),
        job_script_prologue=prologue, log_directory=str(logdir),
        local_directory=str(conf.get("local_directory", "/tmp")),
        python=str(conf.get("python", _python())),
        scheduler_options={"dashboard_address": ":0"},
    )
    for k in ("queue", "account", "interface"):
        if k in conf:
            kwargs[k] = conf[k]
    cluster = SLURMCluster(**kwargs)
    cluster.scale(jobs=n_jobs)
    say(f"dask SLURMCluster: {n_jobs} jobs x {processes} workers x {threads} threads")
    return cluster


def _python() -> str:
    return sys.executable


def _record_jobs(cluster: Any, rundir: Path) -> None:
    """Write the SLURM job ids of the cluster's workers to ``.neurodyn/slurm-jobs.json``."""
    ids: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ids = [str(j.job_id) for j in list(cluster.workers.values()) if getattr(j, "job_id", None)]
        if ids:
            break
        time.sleep(0.2)
    path = rundir / ".neurodyn" / "slurm-jobs.json"
    old: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        old = json.loads(path.read_text())
    path.write_text(json.dumps(sorted(set(old) | set(ids))))
