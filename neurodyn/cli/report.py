"""Commands ``figures``, ``report`` and ``compare-connectome`` (registered on import)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.analysis.params import CompareParams
from neurodyn.cli._app import Seed, app, done
from neurodyn.cli.options import stage_command
from neurodyn.io.outputs import check_output

RunDir = Annotated[Path, typer.Argument(help="Run directory holding the stage outputs (*.h5).")]


@app.command()
def figures(
    rundir: RunDir,
    format: Annotated[
        str, typer.Option("--format", "-f", help="Image format(s): png, svg or pdf; "
                          "comma-separate for several, e.g. png,svg.")
    ] = "png",
    outdir: Annotated[
        Path | None, typer.Option("--outdir", help="Where to write (default RUNDIR/figures).")
    ] = None,
) -> None:
    """Redraw every figure of a run from its HDF5 outputs, without recomputing anything.

    Example: neurodyn figures run/sample --format png,svg
    """
    from neurodyn.errors import InputError
    from neurodyn.plots.style import FORMATS
    from neurodyn.report import draw_sections

    fmts = [x.strip().lower() for x in format.split(",") if x.strip()]
    bad = [x for x in fmts if x not in FORMATS] or ([] if fmts else [format])
    if bad:
        raise InputError("--format", f"unknown figure format {bad[0]!r}; one of {FORMATS}")
    if outdir is not None:
        check_output(outdir, option="--outdir", directory=True)
    for fmt in fmts:
        sections = draw_sections(rundir, fmt, outdir)
        n = 0
        for paths, notes in sections.values():
            n += len(paths)
            for note in notes if fmt == fmts[0] else ():
                typer.echo(f"note: {note}", err=True)
        done(Path(outdir) if outdir else rundir, f"{n} {fmt} figure(s)"
             + ("" if outdir else " under figures/ of each run directory"))


@app.command()
def report(
    rundir: RunDir,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file (default RUNDIR/report.html).")
    ] = None,
) -> None:
    """Write one self-contained report.html (figures embedded) with a section per stage.

    Example: neurodyn report run/sample && xdg-open run/sample/report.html
    """
    from neurodyn.report import build_report

    done(build_report(rundir, out), "self-contained HTML; open it in any browser")


@app.command("compare-connectome")
@stage_command(CompareParams)
def compare_connectome(
    rundir: RunDir,
    connectome: Annotated[
        str,
        typer.Option("--connectome", "-c", help="Connectome name in RUNDIR/recordings.h5 "
                     "(/connectome/NAME) or a connectome file readable by neurodyn."),
    ],
    seed: Seed = 0,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output file (default RUNDIR/compare.h5).")
    ] = None,
    *,
    params: CompareParams,
) -> None:
    """Score inferred interactions against an anatomical connectome (ROC/PR AUC, permutation p).

    Writes RUNDIR/compare.h5 (one per unit directory for a `neurodyn run` directory); a neuron
    pair counts as connected when it has a synapse of the chosen kind in either direction.

    Example: neurodyn compare-connectome run/worm --connectome white_1986_whole --synapses chemical
    """
    from neurodyn.analysis.compare import compare_connectome as run_compare
    from neurodyn.analysis.compare import read_scores
    from neurodyn.errors import InputError
    from neurodyn.report import unit_dirs

    units = unit_dirs(rundir)
    if len(units) > 1 and out is not None:
        raise InputError("--out", f"{rundir} holds {len(units)} units; --out needs a single one")
    for unit in units:
        path = run_compare(unit, connectome, params, seed=seed, out=out)
        for s in read_scores(path):
            typer.echo(
                f"{s['source']}: ROC AUC {s['roc_auc']:.3f} (p={s['p_roc']:.3g}), PR AUC "
                f"{s['pr_auc']:.3f} (chance {s['chance_pr_auc']:.3f}, p={s['p_pr']:.3g}); "
                f"{s['n_neurons']} shared neurons, {s['n_only_inferred']} only inferred"
            )
        done(path, "connectome comparison")
