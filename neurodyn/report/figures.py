"""Figures of a run directory: which stage files it holds and the figure module of each.

:data:`FIGURES` maps a stage (the ``stage`` attribute of its output file) to the ``draw``
function of its module under :mod:`neurodyn.plots`; stages without one (recordings files)
get no figures. A failing figure becomes a note in the report instead of an error.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from neurodyn.errors import InputError
from neurodyn.io.store import is_complete, provenance
from neurodyn.params import ParamError
from neurodyn.plots import (
    CAPTION_SUFFIX,
    affinity,
    bicluster,
    communities,
    compare,
    ntf,
    preprocess,
    read_caption,
    states,
    timeline,
)
from neurodyn.plots.style import FORMATS

log = logging.getLogger("neurodyn.report")

Draw = Callable[..., list[Path]]
#: Stage name (root attr ``stage``) -> ``draw(path, outdir, fmt)`` of its figure module.
FIGURES: dict[str, Draw] = {
    "preprocess": preprocess.draw,
    "affinity": affinity.draw,
    "factorize": ntf.draw,
    "ntf": ntf.draw,
    "communities": communities.draw,
    "states": states.draw,
    "hmmglm": states.draw,
    "bicluster": bicluster.draw,
    "compare": compare.draw,
}
#: Report section order (stages not listed follow in file-name order).
ORDER = ("ingest", "simulate", "preprocess", "affinity", "factorize", "ntf", "communities",
         "states", "hmmglm", "bicluster", "timeline", "compare")


@dataclasses.dataclass
class StageFile:
    """A completed stage output in a run directory."""

    path: Path
    stage: str


def stage_files(rundir: str | Path) -> tuple[list[StageFile], list[str]]:
    """Completed ``*.h5`` stage outputs of ``rundir`` in report order, and notes on skipped ones."""
    rundir = Path(rundir)
    if not rundir.is_dir():
        raise InputError(rundir, "not a run directory")
    found, notes = [], []
    for p in sorted(rundir.glob("*.h5")):
        if not is_complete(p):
            notes.append(f"{p.name}: incomplete or unreadable, skipped (rerun its stage)")
            continue
        stage = str(provenance(p).get("stage", p.stem))
        if stage.startswith("simulate-"):  # simulate-hmmglm, -calcium...: a recordings file
            stage = "simulate"
        found.append(StageFile(p, stage))
    rank = {s: i for i, s in enumerate(ORDER)}
    found.sort(key=lambda s: (rank.get(s.stage, len(ORDER)), s.path.name))
    return found, notes


def unit_dirs(rundir: str | Path) -> list[Path]:
    """Directories to report on: ``rundir`` itself when it holds ``*.h5`` files, else its
    subdirectories that do (the per-unit directories ``neurodyn run`` writes), sorted."""
    rundir = Path(rundir)
    if not rundir.is_dir():
        raise InputError(rundir, "not a run directory")
    if any(rundir.glob("*.h5")):
        return [rundir]
    subs = [d for d in sorted(rundir.iterdir())
            if d.is_dir() and not d.name.startswith(".") and any(d.glob("*.h5"))]
    if not subs:
        raise InputError(rundir, "holds no completed stage output (*.h5) to report on")
    return subs


def plot_function(stage: str) -> tuple[Draw | None, str]:
    """``draw`` of the figure module for ``stage`` (or None and why)."""
    fn = FIGURES.get(stage)
    if fn is None:
        return None, f"no figure module for stage {stage!r} (figure modules exist for " \
                      f"{', '.join(sorted(FIGURES))})"
    return fn, ""


def _draw(fn: Callable[..., list[Path]], path: Path, outdir: Path, fmt: str, what: str
          ) -> tuple[list[Path], list[str]]:
    """Run one figure module into ``outdir``. Stale figures of an earlier run are removed
    first: only ``*.fmt`` files with a neurodyn caption file beside them, so that a user's own
    files in ``outdir`` are never touched."""
    if outdir.is_dir():
        for old in outdir.glob(f"*.{fmt}"):
            cap = read_caption(old)
            if {"caption", "data", "parameters"} <= set(cap):
                old.unlink()
                Path(str(old) + CAPTION_SUFFIX).unlink(missing_ok=True)
    try:
        out = fn(path, outdir, fmt)
    except (InputError, ParamError):  # the user's to fix: not a figure failure
        raise
    except Exception as exc:
        return [], [f"figures of {what} failed: {type(exc).__name__}: {exc}"]
    finally:
        import matplotlib.pyplot as plt  # heavy: only when figures are drawn

        plt.close("all")
    paths = [Path(p) for p in (out or [])]
    return [p for p in paths if p.exists() and p.stat().st_size > 0], []


def draw_sections(rundir: str | Path, fmt: str = "png", figdir: str | Path | None = None
                  ) -> dict[str, tuple[list[Path], list[str]]]:
    """Draw every figure; returns ``{section key: (figure paths, notes)}``.

    Section keys are stage file names (``ntf.h5``) plus ``timeline``, prefixed by
    ``<unit>/`` for a pipeline run directory (see :func:`unit_dirs`). Figures go to
    ``<dir>/figures/<stage file stem>/`` unless ``figdir`` is given.
    """
    if fmt not in FORMATS:
        raise ParamError("format", f"unknown figure format {fmt!r}; one of {FORMATS}")
    rundir = Path(rundir)
    units = unit_dirs(rundir)
    if units != [rundir]:  # a pipeline run: one unit per subdirectory
        out_all: dict[str, tuple[list[Path], list[str]]] = {}
        for u in units:
            sub = None if figdir is None else Path(figdir) / u.name
            for k, v in draw_sections(u, fmt, sub).items():
                out_all[f"{u.name}/{k}"] = v
        return out_all
    figdir = Path(figdir) if figdir is not None else rundir / "figures"
    files, _ = stage_files(rundir)
    out: dict[str, tuple[list[Path], list[str]]] = {}
    for sf in files:
        fn, why = plot_function(sf.stage)
        if fn is None:  # recordings have no figure module of their own: nothing to say
            out[sf.path.name] = ([], [] if sf.stage in ("ingest", "simulate") else [why])
            continue
        out[sf.path.name] = _draw(fn, sf.path, figdir / sf.path.stem, fmt, sf.path.name)
    out["timeline"] = _draw(timeline.draw, rundir, figdir / "timeline", fmt, "the timeline")
    return out


def draw_all(rundir: str | Path, fmt: str = "png", figdir: str | Path | None = None
             ) -> list[Path]:
    """Redraw every figure of ``rundir`` into ``rundir/figures/<stage file>/`` (or ``figdir``).

    Returns the figure paths. Stages without a figure module, or whose figures fail, are
    logged and skipped.
    """
    paths: list[Path] = []
    for figs, notes in draw_sections(rundir, fmt, figdir).values():
        paths += figs
        for n in notes:
            log.warning(n)
    return paths
