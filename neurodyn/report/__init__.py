"""Figures and the self-contained HTML report of a run directory.

``draw_all(rundir, fmt)`` redraws every figure from the stage files (no recomputation);
``build_report(rundir)`` writes ``rundir/report.html`` with one section per stage present.
Figure modules are discovered dynamically: a stage file whose ``stage`` attribute is ``X``
is drawn by ``neurodyn.plots.<module>.draw`` (see :data:`PLOT_MODULES`); a missing module
or a failing figure becomes a note in the report instead of an error.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurodyn.errors import InputError
from neurodyn.io.outputs import atomic_path, check_output
from neurodyn.io.store import is_complete, open_h5, provenance
from neurodyn.report.html import Section, Table, render

log = logging.getLogger("neurodyn.report")

#: Stage name (root attr ``stage``) -> candidate figure modules under ``neurodyn.plots``.
PLOT_MODULES: dict[str, tuple[str, ...]] = {
    "ingest": ("recordings", "ingest"),
    "simulate": ("recordings",),
    "preprocess": ("preprocess",),
    "affinity": ("affinity",),
    "factorize": ("ntf", "factorize"),
    "ntf": ("ntf",),
    "communities": ("communities",),
    "states": ("states", "hmmglm"),
    "hmmglm": ("states", "hmmglm"),
    "bicluster": ("bicluster",),
    "compare": ("compare",),
}
#: Report section order (stages not listed follow in file-name order).
ORDER = ("ingest", "simulate", "preprocess", "affinity", "factorize", "ntf", "communities",
         "states", "hmmglm", "bicluster", "timeline", "compare")
TITLES = {
    "ingest": "Recordings", "simulate": "Recordings (simulated)", "preprocess": "Preprocessing",
    "affinity": "Affinity (dynamic functional connectivity)",
    "factorize": "Tensor factorization (NTF)", "ntf": "Tensor factorization (NTF)",
    "communities": "Communities", "states": "HMM-GLM states", "hmmglm": "HMM-GLM states",
    "bicluster": "Bayesian bi-clustering", "timeline": "Cross-method timeline",
    "compare": "Structure versus function (connectome comparison)",
}
PROVENANCE_KEYS = {"stage", "neurodyn_version", "versions", "command", "parameters", "inputs",
                   "input_digest", "seed", "started", "finished", "complete"}
REPORT_NAME = "report.html"


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


def plot_function(stage: str, stem: str = "") -> tuple[Callable[..., list[Path]] | None, str]:
    """``draw`` of the first importable figure module for ``stage`` (or None and why)."""
    names = PLOT_MODULES.get(stage, ()) + (stage, stem)
    for name in dict.fromkeys(n for n in names if n):
        try:
            mod = importlib.import_module(f"neurodyn.plots.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("neurodyn.plots"):
                continue
            return None, f"figure module neurodyn.plots.{name} failed to import: {exc}"
        except Exception as exc:  # a broken module must not break the whole report
            return None, f"figure module neurodyn.plots.{name} failed to import: {exc!r}"
        fn = getattr(mod, "draw", None)
        if callable(fn):
            return fn, ""
    return None, f"no figure module for stage {stage!r} (looked for neurodyn.plots." \
                 f"{{{','.join(dict.fromkeys(n for n in names if n))}}})"


def _draw(fn: Callable[..., list[Path]], path: Path, outdir: Path, fmt: str, what: str
          ) -> tuple[list[Path], list[str]]:
    """Run one figure module into ``outdir`` (its stale ``*.fmt`` files removed first)."""
    if outdir.is_dir():
        for old in outdir.glob(f"*.{fmt}"):
            old.unlink()
    try:
        out = fn(path, outdir, fmt)
    except InputError:
        raise
    except Exception as exc:
        return [], [f"figures of {what} failed: {type(exc).__name__}: {exc}"]
    finally:
        import matplotlib.pyplot as plt

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
    from neurodyn.plots.style import FORMATS

    if fmt not in FORMATS:
        raise InputError("--format", f"unknown figure format {fmt!r}; one of {FORMATS}")
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
        fn, why = plot_function(sf.stage, sf.path.stem)
        if fn is None:  # recordings have no figure module of their own: nothing to say
            out[sf.path.name] = ([], [] if sf.stage in ("ingest", "simulate") else [why])
            continue
        out[sf.path.name] = _draw(fn, sf.path, figdir / sf.path.stem, fmt, sf.path.name)
    from neurodyn.plots import timeline

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


# -- key numbers -------------------------------------------------------------------------------
_INTERESTING = ("loglik", "log_lik", "heldout", "held_out", "test", "elbo", "bic", "aic", "loss",
                "rhat", "r_hat", "ess", "accept", "rank", "n_", "error", "fit", "converged",
                "iterations", "score", "ari", "nmi", "auc", "modularity", "resolution")
_CLUSTERS = ("membership", "neuron_clusters", "clusters", "communities")
_STATES = ("viterbi", "state_sequence", "states")


def _scalar(v: Any) -> Any | None:
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    if isinstance(v, str):
        return v if len(v) <= 80 and not v.startswith(("{", "[")) else None
    if isinstance(v, (bool, int, float, np.integer, np.floating, np.bool_)):
        return v.item() if hasattr(v, "item") else v
    if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "biuf":
        return v.item()
    return None


def _derived(name: str, ds: h5py.Dataset) -> dict[str, Any]:
    """Key numbers implied by a dataset's name and shape (no large reads)."""
    base = name.rsplit("/", 1)[-1].lower()
    out: dict[str, Any] = {}
    if ds.dtype.kind not in "biuf":
        return out
    if ds.size == 1:
        out[name] = ds[()].item() if hasattr(ds[()], "item") else ds[()]
    elif base in _CLUSTERS and ds.ndim == 1:
        v = ds[()]
        out[f"{name}: number of groups"] = int(np.unique(v[v >= 0]).size)
    elif base in _STATES and ds.ndim == 1:
        out[f"{name}: states used"] = int(np.unique(ds[()]).size)
    elif base in ("posterior", "transition") and ds.ndim >= 2:
        out[f"{name}: number of states"] = int(ds.shape[-1])
    elif name.lower().startswith("factors/") and ds.ndim == 2 and base != "weights":
        out[f"{name}: rank"] = int(ds.shape[1])
    elif base in ("loglik_trace", "elbo", "loss_trace", "log_likelihood") and ds.ndim == 1 \
            and ds.size > 0:
        v = ds[()]
        out[f"{name}: final"] = float(v[-1])
        out[f"{name}: iterations"] = int(v.size)
    elif any(k in base for k in ("heldout", "held_out", "rhat", "ess")) and ds.size <= 16:
        out[name] = [round(float(x), 6) for x in np.ravel(ds[()])]
    return out


