"""Declarative pipelines: a TOML file -> a DAG of (unit, stage) tasks -> resumable execution.

A pipeline file names its inputs, its stages and their parameters::

    [pipeline]
    name = "sample"
    seed = 0
    inputs = ["../sample_data/*.h5"]     # paths or globs, relative to this file

    [stages.ingest]
    resample_hz = 4.0

    [stages.affinity]
    scope = "joint"                      # all inputs together in RUNDIR/joint/

Each input file is one *recording unit* with its own directory ``RUNDIR/<unit>/`` holding
``recordings.h5``, ``affinity.h5``...; a stage with ``scope = "joint"`` (and everything
downstream of it) runs once in ``RUNDIR/joint/`` on all inputs ingested together.

Parameters resolve as built-in defaults < TOML < environment (``NEURODYN_<STAGE>_<PARAM>``)
< command-line ``--set stage.param=value``. A task is skipped when its output is complete,
the run record ``RUNDIR/<unit>/.neurodyn/<stage>.json`` shows the same resolved parameters
and seed, and the digest of the output's recorded parameters with the *current* content
hashes of its inputs equals the output's ``input_digest`` attribute.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from neurodyn import provenance as prov
from neurodyn.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

JOINT = "joint"
META = ".neurodyn"  # bookkeeping directory inside RUNDIR and inside each unit directory
RESERVED_KEYS = ("function", "after", "output", "scope", "enabled", "call", "only", "uses")
PIPELINE_KEYS = ("name", "seed", "inputs", "units", "jobs", "executor", "on_error", "description")


# -- stage registry -------------------------------------------------------------------------
@dataclass(frozen=True)
class StageDef:
    """How to call one stage.

    Attributes
    ----------
    name : str
    target : str
        ``"package.module:function"``, imported lazily.
    output : str
        File name of its output inside the unit directory.
    after : tuple of str
        Candidate upstream stages: the first one present in the pipeline feeds this stage.
        ``("*",)`` means every other stage of the unit (used by the report).
    call : str
        ``"stage"``: ``fn(input_path, out, seed=, **params)``; ``"ingest"``:
        ``fn(inputs, out, **params)``; ``"rundir"``: ``fn(unit_dir, **params)``.
    """

    name: str
    target: str
    output: str
    after: tuple[str, ...] = ()
    call: str = "stage"


BUILTIN_STAGES: dict[str, StageDef] = {
    s.name: s
    for s in (
        StageDef("ingest", "neurodyn.ingest:ingest", "recordings.h5", (), "ingest"),
        StageDef("preprocess", "neurodyn.preprocess:run", "preprocessed.h5", ("ingest",)),
        StageDef("affinity", "neurodyn.affinity.stage:run", "affinity.h5", ("preprocess", "ingest")),
        StageDef("factorize", "neurodyn.tensor.stage:run", "ntf.h5", ("affinity",)),
        StageDef("communities", "neurodyn.community.stage:run", "communities.h5", ("factorize",)),
        StageDef("states", "neurodyn.hmmglm.stage:run", "states.h5", ("preprocess", "ingest")),
        StageDef("bicluster", "neurodyn.bicluster.stage:run", "bicluster.h5", ("preprocess", "ingest")),
        StageDef("report", "neurodyn.report:build_report", "report.html", ("*",), "rundir"),
    )
}


def load_callable(target: str, *, source: str | os.PathLike | None = None, stage: str = "") -> Callable:
    """Import ``"module:function"``; a clear :class:`InputError` when it is unavailable."""
    mod_name, _, fn_name = target.partition(":")
    try:
        module = importlib.import_module(mod_name)
        return getattr(module, fn_name or "run")
    except (ImportError, AttributeError) as exc:
        raise InputError(
            source, f"stage {stage!r} needs {target}, which is not available here ({exc})"
        ) from None


# -- resolved configuration -----------------------------------------------------------------
@dataclass
class Unit:
    """One recording unit: a name (its directory) and the input files it ingests."""

    name: str
    inputs: list[str]


@dataclass
class StageConf:
    """A stage as configured in one pipeline: definition, resolved parameters, their origins."""

    defn: StageDef
    params: dict[str, Any]
    origin: dict[str, str]
    scope: str = "unit"  # "unit" or "joint" (effective, after propagation)
    input_stage: str | None = None  # the upstream stage feeding it (None for ingest/report)
    only: list[str] | None = None  # unit-name patterns (fnmatch) it runs on; None = every unit

    @property
    def name(self) -> str:
        return self.defn.name


@dataclass
class Pipeline:
    """A parsed, validated pipeline with every parameter resolved."""

    path: str
    name: str
    seed: int
    units: list[Unit]
    stages: dict[str, StageConf]  # topological order
    slurm: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def has_joint(self) -> bool:
        return any(s.scope == JOINT for s in self.stages.values())

    def index_units(self) -> list[str]:
        """Units addressed by ``--index`` (job-array tasks): every unit, then ``joint``."""
        per_unit = bool(self.scoped_stages()[0])
        return [u.name for u in self.units] * per_unit + ([JOINT] if self.has_joint else [])

    def scoped_stages(self) -> tuple[set[str], set[str]]:
        """Stages run per unit and stages run jointly (a stage may be in both).

        A joint stage needs its ancestors jointly; a unit-scope stage runs per unit only when
        it, or one of its descendants, is wanted per unit.
        """
        def ancestors(name: str) -> list[str]:
            out, cur = [], self.stages[name].input_stage
            while cur is not None:
                out.append(cur)
                cur = self.stages[cur].input_stage
            return out

        joint = {n for n, s in self.stages.items() if s.scope == JOINT}
        joint |= {a for n in list(joint) for a in ancestors(n)}
        unit = {n for n, s in self.stages.items() if s.scope == "unit" and n not in joint}
        unit |= {a for n in list(unit) for a in ancestors(n)}
        return unit, joint

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "name": self.name, "seed": self.seed, "order": list(self.stages),
            "units": [asdict(u) for u in self.units],
            "stages": {
                k: {"target": s.defn.target, "output": s.defn.output, "call": s.defn.call,
                    "after": list(s.defn.after), "scope": s.scope, "input_stage": s.input_stage,
                    "only": s.only,
                    "params": s.params, "origin": s.origin}
                for k, s in self.stages.items()
            },
            "slurm": self.slurm, "options": self.options,
        }


def parse_value(text: str) -> Any:
    """A value from the environment or ``--set``: TOML syntax (``3``, ``[1,2]``, ``true``) or a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_sets(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["affinity.window=30", ...]`` -> ``{"affinity": {"window": 30}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        stage, dot, param = key.strip().partition(".")
        if not eq or not dot or not stage or not param:
            raise InputError("--set", f"expected STAGE.PARAM=VALUE, got {item!r}")
        out.setdefault(stage, {})[param.replace("-", "_")] = parse_value(value.strip())
    return out


def env_overrides(stage: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parameters of ``stage`` set as ``NEURODYN_<STAGE>_<PARAM>`` environment variables."""
    environ = os.environ if environ is None else environ
    prefix = f"NEURODYN_{stage.upper()}_"
    return {k[len(prefix):].lower(): parse_value(v) for k, v in environ.items() if k.startswith(prefix)}


def signature_defaults(fn: Callable, call: str) -> tuple[dict[str, Any], bool]:
    """Keyword parameters of a stage function with their defaults, and whether it takes ``**kw``.

    A stage taking ``**params`` may list its parameters in a module-level ``DEFAULTS`` dict.
    """
    sig = inspect.signature(fn)
    skip = {"seed", "input_path", "out", "inputs", "rundir", "run_dir"}
    params = list(sig.parameters.values())
    positional = {"stage": 2, "ingest": 2, "rundir": 1}[call]
    defaults: dict[str, Any] = {}
    var_kw = False
    for i, p in enumerate(params):
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is p.VAR_POSITIONAL or i < positional or p.name in skip:
            continue
        elif p.default is not p.empty:
            defaults[p.name] = p.default
    module_defaults = getattr(sys.modules.get(fn.__module__), "DEFAULTS", None)
    if var_kw and isinstance(module_defaults, Mapping):  # stages taking **params document them here
        defaults.update(module_defaults)
        var_kw = False
    return defaults, var_kw


def stage_parameters(d: StageDef, *, source: str | os.PathLike | None = None) -> tuple[dict[str, Any], bool]:
    """Parameters and defaults of a stage, read from its source without importing it if possible.

    Importing a stage module can take a second (scipy, numba); a cached rerun should not pay
    it. When the source cannot be read statically (non-literal defaults), the module is imported.
    """
    mod_name, _, fn_name = d.target.partition(":")
    try:
        spec = importlib.util.find_spec(mod_name)
    except (ImportError, ValueError) as exc:
        raise InputError(source, f"stage {d.name!r} needs {d.target}, which is not available here ({exc})") from None
    if spec is None:
        raise InputError(source, f"stage {d.name!r} needs {d.target}, which is not available here "
                         f"(no module named {mod_name!r})")
    if mod_name not in sys.modules and spec.origin and spec.origin.endswith(".py"):
        parsed = _static_signature(Path(spec.origin), fn_name or "run", d.call)
        if parsed is not None:
            return parsed
    return signature_defaults(load_callable(d.target, source=source, stage=d.name), d.call)


def _static_signature(path: Path, fn_name: str, call: str) -> tuple[dict[str, Any], bool] | None:
    """:func:`signature_defaults` from the module's syntax tree; None when not statically known."""
    import ast

    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == fn_name), None)
    if fn is None:
        return None
    a = fn.args
    skip = {"seed", "input_path", "out", "inputs", "rundir", "run_dir"}
    positional = {"stage": 2, "ingest": 2, "rundir": 1}[call]
    pos = a.posonlyargs + a.args
    pairs = list(zip(pos[len(pos) - len(a.defaults):], a.defaults))
    pairs = [(arg, df) for arg, df in pairs if pos.index(arg) >= positional]
    pairs += [(arg, df) for arg, df in zip(a.kwonlyargs, a.kw_defaults) if df is not None]
    defaults: dict[str, Any] = {}
    try:
        for arg, df in pairs:
            if arg.arg not in skip:
                defaults[arg.arg] = ast.literal_eval(df)
    except ValueError:
        return None
    if a.kwarg is None:
        return defaults, False
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
            node.target if isinstance(node, ast.AnnAssign) else None)
        if isinstance(target, ast.Name) and target.id == "DEFAULTS" and node.value is not None:
            value = node.value
            try:
                if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict" \
                        and not value.args:
                    module_defaults = {k.arg: ast.literal_eval(k.value) for k in value.keywords}
                else:
                    module_defaults = ast.literal_eval(value)
            except ValueError:
                return None
            if isinstance(module_defaults, dict) and all(isinstance(k, str) for k in module_defaults):
                return {**defaults, **module_defaults}, False
            return None
    return defaults, True


