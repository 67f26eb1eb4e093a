"""Independent fits in local processes, with their progress reported to one bar.

Used inside one stage (candidate models x folds, restarts), below the pipeline's executors.
Tasks run in forked processes, which inherit the function and its data, so only the task
descriptions and the results cross process boundaries.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

Tick = Callable[[int], None]
_JOB: dict[str, Any] = {}


def n_workers(jobs: int, n_tasks: int) -> int:
    """Worker processes for ``jobs`` (-1: every usable core), never more than tasks.

    Raises ``ValueError`` for 0 or below -1.
    """
    if jobs == 0 or jobs < -1:
        raise ValueError(f"jobs must be a positive number or -1, got {jobs}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores if jobs == -1 else jobs, n_tasks))


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
    itself, so the results do not depend on ``jobs``.
    """
    tick = tick or (lambda n: None)
    workers = n_workers(jobs, len(tasks))
    if workers == 1 or mp.current_process().daemon:
        return [fn(t, tick) for t in tasks]
    ctx = mp.get_context("fork")
    with ctx.Manager() as manager:
        _JOB.update(fn=fn, tasks=list(tasks), queue=manager.Queue())
        try:
            return _pool(workers, ctx, len(tasks), tick)
        finally:
            _JOB.clear()


def _pool(workers: int, ctx: Any, n: int, tick: Tick) -> list[Any]:
    q = _JOB["queue"]
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
        futs = [ex.submit(_run, i) for i in range(n)]
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
