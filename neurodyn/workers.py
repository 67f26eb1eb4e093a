"""Independent fits in local processes, with their progress reported to one bar.

Used inside one stage (candidate models x folds, restarts), below the pipeline's executors.
Workers start from a clean fork server (forking a process whose numba / OpenMP threads
already run can deadlock or crash the child); the function, its closure and the task list
are sent to each worker once (cloudpickle), then only task indices and results travel.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import cloudpickle

Tick = Callable[[int], None]
_JOB: dict[str, Any] = {}


def check_jobs(jobs: int) -> int:
    """``jobs`` as an int; ``ValueError`` unless it is positive or -1 (every core)."""
    if int(jobs) == 0 or int(jobs) < -1:
        raise ValueError(f"expected a positive number or -1, got {jobs}")
    return int(jobs)


def n_workers(jobs: int, n_tasks: int) -> int:
    """Worker processes for ``jobs`` (-1: every usable core), never more than tasks.

    Raises ``ValueError`` for 0 or below -1.
    """
    jobs = check_jobs(jobs)
    return max(1, min(_cores() if jobs == -1 else jobs, n_tasks))


def _cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _setup(payload: bytes, q: Any, threads: int) -> None:
    fn, tasks = cloudpickle.loads(payload)
    _JOB.update(fn=fn, tasks=tasks, queue=q)
    numba = sys.modules.get("numba")  # loaded with fn's module when its kernels use it
    if numba is not None:  # the cores shared out between workers, not every core each
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def _run(i: int) -> Any:
    q = _JOB["queue"]

    def tick(n: int) -> None:
        try:
            q.put_nowait(n)
        except Exception:  # noqa: BLE001 - progress is best effort
            pass

    return _JOB["fn"](_JOB["tasks"][i], tick)


def map_tasks(fn: Callable[[Any, Tick], Any], tasks: Sequence[Any], *, jobs: int = 1,
              tick: Tick | None = None) -> list[Any]:
    """``[fn(task, tick) for task in tasks]``, in ``jobs`` processes.

    ``fn`` reports progress by calling ``tick(n)``; the calls reach ``tick`` of this process.
    Results come back in task order. Runs serially with ``jobs == 1``, a single task, or
    inside a daemonic process (a pipeline worker may not start children); each task seeds
    itself, so the results do not depend on ``jobs``. ``fn`` may be a closure over arrays
    (sent once per worker).
    """
    tick = tick or (lambda n: None)
    workers = n_workers(jobs, len(tasks))
    if workers == 1 or mp.current_process().daemon:
        return [fn(t, tick) for t in tasks]
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([fn.__module__])  # imported once, in the server (if not started)
    payload = cloudpickle.dumps((fn, list(tasks)))
    with ctx.Manager() as manager:
        q = manager.Queue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_setup,
                                 initargs=(payload, q, max(1, _cores() // workers))) as ex:
            futs = [ex.submit(_run, i) for i in range(len(tasks))]
            while True:
                try:
                    tick(q.get(timeout=0.2))
                except queue_mod.Empty:
                    if all(f.done() for f in futs):
                        break
            while True:  # drain what arrived after the last check
                try:
                    tick(q.get_nowait())
                except queue_mod.Empty:
                    break
            return [f.result() for f in futs]
