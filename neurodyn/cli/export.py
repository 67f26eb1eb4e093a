"""Command ``export``: a run's recordings and results in standard formats (registered on import)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import app, done


class Format(str, enum.Enum):
    nwb = "nwb"
    netcdf = "netcdf"
    mne = "mne"
    pynapple = "pynapple"
    arviz = "arviz"


@app.command()
def export(
    rundir: Annotated[Path, typer.Argument(
        help="Run directory (or one unit of a pipeline run) holding recordings and results.")],
    to: Annotated[Format, typer.Option(
        "--to", "-t", help="nwb: one NWB file per recording with states, clusters and "
        "communities (pynwb). netcdf: the whole run in one netCDF-4 file, a group per stage "
        "and recording (xarray). mne: EEG recordings as FIF with events and states as "
        "annotations. pynapple: NPZ files (TsdFrame of the traces, IntervalSets of states "
        "and events). arviz: bi-clustering draws as InferenceData netCDF.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder (default RUNDIR/export-FORMAT); never an input.")]
    = None,
    recordings: Annotated[Path | None, typer.Option(
        "--recordings", help="Recordings file to export (default: the one the states or "
        "bi-clustering stage read, else RUNDIR/recordings.h5).")] = None,
) -> None:
    """Export a run's recordings and results to NWB, netCDF, MNE, pynapple or ArviZ.

    Every file is written under a temporary name and renamed when complete; states become
    intervals (NWB TimeIntervals, MNE annotations, pynapple IntervalSets) on the recording's
    own time axis in seconds.

    Example: neurodyn export run/sample/all_unit --to nwb --out nwb/
    """
    from neurodyn.export import export as run_export

    files = run_export(rundir, to.value, out, recordings=recordings)
    where = files[0].parent if files else (out or rundir)
    done(where, f"{len(files)} {to.value} file(s): " + ", ".join(p.name for p in files[:4])
         + (" ..." if len(files) > 4 else ""))
