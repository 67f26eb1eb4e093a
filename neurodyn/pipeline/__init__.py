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

Modules: :mod:`.stages` (the stage registry), :mod:`.config` (parse and resolve a pipeline
file), :mod:`.tasks` (the task graph and its selection), :mod:`.resume` (run one task or skip
it), :mod:`.runner` (run a pipeline, status of a run directory), :mod:`.text` (resolved
configuration and template as TOML), :mod:`.slurm` (job-array scripts).
"""

from neurodyn.pipeline.config import (
    PIPELINE_KEYS,
    RESERVED_KEYS,
    Pipeline,
    StageConf,
    Unit,
    env_overrides,
    expand_inputs,
    jsonable,
    load_pipeline,
    parse_sets,
    parse_value,
    read_toml,
)
from neurodyn.pipeline.resume import check, execute, load_hash_cache, save_hash_cache
from neurodyn.pipeline.runner import (
    RunSummary,
    failures_path,
    plan_path,
    resources,
    run_pipeline,
    status,
)
from neurodyn.pipeline.slurm import neurodyn_executable, sbatch_script
from neurodyn.pipeline.stages import (
    BUILTIN_STAGES,
    JOINT,
    META,
    StageDef,
    function_parameters,
    load_callable,
)
from neurodyn.pipeline.tasks import Task, build_tasks, derive_seed, select_tasks
from neurodyn.pipeline.text import TEMPLATE, format_resolved

__all__ = [
    "BUILTIN_STAGES", "JOINT", "META", "PIPELINE_KEYS", "RESERVED_KEYS", "TEMPLATE", "Pipeline",
    "RunSummary", "StageConf", "StageDef", "Task", "Unit", "build_tasks",
    "check", "derive_seed", "env_overrides", "execute", "expand_inputs", "failures_path",
    "format_resolved", "jsonable", "load_callable", "load_hash_cache", "load_pipeline",
    "neurodyn_executable", "parse_sets", "parse_value", "plan_path", "read_toml", "run_pipeline",
    "sbatch_script", "save_hash_cache", "select_tasks", "function_parameters",
    "resources", "status",
]
