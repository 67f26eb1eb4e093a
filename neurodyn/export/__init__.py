"""Results that leave neurodyn: a run directory to NWB, netCDF, MNE FIF, pynapple or ArviZ.

Each format is one module with a ``write(bundle, outdir) -> list[Path]`` function;
:func:`export` gathers what a run directory holds (:func:`gather`) and calls it. Every file is
written under a temporary name and renamed, and an output that is one of the run's files is
refused before anything is written.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from neurodyn.export.bundle import Bundle, gather
from neurodyn.io.outputs import check_output
from neurodyn.params import ParamError

__all__ = ["FORMATS", "Bundle", "export", "gather"]

#: format -> (module, what it writes)
FORMATS = {
    "nwb": ("neurodyn.export.nwb", "one NWB file per recording (pynwb)"),
    "netcdf": ("neurodyn.export.netcdf", "one netCDF-4 file, a group per stage and recording"),
    "mne": ("neurodyn.export.fif", "EEG recordings as MNE FIF with annotations"),
    "pynapple": ("neurodyn.export.napple", "pynapple NPZ files: TsdFrame + IntervalSets"),
    "arviz": ("neurodyn.export.draws", "bi-clustering draws as ArviZ InferenceData netCDF"),
}


def export(rundir: str | os.PathLike, to: str, out: str | os.PathLike | None = None, *,
           recordings: str | os.PathLike | None = None) -> list[Path]:
    """Export a run directory; returns the files written.

    Parameters
    ----------
    rundir : path-like
        A run directory (or one unit of a pipeline run) holding a recordings file and stage
        outputs (``states.h5``, ``bicluster.h5``, ``communities.h5``...).
    to : {"nwb", "netcdf", "mne", "pynapple", "arviz"}
    out : path-like, optional
        Output folder (default ``RUNDIR/export-<to>``); created when missing.
    recordings : path-like, optional
        The recordings file to export (default: the one the states / bi-clustering stage
        read, else ``recordings.h5``).
    """
    if to not in FORMATS:
        raise ParamError("to", f"unknown format {to!r}; one of {', '.join(FORMATS)}")
    bundle = gather(rundir, recordings)
    outdir = Path(out) if out is not None else Path(rundir) / f"export-{to}"
    check_output(outdir, bundle.inputs, directory=True)
    module = importlib.import_module(FORMATS[to][0])
    return module.write(bundle, outdir)