def key_numbers(path: str | Path, max_rows: int = 300) -> tuple[dict[str, Any], list[list[Any]]]:
    """Root-level numbers and per-group rows ``[group, quantity, value]`` of a stage file."""
    root: dict[str, Any] = {}
    rows: list[list[Any]] = []
    with open_h5(path) as f:
        for k, v in f.attrs.items():
            if k not in PROVENANCE_KEYS and (s := _scalar(v)) is not None:
                root[k] = s

        def visit(name: str, obj: Any) -> None:
            if len(rows) >= max_rows or "events" in name.split("/"):
                return
            group, _, leaf = name.rpartition("/")
            if isinstance(obj, h5py.Group):
                for k, v in obj.attrs.items():
                    s = _scalar(v)
                    if s is not None and k not in ("id", "columns", "source"):
                        rows.append([name, k, s])
            elif isinstance(obj, h5py.Dataset):
                for q, v in _derived(name, obj).items():
                    if "/" not in name:
                        root[q] = v
                    else:
                        rows.append([group, q[len(group) + 1:] if q.startswith(group) else q, v])

        f.visititems(visit)
    return root, rows


def _group_table(rows: list[list[Any]], max_columns: int = 16) -> Table:
    """Per-group numbers as one row per group (wide) when few quantities, else long form."""
    groups = list(dict.fromkeys(r[0] for r in rows))
    quantities = list(dict.fromkeys(r[1] for r in rows))
    names = [g.replace("|", "/") for g in groups]
    if len(quantities) > max_columns:
        return Table("Numbers per group", ["group", "quantity", "value"],
                     [[r[0].replace("|", "/"), r[1], r[2]] for r in rows])
    cell = {(r[0], r[1]): r[2] for r in rows}
    return Table("Numbers per group", ["group", *quantities],
                 [[n, *(cell.get((g, q), "") for q in quantities)] for g, n in zip(groups, names)])


def _recordings_section(path: Path) -> Table | None:
    from neurodyn.io.store import read_recordings

    try:
        recs = read_recordings(path, lazy=True)
    except Exception:
        return None
    rows = [[r.id, r.modality, r.n_channels, r.n_samples, round(r.fs, 4), round(r.duration, 2),
             len(r.events)] for r in recs]
    return Table("Recordings", ["id", "modality", "channels", "samples", "fs (Hz)",
                                "duration (s)", "events"], rows)


def _has_group(path: Path, name: str) -> bool:
    with open_h5(path) as f:
        return isinstance(f.get(name), h5py.Group)


def _connectomes(path: Path) -> list[str]:
    with open_h5(path) as f:
        return list(f["connectome"]) if "connectome" in f else []


