"""``neurodyn run``, ``neurodyn status``, ``neurodyn batch`` and ``neurodyn config init|show``."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import STATE, Force, RunLog, app, done
from neurodyn.errors import InputError
from neurodyn.io.outputs import atomic_path, check_output

# a plain Typer group: the root NeurodynGroup maps errors to exit codes (nesting one breaks that)
config_app = typer.Typer(
    no_args_is_help=True, help="Write a pipeline template or print a pipeline's resolved configuration."
)
app.add_typer(config_app, name="config")

PipelineArg = Annotated[Path, typer.Argument(help="Pipeline file (TOML), e.g. pipelines/sample.toml.")]
RunDir = Annotated[Path, typer.Option("--out", "-o", help="Run directory: RUNDIR/<unit>/<stage output>.")]
Sets = Annotated[
    list[str],
    typer.Option("--set", help="Override a stage parameter: STAGE.PARAM=VALUE (TOML syntax; repeat)."),
]
Inputs = Annotated[
    list[str], typer.Option("--input", "-i", help="Replace the pipeline's inputs (paths or globs; repeat).")
]
AllowCode = Annotated[
    bool,
    typer.Option("--allow-code", help="Accept stages written as function = 'module:callable': they "
                 "import and run Python code named by the pipeline file, so pass this only for "
                 "files you trust (or set [pipeline] allow_code = true in the file)."),
]


def _echo(msg: str, *, console: bool = True, level: int = logging.INFO) -> None:
    if console and STATE["verbose"] >= 0:
        typer.echo(msg)
    for h in logging.getLogger("neurodyn").handlers:  # progress lines go to run.log too
        if isinstance(h, RunLog):
            h.handle(logging.makeLogRecord({"name": "neurodyn.pipeline", "msg": msg,
                                            "levelname": logging.getLevelName(level),
                                            "levelno": level}))


@contextlib.contextmanager
def _run_log(rundir: Path):
    """Log lines of this run (warnings and errors, progress, INFO with -v) to RUNDIR/run.log."""
    handler = RunLog(Path(rundir) / "run.log")
    logger = logging.getLogger("neurodyn")
    logger.addHandler(handler)
    try:
        _echo("command: " + " ".join(sys.argv), console=False)
        yield handler
    except Exception as exc:
        _echo(f"error: {exc}", console=False, level=logging.ERROR)
        raise
    finally:
        logger.removeHandler(handler)


def _load(pipeline: Path, sets: list[str], seed: int | None, inputs: list[str], allow_code: bool):
    from neurodyn.pipeline import load_pipeline, parse_sets

    return load_pipeline(pipeline, sets=parse_sets(sets), seed=seed, inputs=inputs or None,
                         allow_code=allow_code)


@app.command()
def run(
    pipeline: PipelineArg,
    out: RunDir = Path("run"),
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", help="Parallel tasks (-1: all cores; default [pipeline] jobs or -1)."),
    ] = None,
    executor: Annotated[
        str | None, typer.Option("--executor", help="local (this machine) or slurm (dask-jobqueue, [slurm] table).")
    ] = None,
    force: Force = False,
    start: Annotated[
        str | None, typer.Option("--from", help="Recompute from this stage on (its descendants too).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Stop after this stage.")] = None,
    on_error: Annotated[
        str | None,
        typer.Option("--on-error", help="abort (default) or continue: list failures in RUNDIR/failures.json, exit 3."),
    ] = None,
    index: Annotated[
        int | None, typer.Option("--index", help="Run only array task I (a unit; see `neurodyn batch`).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Pipeline seed (default [pipeline] seed).")] = None,
    set_: Sets = [],
    input_: Inputs = [],
    allow_code: AllowCode = False,
) -> None:
    """Run a pipeline: every (unit, stage) task, skipping those already up to date.

    A task is skipped when its output is complete and was made from the same parameters,
    seed and input contents. Rerun after a failure or a kill to resume. Two runs on one run
    directory do not work on the same unit at once: the second exits with code 2.

    A pipeline file may name Python code to run (stages with function = 'module:callable');
    such stages are refused unless --allow-code is given or the file sets
    [pipeline] allow_code = true. Treat a pipeline file from elsewhere like a script.

    Example: neurodyn run pipelines/sample.toml --out run/sample --jobs 2
    """
    with _run_log(out) as run_log:
        _run(pipeline, out, jobs, executor, force, start, until, on_error, index, seed, set_,
             input_, allow_code, run_log)


def _run(pipeline, out, jobs, executor, force, start, until, on_error, index, seed, set_, input_,
         allow_code, run_log: RunLog) -> None:
    from neurodyn.pipeline import run_pipeline

    pipe = _load(pipeline, set_, seed, input_, allow_code)
    jobs = int(pipe.options.get("jobs", -1)) if jobs is None else jobs
    executor = str(pipe.options.get("executor", "local")) if executor is None else executor
    on_error = str(pipe.options.get("on_error", "abort")) if on_error is None else on_error
    n_units = len(pipe.units)
    _echo(f"pipeline {pipe.name}: {n_units} unit{'s' * (n_units != 1)}, stages {', '.join(pipe.stages)}")
    summary = run_pipeline(
        pipe, out, jobs=jobs, executor=executor, force=force, start=start, until=until,
        index=index, on_error=on_error, log=_echo, on_start=run_log.begin,
    )
    _echo(
        f"{summary.count('done')} ran, {summary.count('skipped')} up to date, "
        f"{summary.count('failed')} failed, {summary.count('blocked')} blocked "
        f"in {summary.seconds:.1f} s ({summary.executor})"
    )
    if summary.failures:
        failed = [r for r in summary.failures if r["status"] == "failed"]
        if on_error == "abort" and len(failed) == 1 and failed[0].get("kind") == "input":
            raise InputError(None, f"{failed[0]['key']}: {failed[0]['error']}")
        where = summary.rundir / "failures.json" if index is None else "failures listed above"
        typer.echo(f"error: {len(failed)} task(s) failed; see {where}", err=True)
        raise SystemExit(3)  # NeurodynGroup maps typer.Exit to 1 and typer drops click.Exit
    outputs = sorted({str(Path(r["key"]).parent) for r in summary.results.values()})
    done(summary.rundir, f"outputs in {', '.join(o + '/' for o in outputs[:6])}"
         + (" ..." if len(outputs) > 6 else "") + "; `neurodyn status " + str(out) + "` lists them")


@app.command()
def status(
    rundir: Annotated[Path, typer.Argument(help="A run directory written by `neurodyn run`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show done / stale / missing / failed for every unit x stage of a run (attributes only),
    then each stage's wall time and peak memory per unit (median and largest; on a cluster,
    what to ask for per job).

    Example: neurodyn status run/sample --json
    """
    from neurodyn.pipeline import resources
    from neurodyn.pipeline import status as get_status

    t0 = time.perf_counter()
    units, stages, table = get_status(rundir)
    used = resources(rundir)
    if as_json:
        rows = []
        for (u, s), (st, why) in table.items():
            sec, mb = used.get((u, s), (None, None))
            rows.append({"unit": u, "stage": s, "state": st, "reason": why, "seconds": sec,
                         "peak_rss_mb": mb})
        typer.echo(json.dumps(rows, indent=1))
        return
    width = max([len(u) for u in units] + [4])
    col = max([len(s) for s in stages] + [7])
    typer.echo(("unit".ljust(width) + "  " + "  ".join(s.ljust(col) for s in stages)).rstrip())
    counts: dict[str, int] = {}
    for u in units:
        cells = []
        for s in stages:
            st = table.get((u, s), ("-", ""))[0]
            counts[st] = counts.get(st, 0) + (st != "-")
            cells.append(st.ljust(col))
        typer.echo(u.ljust(width) + "  " + "  ".join(cells).rstrip())
    reasons = [(k, v) for k, v in table.items() if v[0] in ("stale", "failed")]
    for (u, s), (st, why) in reasons[:20]:
        typer.echo(f"  {st} {u}/{s}: {why}")
    if len(reasons) > 20:
        typer.echo(f"  ... {len(reasons) - 20} more")
    for s in stages:
        got = [used[(u, s)] for u in units if (u, s) in used]
        if got:
            sec, mb = zip(*got, strict=True)
            typer.echo(f"  {s}: {len(got)} unit(s), wall median {statistics.median(sec):.1f} s, "
                       f"max {max(sec):.1f} s; peak memory median {statistics.median(mb):.0f} MB, "
                       f"max {max(mb):.0f} MB")
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()) if n)
    typer.echo(f"{summary} ({time.perf_counter() - t0:.2f} s)")


