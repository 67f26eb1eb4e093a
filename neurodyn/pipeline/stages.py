"""The stage registry: built-in stages, how each is called, and its parameters."""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neurodyn.affinity.params import AffinityParams
from neurodyn.bicluster.params import BiclusterParams
from neurodyn.community.params import CommunitiesParams
from neurodyn.errors import InputError
from neurodyn.hmmglm.params import StatesParams
from neurodyn.io.params import IngestParams
from neurodyn.params import StageParams
from neurodyn.signal.params import PreprocessParams
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


@dataclass(frozen=True)
class ReportParams(StageParams):
    """The ``report`` stage has no parameters (it reads every stage file of its unit)."""

    stage = "report"


BUILTIN_STAGES: dict[str, StageDef] = {
    s.name: s
    for s in (
        StageDef("ingest", "neurodyn.ingest:ingest", "recordings.h5", (), "ingest", IngestParams),
        StageDef("preprocess", "neurodyn.preprocess:run", "preprocessed.h5", ("ingest",),
                 params=PreprocessParams),
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
        StageDef("report", "neurodyn.report:build_report", "report.html", ("*",), "rundir",
                 ReportParams),
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


def function_parameters(fn: Callable, call: str) -> tuple[dict[str, Any], bool]:
    """Keyword parameters of a custom stage function with their defaults, and whether it takes
    ``**kw`` (then any parameter is passed through unchecked).

    Built-in stages declare theirs in a :class:`~neurodyn.params.StageParams` class instead.
    """
    skip = {"seed", "input_path", "out", "inputs", "rundir", "run_dir"}
    positional = {"stage": 2, "ingest": 2, "rundir": 1}[call]
    defaults: dict[str, Any] = {}
    var_kw = False
    for i, p in enumerate(inspect.signature(fn).parameters.values()):
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is p.VAR_POSITIONAL or i < positional or p.name in skip:
            continue
        elif p.default is not p.empty:
            defaults[p.name] = p.default
    return defaults, var_kw
