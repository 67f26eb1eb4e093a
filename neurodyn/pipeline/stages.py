"""The stage registry: built-in stages, how each is called, and its parameters."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurodyn.affinity.params import AffinityParams
from neurodyn.bicluster.params import BiclusterParams
from neurodyn.community.params import CommunitiesParams
from neurodyn.errors import InputError
from neurodyn.hmmglm.params import StatesParams
from neurodyn.params import StageParams
from neurodyn.tensor.params import FactorizeParams

JOINT = "joint"  # the unit name of stages run once over all inputs
META = ".neurodyn"  # bookkeeping directory inside RUNDIR and inside each unit directory


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
    params : type of StageParams, optional
        The stage's parameter class (built-in stages); a custom ``function =`` stage has none
        and takes the keyword parameters of its function.
    """

    name: str
    target: str
    output: str
    after: tuple[str, ...] = ()
    call: str = "stage"
    params: type[StageParams] | None = None


BUILTIN_STAGES: dict[str, StageDef] = {
    s.name: s
    for s in (
        StageDef("ingest", "neurodyn.ingest:ingest", "recordings.h5", (), "ingest"),
        StageDef("preprocess", "neurodyn.preprocess:run", "preprocessed.h5", ("ingest",)),
        StageDef("affinity", "neurodyn.affinity.stage:run", "affinity.h5", ("preprocess", "ingest"),
                 params=AffinityParams),
        StageDef("factorize", "neurodyn.tensor.stage:run", "ntf.h5", ("affinity",),
                 params=FactorizeParams),
        StageDef("communities", "neurodyn.community.stage:run", "communities.h5", ("factorize",),
                 params=CommunitiesParams),
        StageDef("states", "neurodyn.hmmglm.stage:run", "states.h5", ("preprocess", "ingest"),
                 params=StatesParams),
        StageDef("bicluster", "neurodyn.bicluster.stage:run", "bicluster.h5", ("preprocess", "ingest"),
                 params=BiclusterParams),
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
