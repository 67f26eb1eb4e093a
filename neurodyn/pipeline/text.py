"""Pipeline configuration as text: the resolved configuration and the starter template."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from neurodyn.pipeline.config import Pipeline
from neurodyn.pipeline.stages import JOINT


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
        specs = {p.name: p for p in s.defn.params.specs()} if s.defn.params else {}
        units = {k: p.unit for k, p in specs.items()}
        for k, v in s.params.items():
            unit = f" [{units[k]}]" if units.get(k) else ""
            gone = specs[k].deprecated if k in specs else ""
            if gone and v is None:  # a former option nobody set: not worth a line
                continue
            if gone:
                unit += f"; deprecated, use {gone}"
            if v is None:
                lines.append(f"# {k} = (unset)  # default{unit}")
            else:
                lines.append(f"{k} = {_toml_value(v)}  # {s.origin.get(k, 'default')}{unit}")
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
# that stage's options under the names of its command-line options (--max-iter is max_iter),
# checked against the same ranges; `neurodyn <stage> --help` lists them with units.
[stages.ingest]
# fs = 4.0                  # Hz
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
