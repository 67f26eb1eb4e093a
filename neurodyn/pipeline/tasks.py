"""A resolved pipeline -> (unit, stage) tasks; ``--from``/``--until``/``--index`` selection."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from neurodyn.params import ParamError
from neurodyn.pipeline.config import Pipeline
from neurodyn.pipeline.stages import JOINT, META


@dataclass
class Task:
    """One (unit, stage) job; only paths and JSON values, so it pickles to any worker."""

    unit: str
    stage: str
    target: str
    call: str
    inputs: list[str]
    out: str
    params: dict[str, Any]
    seed: int | None
    deps: list[str]
    force: bool = False

    @property
    def key(self) -> str:
        return f"{self.unit}/{self.stage}"

    @property
    def record(self) -> Path:
        return Path(self.out).parent / META / f"{self.stage}.json"


def derive_seed(seed: int, unit: str, stage: str) -> int:
    """A task's seed: a deterministic function of the pipeline seed, unit and stage names."""
    h = hashlib.sha256(f"{int(seed)}/{unit}/{stage}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def build_tasks(pipe: Pipeline, rundir: str | os.PathLike) -> list[Task]:
    """Every (unit, stage) task of a pipeline in dependency order."""
    root = Path(rundir).resolve()
    all_inputs = [f for u in pipe.units for f in u.inputs]
    unit_stages, joint_stages = pipe.scoped_stages()
    tasks: list[Task] = []
    scopes: list[tuple[str, list[str], set[str]]] = []
    if unit_stages:
        scopes += [(u.name, u.inputs, unit_stages) for u in pipe.units]
    if joint_stages:
        scopes.append((JOINT, all_inputs, joint_stages))
    for unit, inputs, names in scopes:
        udir = root / unit
        made: dict[str, Task] = {}
        for name, s in pipe.stages.items():
            d = s.defn
            if s.scope == "each":
                if not made:
                    continue
                deps = list(made.values())
                t_inputs = [t.out for t in deps]
            elif name not in names:
                continue
            elif s.only is not None and unit != JOINT and not any(fnmatch(unit, p) for p in s.only):
                continue  # restricted to other units (e.g. another modality)
            elif s.input_stage is not None and s.input_stage not in made:
                continue  # its upstream does not run on this unit
            elif d.call == "ingest":
                deps, t_inputs = [], list(inputs)
            else:
                up = made[s.input_stage]  # type: ignore[index]
                deps, t_inputs = [up], [up.out]
            seed = None if d.call == "ingest" else derive_seed(pipe.seed, unit, name)
            made[name] = Task(unit, name, d.target, d.call, t_inputs, str(udir / d.output),
                              dict(s.params), seed, [t.key for t in deps])
        tasks += made.values()
    return tasks


def select_tasks(
    tasks: list[Task],
    *,
    start: str | None = None,
    until: str | None = None,
    units: Sequence[str] | None = None,
    force: bool = False,
) -> list[Task]:
    """Apply ``--from`` (forced: that stage and its descendants), ``--until``, ``--index``, ``--force``."""
    by_key = {t.key: t for t in tasks}
    children: dict[str, list[str]] = {}
    for t in tasks:
        for d in t.deps:
            children.setdefault(d, []).append(t.key)

    def closure(keys: Iterable[str], edges: Callable[[str], Iterable[str]]) -> set[str]:
        seen: set[str] = set()
        stack = list(keys)
        while stack:
            k = stack.pop()
            if k not in seen:
                seen.add(k)
                stack += edges(k)
        return seen

    keep = set(by_key)
    stage_names = {t.stage for t in tasks}
    for opt, name in (("from", start), ("until", until)):
        if name is not None and name not in stage_names:
            raise ParamError(opt, f"no stage {name!r} in this pipeline (it has {sorted(stage_names)})")
    forced: set[str] = set()
    if start is not None:
        forced = closure([t.key for t in tasks if t.stage == start], lambda k: children.get(k, []))
        keep &= forced
    if until is not None:
        keep &= closure([t.key for t in tasks if t.stage == until], lambda k: by_key[k].deps)
    if units is not None:
        keep &= {t.key for t in tasks if t.unit in set(units)}
    out = []
    for t in tasks:
        if t.key in keep:
            t.force = force or t.key in forced
            out.append(t)
    return out