def build_report(rundir: str | Path, out: str | Path | None = None) -> Path:
    """Draw PNG figures and write a self-contained ``report.html`` (default ``rundir/report.html``).

    One section per completed stage file (what was run, key numbers, figures), a cross-method
    timeline section with HMM-GLM / bi-clustering agreement (ARI, NMI), and the connectome
    comparison when ``compare.h5`` exists. For a pipeline run directory (stage files in one
    subdirectory per unit) the sections of every unit go into one page, titled by unit.
    """
    rundir = Path(rundir)
    units = unit_dirs(rundir)
    out = Path(out) if out is not None else rundir / REPORT_NAME
    check_output(out, [p for u in units for p in u.iterdir() if p.name != REPORT_NAME])
    sections: list[Section] = []
    n_files = 0
    for u in units:
        secs, n = _unit_sections(u)
        n_files += n
        if u != rundir:
            for sec in secs:
                sec.id = f"{style_safe(u.name)}-{sec.id}"
                sec.title = f"{u.name}: {sec.title}"
        sections += secs
    if not sections:
        raise InputError(rundir, "holds no completed stage output (*.h5) to report on")
    what = f"{n_files} stage file(s)" + (f" in {len(units)} units" if units != [rundir] else "")
    page = render(f"neurodyn report: {rundir.resolve().name}", f"{rundir.resolve()} — {what}",
                  sections)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out


def style_safe(name: str) -> str:
    """An HTML-id-safe version of a unit name."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _unit_sections(rundir: Path) -> tuple[list[Section], int]:
    """Sections of one directory of stage files, and how many stage files it holds."""
    from neurodyn.report.compare import read_scores
    from neurodyn.report.timeline import agreement_table, load_timelines

    files, skipped = stage_files(rundir)
    figs = draw_sections(rundir, "png")
    sections: list[Section] = []
    stages: list[str] = []
    for sf in files:
        prov = provenance(sf.path)
        prov["file"] = sf.path.name
        figures, notes = figs.get(sf.path.name, ([], []))
        try:
            numbers, rows = key_numbers(sf.path)
        except Exception as exc:  # an odd layout must not sink the whole report
            numbers, rows = {}, []
            notes = [*notes, f"key numbers unavailable: {type(exc).__name__}: {exc}"]
        tables: list[Table] = []
        if prov.get("seed") == -1:
            prov["seed"] = "none (deterministic)"
        if _has_group(sf.path, "recordings"):  # ingest, preprocess, bin_spikes...
            t = _recordings_section(sf.path)
            if t is not None:
                tables.append(t)
                numbers = {"recordings": len(t.rows), **numbers}
            cons = _connectomes(sf.path)
            if cons:
                numbers["connectomes"] = ", ".join(cons)
            rows = [r for r in rows if not r[0].startswith(("recordings", "connectome"))]
        if sf.stage == "compare":
            try:
                scores = read_scores(sf.path)
            except Exception as exc:
                scores = []
                notes = [*notes, f"scores unreadable: {type(exc).__name__}: {exc}"]
            cols = ["source", "roc_auc", "p_roc", "pr_auc", "chance_pr_auc", "p_pr", "n_neurons",
                    "n_pairs", "n_connected", "n_only_inferred", "n_only_connectome"]
            heads = ["inferred source", "ROC AUC", "p (ROC)", "PR AUC", "chance PR AUC",
                     "p (PR)", "shared neurons", "pairs", "connected pairs",
                     "neurons only inferred", "neurons only in connectome"]
            tables.append(Table("Scores against the connectome (label-permutation null)", heads,
                                [[s.get(c) for c in cols] for s in scores]))
            only = {s["source"]: s.get("only_inferred", []) for s in scores if s.get("only_inferred")}
            for src, names in only.items():
                notes = notes + [f"{src}: neurons absent from the connectome: "
                                 f"{', '.join(names[:40])}{' ...' if len(names) > 40 else ''}"]
            rows = []
        if rows:
            tables.append(_group_table(rows))
        key = sf.path.stem
        stages.append(sf.stage)
        sections.append(Section(
            id=f"stage-{key}", title=f"{TITLES.get(sf.stage, sf.stage)} — {sf.path.name}",
            provenance=prov, numbers=numbers, tables=tables, figures=figures, notes=notes))
    t_figs, t_notes = figs.get("timeline", ([], []))
    try:
        tls = load_timelines(rundir)
    except Exception as exc:
        tls, t_notes = [], [*t_notes, f"timeline unavailable: {type(exc).__name__}: {exc}"]
    if tls or t_figs:
        rows = [[r["recording"], r["hmm_states"], r["bicluster_states"], r["ari"], r["nmi"]]
                for r in agreement_table(tls)
                if r["hmm_states"] is not None or r["bicluster_states"] is not None]
        notes = list(dict.fromkeys(t_notes + [n for tl in tls for n in tl.notes]))
        tables = [Table("Agreement of HMM-GLM and bi-clustering state partitions",
                        ["recording", "HMM-GLM states", "bi-clustering states", "ARI", "NMI"],
                        rows)] if rows else []
        timeline_section = Section(id="timeline", title=TITLES["timeline"], tables=tables,
                                   figures=t_figs, notes=notes)
        at = stages.index("compare") if "compare" in stages else len(sections)
        sections.insert(at, timeline_section)
    if skipped and sections:
        sections[0].notes = list(sections[0].notes) + skipped
    return sections, len(files)


__all__ = ["build_report", "draw_all", "draw_sections", "key_numbers", "stage_files",
           "unit_dirs", "plot_function"]