@app.command()
def batch(
    pipeline: PipelineArg,
    out: RunDir = Path("run"),
    emit_sbatch: Annotated[
        Path | None,
        typer.Option("--emit-sbatch", help="Write a SLURM job-array script here (one array task per unit)."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Pipeline seed (default [pipeline] seed).")] = None,
    set_: Sets = [],
    allow_code: AllowCode = False,
) -> None:
    """Prepare a run for clusters without a long-lived scheduler: a SLURM job-array script.

    Each array task calls `neurodyn run PIPELINE --out RUNDIR --index $SLURM_ARRAY_TASK_ID`.
    Submit with `sbatch SCRIPT`; check with `neurodyn status RUNDIR`.

    Example: neurodyn batch pipelines/sample.toml --out run/sample --emit-sbatch run.sbatch
    """
    from neurodyn.pipeline import META, sbatch_script

    if emit_sbatch is None:
        raise InputError("--emit-sbatch", "give the script path to write (e.g. --emit-sbatch run.sbatch)")
    pipe = _load(pipeline, set_, seed, [], allow_code)
    inputs = [pipeline, *(f for u in pipe.units for f in u.inputs)]
    check_output(out, inputs, directory=True)
    check_output(emit_sbatch, inputs, option="--emit-sbatch")
    extra = [a for kv in set_ for a in ("--set", kv)] + ["--allow-code"] * allow_code
    text = sbatch_script(pipe, out, extra_args=extra)
    (out.resolve() / META / "slurm").mkdir(parents=True, exist_ok=True)
    with atomic_path(emit_sbatch, option="--emit-sbatch") as tmp:
        tmp.write_text(text)
        os.chmod(tmp, 0o755)
    done(emit_sbatch, f"{len(pipe.index_units())} array tasks; submit with: sbatch {emit_sbatch}")


@config_app.command("init")
def config_init(
    path: Annotated[Path, typer.Argument(help="Where to write the template.")] = Path("pipeline.toml"),
    force: Force = False,
) -> None:
    """Write a commented pipeline template to edit.

    Example: neurodyn config init my.toml && neurodyn config show my.toml
    """
    from neurodyn.pipeline import TEMPLATE

    if path.exists() and not force:
        raise InputError(path, "exists; pass --force to overwrite")
    with atomic_path(path, option="PATH") as tmp:
        tmp.write_text(TEMPLATE)
    done(path, "pipeline template; edit it, then `neurodyn config show` and `neurodyn run`")


@config_app.command("show")
def config_show(
    pipeline: PipelineArg,
    seed: Annotated[int | None, typer.Option("--seed", help="Pipeline seed (default [pipeline] seed).")] = None,
    set_: Sets = [],
    input_: Inputs = [],
    allow_code: AllowCode = False,
) -> None:
    """Print the resolved configuration (defaults < TOML < environment < flags), with origins.

    Every value is checked as the stage's command-line option would be (ranges, choices).

    Example: neurodyn config show pipelines/sample.toml --set affinity.window=10
    """
    from neurodyn.pipeline import format_resolved

    typer.echo(format_resolved(_load(pipeline, set_, seed, input_, allow_code)), nl=False)
