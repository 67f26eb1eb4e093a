"""Pipeline files: parse, validate and resolve every stage parameter."""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from neurodyn import provenance as prov
from neurodyn.errors import InputError
from neurodyn.params import ParamError
from neurodyn.pipeline.stages import (
    BUILTIN_STAGES,
    JOINT,
    META,
    StageDef,
    function_parameters,
    load_callable,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

RESERVED_KEYS = ("function", "after", "output", "scope", "enabled", "call", "only", "uses")
PIPELINE_KEYS = ("name", "seed", "inputs", "units", "jobs", "executor", "on_error", "description",
                 "allow_code")


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
            raise ParamError("set", f"expected STAGE.PARAM=VALUE, got {item!r}")
        out.setdefault(stage, {})[param.replace("-", "_")] = parse_value(value.strip())
    return out


def env_overrides(stage: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parameters of ``stage`` set as ``NEURODYN_<STAGE>_<PARAM>`` environment variables."""
    environ = os.environ if environ is None else environ
    prefix = f"NEURODYN_{stage.upper()}_"
    return {k[len(prefix):].lower(): parse_value(v) for k, v in environ.items() if k.startswith(prefix)}


def jsonable(value: Any) -> Any:
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
    except UnicodeDecodeError:
        raise InputError(p, "is not UTF-8 text (a pipeline file is TOML, which must be UTF-8)") from None
    except IsADirectoryError:
        raise InputError(p, "is a directory, not a pipeline file") from None


def check_output_name(output: str, stage: str, source: str | os.PathLike) -> str:
    """A stage's ``output =``: a relative path that stays inside its unit directory."""
    parts = Path(output).parts
    if not output or Path(output).is_absolute() or ".." in parts or "\\" in output:
        raise InputError(source, f"[stages.{stage}] output = {output!r} must be a file name inside "
                                 "the unit directory (no absolute path, no '..')")
    if parts[0] == META or any(ord(c) < 32 or ord(c) == 127 for c in output):
        raise InputError(source, f"[stages.{stage}] output = {output!r} is not a usable file name")
    return output


def _unit_name(path: Path) -> str:
    name = path.name
    for suffix in (".nwb", ".h5", ".hdf5", ".edf", ".mat", ".json", ".csv", ".set", ".bdf"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "unit"


def _disambiguate(units: list[Unit]) -> None:
    """Equal names of one-file units get the nearest folder that tells them apart as a prefix
    (``sub-01/eeg/rest.set``, ``sub-02/eeg/rest.set`` -> ``sub-01_rest``, ``sub-02_rest``: the
    subject, not the shared ``eeg``); what is still equal is numbered by the caller."""
    groups: dict[str, list[Unit]] = {}
    for u in units:
        if len(u.inputs) == 1:
            groups.setdefault(u.name, []).append(u)
    for name, same in groups.items():
        if len(same) < 2:
            continue
        parents = [Path(u.inputs[0]).resolve().parents for u in same]
        for depth in range(min(len(p) for p in parents)):
            folders = [_unit_name(p[depth]) for p in parents]
            if len(set(folders)) > 1:
                for u, folder in zip(same, folders, strict=True):
                    u.name = f"{folder}_{name}"
                break


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
    _disambiguate(units)
    seen: dict[str, int] = {}
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
    allow_code: bool = False,
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
    allow_code : bool
        Accept ``function = "module:callable"`` stages, which import and run Python code
        named by the file (also allowed by ``[pipeline] allow_code = true``).

    Raises
    ------
    InputError
        Unknown keys, stages or parameters, missing inputs, a stage whose module is absent,
        a code stage without ``allow_code``, an ``output`` outside the unit directory.
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
    if not isinstance(head.get("allow_code", False), bool):
        raise InputError(src, "[pipeline] allow_code must be true or false")
    allow_code = allow_code or head.get("allow_code", False)
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
            raise ParamError("set", f"stage {name!r} is not in {src.name} (it has {list(stage_tables)})")

    defs: dict[str, StageDef] = {}
    tables: dict[str, dict[str, Any]] = {}
    for name, table in stage_tables.items():
        if not isinstance(table, Mapping):
            raise InputError(src, f"[stages.{name}] must be a table")
        table = dict(table)
        if table.get("enabled", True) is False:
            continue
        kind = str(table.get("uses", name))  # a second instance of a built-in: uses = "preprocess"
        if "function" in table and not allow_code:
            raise InputError(
                src, f"[stages.{name}] function = {str(table['function'])!r} runs Python code "
                "named by this file; pass --allow-code (or set [pipeline] allow_code = true) "
                "only if you trust it"
            )
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
            output=check_output_name(str(table.get("output", default_out)), name, src),
            after=after,
            call=str(table.get("call", base.call if base else "stage")),
            params=base.params if base and "function" not in table else None,
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
        cls = d.params
        defaults, var_kw = (cls.defaults(), False) if cls else function_parameters(
            load_callable(d.target, source=src, stage=name), d.call)
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
                if cls is not None and k in cls.aliases():
                    log.warning("%s: %s is a former name of %s; it will be removed in the next release",
                                _where(src, name, k, where)[0], k, cls.aliases()[k])
                    k = cls.aliases()[k]
                if cls is not None and k in defaults and cls.spec(k).deprecated:
                    place, prefix = _where(src, name, k, where)
                    log.warning("%s: %s", place, cls.spec(k).deprecation(prefix.rstrip(": ") or k))
                if k not in defaults and not var_kw:
                    raise InputError(
                        _where(src, name, k, where)[0],
                        f"stage {name!r} has no parameter {k!r}; it takes {sorted(defaults)}",
                    )
                params[k], origin[k] = v, where
        if cls is not None:  # the same checks as the command-line options
            try:
                params = cls(**params).to_dict()
            except ParamError as exc:
                place, prefix = _where(src, name, exc.name, origin.get(exc.name, "toml"))
                raise InputError(place, prefix + exc.problem) from None
        up = upstream[name]
        scope = str(table.get("scope", "unit"))
        if up is not None and stages[up].scope == JOINT:
            scope = JOINT  # downstream of a joint stage is joint
        only = table.get("only")
        only = [only] if isinstance(only, str) else (None if only is None else [str(x) for x in only])
        stages[name] = StageConf(d, jsonable(params), origin, scope, up, only)
    # the report (and other "*" stages) runs in every unit directory that has tasks
    for s in stages.values():
        if s.defn.after == ("*",):
            s.scope = "each"

    p_seed = int(head.get("seed", 0) if seed is None else seed)
    options = {k: head[k] for k in ("jobs", "executor", "on_error") if k in head}
    slurm = dict(data.get("slurm", {}))
    return Pipeline(str(src), str(head.get("name", src.stem)), p_seed, units, stages, slurm, options)


def _where(src: Path, stage: str, key: str, origin: str) -> tuple[str | Path, str]:
    """Where a parameter value came from, for an error line: (source, prefix of the problem)."""
    if origin == "flag":
        return "--set", f"{stage}.{key}: " if key else f"{stage}: "
    if origin == "env":
        return f"NEURODYN_{stage.upper()}_{key.upper()}", ""
    return src, f"[stages.{stage}] {key}: " if key else f"[stages.{stage}]: "


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
