"""The self-contained HTML report of a run directory (``neurodyn report``).

``build_report(rundir)`` draws PNG figures (:mod:`neurodyn.report.figures`) and writes
``rundir/report.html`` with one section per completed stage file, its key numbers
(:mod:`neurodyn.report.numbers`), the cross-method timeline and the connectome comparison.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from neurodyn.analysis.compare import read_scores
from neurodyn.analysis.timeline import agreement_table, load_timelines
from neurodyn.community import result as community_result
from neurodyn.errors import InputError
from neurodyn.io.outputs import atomic_path, check_output
from neurodyn.io.store import open_h5, provenance, read_recordings
from neurodyn.report.figures import draw_sections, stage_files, unit_dirs
from neurodyn.report.html import Section, Table, render
from neurodyn.report.numbers import group_table, key_numbers

TITLES = {
    "ingest": "Recordings", "simulate": "Recordings (simulated)", "preprocess": "Preprocessing",
    "affinity": "Affinity (dynamic functional connectivity)",
    "factorize": "Tensor factorization (NTF)", "ntf": "Tensor factorization (NTF)",
    "communities": "Communities", "states": "HMM-GLM states", "hmmglm": "HMM-GLM states",
    "bicluster": "Bayesian bi-clustering", "timeline": "Cross-method timeline",
    "compare": "Structure versus function (connectome comparison)",
}
REPORT_NAME = "report.html"


def _recordings_section(path: Path) -> Table | None:
    try:
        recs = read_recordings(path, lazy=True)
    except Exception:
        return None
    rows = [[r.id, r.modality, r.n_channels, r.n_samples, round(r.fs, 4), round(r.duration, 2),
             len(r.events)] for r in recs]
    return Table("Recordings", ["id", "modality", "channels", "samples", "fs (Hz)",
                                "duration (s)", "events"], rows)


def community_members(path: Path) -> Table | None:
    """Neuron names of every community of every component of a ``communities`` file."""
    com = community_result.read(path)
    rows = []
    for k, comp in sorted(com.components.items()):
        memb = comp.membership
        for c in np.unique(memb[memb >= 0]):
            names = [com.labels[i] for i in np.flatnonzero(memb == c)]
            rows.append([k, int(c), len(names), ", ".join(names)])
    return Table("Community members (neuron names, per component)",
                 ["component", "community", "neurons", "members"], rows) if rows else None


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
        if sf.stage == "communities":
            t = community_members(sf.path)
            if t is not None:
                tables.append(t)
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
            tables.append(group_table(rows))
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