def _jsonable(value: Any) -> Any:
    return json.loads(prov.to_json(value))


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(p, "no such pipeline file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(p, f"invalid TOML: {exc}") from None


def _unit_name(path: Path) -> str:
    name = path.name
    for suffix in (".nwb", ".h5", ".hdf5", ".edf", ".mat", ".json", ".csv", ".set", ".bdf"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "unit"


def expand_inputs(specs: Sequence[Any], base: Path, source: str | os.PathLike) -> list[Unit]:
    """Paths or globs (one unit per file) and ``{name, inputs}`` tables (one unit per group)."""
    units: list[Unit] = []

    def files(pattern: str) -> list[str]:
        p = Path(os.path.expanduser(pattern))
        p = p if p.is_absolute() else base / p
        if glob.has_magic(str(p)):
            found = sorted(glob.glob(str(p), recursive=True))
            if not found:
                raise InputError(source, f"input pattern {pattern!r} matches no file")
            return found
        if not p.exists():
            raise InputError(source, f"input {pattern!r} does not exist ({p})")
        return [str(p)]

    for spec in specs:
        if isinstance(spec, str):
            units += [Unit(_unit_name(Path(f)), [f]) for f in files(spec)]
        elif isinstance(spec, Mapping) and "inputs" in spec:
            group = spec["inputs"]
            group = [group] if isinstance(group, str) else list(group)
            paths = [f for g in group for f in files(str(g))]
            name = str(spec.get("name") or _unit_name(Path(paths[0])))
            units.append(Unit(re.sub(r"[^A-Za-z0-9._-]+", "_", name), paths))
        else:
            raise InputError(source, f"each input is a path/glob or a table {{name, inputs}}, got {spec!r}")
    # disambiguate equal names: prefix the parent directory, then number them
    seen: dict[str, int] = {}
    for u in units:
        if sum(v.name == u.name for v in units) > 1 and len(u.inputs) == 1:
            u.name = f"{_unit_name(Path(u.inputs[0]).parent)}_{u.name}"
    for u in units:
        if u.name in seen or u.name == JOINT:
            seen[u.name] = seen.get(u.name, 0) + 1
            u.name = f"{u.name}_{seen[u.name]}"
        else:
            seen[u.name] = 0
    return units


def load_pipeline(
    path: str | os.PathLike,
    *,
    sets: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int | None = None,
    inputs: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Pipeline:
    """Parse and validate a pipeline file and resolve every stage parameter.

    Parameters
    ----------
    path : path-like
        The TOML file.
    sets : mapping stage -> {param: value}, optional
        Command-line overrides (highest precedence).
    seed : int, optional
        Overrides ``[pipeline].seed``.
    inputs : sequence of str, optional
        Replace the inputs listed in the file (paths/globs relative to the current directory).
    environ : mapping, optional
        Environment used for ``NEURODYN_<STAGE>_<PARAM>`` (default ``os.environ``).

    Raises
    ------
    InputError
        Unknown keys, stages or parameters, missing inputs, a stage whose module is absent.
    """
    src = Path(path)
    data = read_toml(src)
    unknown = set(data) - {"pipeline", "stages", "slurm"}
    if unknown:
        raise InputError(src, f"unknown top-level tables {sorted(unknown)}; use [pipeline], [stages.X], [slurm]")
    head = dict(data.get("pipeline", {}))
    bad = set(head) - set(PIPELINE_KEYS)
    if bad:
        raise InputError(src, f"unknown [pipeline] keys {sorted(bad)}; allowed {list(PIPELINE_KEYS)}")
    if inputs:
        units = expand_inputs(list(inputs), Path.cwd(), "--input")
    else:
        specs = head.get("inputs", []) if "units" not in head else head["units"]
        specs = [specs] if isinstance(specs, str) else list(specs)
        if not specs:
            raise InputError(src, "names no inputs ([pipeline] inputs = [paths or globs])")
        units = expand_inputs(specs, src.resolve().parent, src)
    stage_tables = data.get("stages", {})
    if not isinstance(stage_tables, Mapping) or not stage_tables:
        raise InputError(src, "names no stages ([stages.ingest], [stages.affinity], ...)")
    sets = {k: dict(v) for k, v in (sets or {}).items()}
    for name in sets:
        if name not in stage_tables:
            raise InputError("--set", f"stage {name!r} is not in {src.name} (it has {list(stage_tables)})")

    defs: dict[str, StageDef] = {}
    tables: dict[str, dict[str, Any]] = {}
    for name, table in stage_tables.items():
        if not isinstance(table, Mapping):
            raise InputError(src, f"[stages.{name}] must be a table")
        table = dict(table)
        if table.get("enabled", True) is False:
            continue
        kind = str(table.get("uses", name))  # a second instance of a built-in: uses = "preprocess"
        base = BUILTIN_STAGES.get(kind)
        if base is None and "function" not in table:
            raise InputError(
                src, f"unknown stage {kind!r}: built-in stages are {list(BUILTIN_STAGES)}; "
                "a custom stage needs function = 'module:function'"
            )
        after = table.get("after", base.after if base else ("ingest",))
        after = (after,) if isinstance(after, str) else tuple(after)
        default_out = base.output if base and kind == name else f"{name}.h5"
        defs[name] = StageDef(
            name=name,
            target=str(table.get("function", base.target if base else "")),
            output=str(table.get("output", default_out)),
            after=after,
            call=str(table.get("call", base.call if base else "stage")),
        )
        if defs[name].call not in ("stage", "ingest", "rundir"):
            raise InputError(src, f"[stages.{name}] call must be stage, ingest or rundir")
        scope = table.get("scope", "unit")
        if scope not in ("unit", JOINT):
            raise InputError(src, f"[stages.{name}] scope must be 'unit' or 'joint', got {scope!r}")
        tables[name] = table
    if not any(d.call == "ingest" for d in defs.values()):
        raise InputError(src, "needs an ingest stage ([stages.ingest], possibly empty)")

    # upstream stage of each stage: first candidate present in this pipeline
    upstream: dict[str, str | None] = {}
    for name, d in defs.items():
        if d.call == "ingest" or d.after == ("*",):
            upstream[name] = None
            continue
        present = [a for a in d.after if a in defs]
        if not present:
            raise InputError(src, f"stage {name!r} needs one of {list(d.after)} in the pipeline")
        upstream[name] = present[0]
    order = _toposort(defs, upstream, src)

    stages: dict[str, StageConf] = {}
    for name in order:
        d = defs[name]
        table = tables[name]
        defaults, var_kw = stage_parameters(d, source=src)
        params: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for k, v in defaults.items():
            params[k], origin[k] = v, "default"
        layers = (
            ("toml", {k: v for k, v in table.items() if k not in RESERVED_KEYS}),
            ("env", env_overrides(name, environ)),
            ("flag", sets.get(name, {})),
        )
        for where, layer in layers:
            for k, v in layer.items():
                k = k.replace("-", "_")
                if k not in defaults and not var_kw:
                    raise InputError(
                        src if where == "toml" else ("--set" if where == "flag" else f"NEURODYN_{name.upper()}_{k.upper()}"),
                        f"stage {name!r} has no parameter {k!r}; it takes {sorted(defaults)}",
                    )
                params[k], origin[k] = v, where
        up = upstream[name]
        scope = str(table.get("scope", "unit"))
        if up is not None and stages[up].scope == JOINT:
            scope = JOINT  # downstream of a joint stage is joint
        only = table.get("only")
        only = [only] if isinstance(only, str) else (None if only is None else [str(x) for x in only])
        stages[name] = StageConf(d, _jsonable(params), origin, scope, up, only)
    # the report (and other "*" stages) runs in every unit directory that has tasks
    for s in stages.values():
        if s.defn.after == ("*",):
            s.scope = "each"

    p_seed = int(head.get("seed", 0) if seed is None else seed)
    options = {k: head[k] for k in ("jobs", "executor", "on_error") if k in head}
    slurm = dict(data.get("slurm", {}))
    return Pipeline(str(src), str(head.get("name", src.stem)), p_seed, units, stages, slurm, options)


def _toposort(defs: Mapping[str, StageDef], upstream: Mapping[str, str | None], src: Path) -> list[str]:
    order: list[str] = []
    star = [n for n, d in defs.items() if d.after == ("*",)]
    pending = [n for n in defs if n not in star]
    while pending:
        ready = [n for n in pending if upstream[n] is None or upstream[n] in order]
        if not ready:
            raise InputError(src, f"stages {pending} form a cycle")
        order += ready
        pending = [n for n in pending if n not in ready]
    return order + star


# -- tasks ----------------------------------------------------------------------------------
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
    for opt, name in (("--from", start), ("--until", until)):
        if name is not None and name not in stage_names:
            raise InputError(opt, f"no stage {name!r} in this pipeline (it has {sorted(stage_names)})")
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


# -- resume ---------------------------------------------------------------------------------
def _read_attrs(path: Path) -> dict[str, Any] | None:
    import h5py

    try:
        with h5py.File(path, "r", locking=False) as f:
            a = f.attrs
            return {k: (v.decode() if isinstance(v, bytes) else v)
                    for k in ("complete", "parameters", "input_digest", "seed") if k in a
                    for v in [a[k]]}
    except OSError:
        return None


def check(task: Task) -> tuple[str, str]:
    """State of a task's output: ``("done" | "stale" | "missing", reason)``; reads attributes only."""
    out = Path(task.out)
    if not out.exists():
        return "missing", "no output"
    try:
        record = json.loads(task.record.read_text())
    except (OSError, ValueError):
        return "stale", "no run record (written outside this pipeline or interrupted)"
    if record.get("params") != _jsonable(task.params):
        changed = sorted(k for k in set(record.get("params", {})) | set(task.params)
                         if record.get("params", {}).get(k) != _jsonable(task.params).get(k))
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


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


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
    except Exception as exc:  # reported in failures.json; the CLI maps it to exit 3
        return {**base, "status": "failed", "kind": "error", "error": _one_line(exc),
                "seconds": time.perf_counter() - t0}
    if task.call == "rundir":
        digest = prov.input_digest(task.params, prov.hashes(task.inputs))
    else:
        digest = (_read_attrs(out) or {}).get("input_digest")
    _write_json(task.record, {"params": _jsonable(task.params), "seed": task.seed,
                              "digest": digest, "target": task.target, "finished": prov.now()})
    st = out.stat()
    return {**base, "status": "done", "seconds": time.perf_counter() - t0,
            "hash": [str(out.resolve()), st.st_size, st.st_mtime_ns, prov.file_hash(out)]}


# -- persistent hash cache ------------------------------------------------------------------
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
    _write_json(_cache_path(rundir), sorted(live))


# -- running --------------------------------------------------------------------------------
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
    """
    from neurodyn import parallel

    root = Path(rundir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if on_error not in ("abort", "continue"):
        raise InputError("--on-error", f"expected abort or continue, got {on_error!r}")
    units = None
    if index is not None:
        names = pipe.index_units()
        if not 0 <= index < len(names):
            raise InputError("--index", f"{index} is out of range: this pipeline has {len(names)} array tasks (0-{len(names) - 1})")
        units = [names[index]]
    t0 = time.perf_counter()
    load_hash_cache(root)
    all_tasks = build_tasks(pipe, root)
    _write_json(plan_path(root), {"pipeline": pipe.to_dict(), "tasks": [asdict(t) for t in all_tasks]})
    tasks = select_tasks(all_tasks, start=start, until=until, units=units, force=force)
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
    results.update(parallel.run_tasks(
        pending, jobs=jobs, executor=executor, on_error=on_error, slurm=pipe.slurm, rundir=root, log=log
    ))
    order = {t.key: i for i, t in enumerate(tasks)}
    results = dict(sorted(results.items(), key=lambda kv: order[kv[0]]))
    save_hash_cache(root, (r["hash"] for r in results.values() if "hash" in r))
    summary = RunSummary(root, results, time.perf_counter() - t0, executor)
    fpath = failures_path(root, units)
    if summary.failures:
        _write_json(fpath, [{k: r.get(k) for k in ("unit", "stage", "status", "error")}
                            for r in summary.failures])
    else:
        with contextlib.suppress(FileNotFoundError):
            fpath.unlink()
    return summary


# -- status ---------------------------------------------------------------------------------
def status(rundir: str | os.PathLike) -> tuple[list[str], list[str], dict[tuple[str, str], tuple[str, str]]]:
    """Per (unit, stage) state of a run directory, from its plan, attributes and run records.

    Returns
    -------
    units, stages : lists of names (rows, columns)
    table : {(unit, stage): (state, reason)} with state in done/stale/missing/failed
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


# -- configuration text ---------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return json.dumps(str(v))


def format_resolved(pipe: Pipeline) -> str:
    """The resolved configuration as TOML, each parameter annotated with where it came from."""
    lines = [f"# resolved from {pipe.path} (defaults < TOML < environment < flags)",
             "[pipeline]", f"name = {_toml_value(pipe.name)}", f"seed = {pipe.seed}",
             "units = ["]
    lines += [f"  {{name = {_toml_value(u.name)}, inputs = {_toml_value(u.inputs)}}}," for u in pipe.units]
    lines.append("]")
    for k, v in pipe.options.items():
        lines.append(f"{k} = {_toml_value(v)}")
    for name, s in pipe.stages.items():
        lines += ["", f"[stages.{name}]", f"# {s.defn.target} -> {s.defn.output}"
                  + (f", input from {s.input_stage}" if s.input_stage else "")]
        if s.scope == JOINT:
            lines.append('scope = "joint"')
        if s.only is not None:
            lines.append(f"only = {_toml_value(s.only)}")
        for k, v in s.params.items():
            if v is None:
                lines.append(f"# {k} = (unset)  # default")
            else:
                lines.append(f"{k} = {_toml_value(v)}  # {s.origin.get(k, 'default')}")
    if pipe.slurm:
        lines += ["", "[slurm]"] + [f"{k} = {_toml_value(v)}" for k, v in pipe.slurm.items()]
    return "\n".join(lines) + "\n"


TEMPLATE = '''\
# neurodyn pipeline. Run it with:  neurodyn run THIS.toml --out RUNDIR
# Parameters resolve as: built-in defaults < this file < NEURODYN_<STAGE>_<PARAM> environment
# variables < `--set stage.param=value` flags; `neurodyn config show THIS.toml` prints the result.

[pipeline]
name = "my-pipeline"
seed = 0                    # every task's seed derives from this, the unit and the stage
# Paths or globs, relative to this file. Each file is one recording unit (RUNDIR/<unit>/);
# a table {name = "worm1", inputs = ["a.h5", "b.h5"]} groups files into one unit.
inputs = ["../sample_data/synthetic_calcium.h5"]
# jobs = -1                 # default for --jobs (-1: every core)
# on_error = "continue"     # default for --on-error (abort | continue)

# Stages run in dependency order: ingest -> preprocess -> affinity -> factorize -> communities;
# states and bicluster per recording; report last. Leave a stage out to skip it; tables take
# that stage's options (the names of its CLI options, with underscores).
[stages.ingest]
# resample_hz = 4.0
# labeled_only = true

[stages.preprocess]

[stages.affinity]
# scope = "joint"           # one run over all inputs together (e.g. all worms in one tensor)
# only = ["worm*"]          # run on these units only (unit-name patterns); descendants follow

[stages.factorize]

[stages.communities]

[stages.states]

# [stages.bicluster]

[stages.report]

# Used by --executor slurm (dask-jobqueue SLURMCluster) and `neurodyn batch --emit-sbatch`.
[slurm]
# queue = "normal"
# account = "mylab"
cores = 1                   # per job (one worker process per job)
memory = "4GB"
walltime = "01:00:00"
# jobs = 4                  # SLURM jobs (workers) to start; default --jobs
# job_extra_directives = ["--qos=short"]
'''


# -- job arrays -----------------------------------------------------------------------------
def neurodyn_executable() -> str:
    """Absolute path of the ``neurodyn`` console script of this installation."""
    import shutil

    beside = Path(sys.executable).with_name("neurodyn")
    return str(beside) if beside.exists() else (shutil.which("neurodyn") or "neurodyn")


def sbatch_script(pipe: Pipeline, rundir: str | os.PathLike, *, extra_args: Sequence[str] = ()) -> str:
    """A SLURM job-array script with one array task per unit (and one for joint stages)."""
    import shlex

    root = Path(rundir).resolve()
    n = len(pipe.index_units())
    s = pipe.slurm
    cores = int(s.get("cores", 1))
    lines = ["#!/bin/bash", f"#SBATCH --job-name=neurodyn-{pipe.name}", f"#SBATCH --array=0-{n - 1}",
             f"#SBATCH --cpus-per-task={cores}"]
    if "memory" in s:
        lines.append(f"#SBATCH --mem={_slurm_memory(str(s['memory']))}")
    if "walltime" in s:
        lines.append(f"#SBATCH --time={s['walltime']}")
    if "queue" in s:
        lines.append(f"#SBATCH --partition={s['queue']}")
    if "account" in s:
        lines.append(f"#SBATCH --account={s['account']}")
    lines.append(f"#SBATCH --output={root / META / 'slurm'}/%x-%A_%a.out")
    lines += [f"#SBATCH {d}" for d in s.get("job_extra_directives", [])]
    cmd = [neurodyn_executable(), "run", str(Path(pipe.path).resolve()), "--out", str(root),
           "--index", "$SLURM_ARRAY_TASK_ID", "--jobs", "1", "--seed", str(pipe.seed), *extra_args]
    lines += [
        "set -euo pipefail",
        f"export NUMBA_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-{cores}}}",
        f"export OMP_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-{cores}}}",
        "export HDF5_USE_FILE_LOCKING=FALSE",
        " ".join(c if c.startswith("$") else shlex.quote(c) for c in cmd),
    ]
    return "\n".join(lines) + "\n"


def _slurm_memory(text: str) -> str:
    """``"4GB"`` / ``"4 GiB"`` / ``"500MB"`` -> sbatch's ``--mem`` in megabytes (``4096M``)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, flags=re.IGNORECASE)
    if not m:
        raise InputError("[slurm] memory", f"cannot read {text!r}; write e.g. '4GB'")
    scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[(m.group(2) or "M").upper()]
    return f"{max(1, math.ceil(float(m.group(1)) * scale))}M"
