"""Figures of the ``communities`` stage: per component, the affinity pattern ordered by community
with its temporal and animal loadings; and the dynamic-connectome overview."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurodyn.community import result as community_result
from neurodyn.io.store import provenance
from neurodyn.plots import style
from neurodyn.tensor import result as ntf_result


def _ntf_path(result_path: Path, prov: dict[str, Any]) -> Path | None:
    for p in (prov.get("inputs") or {}):
        q = Path(p)
        if not q.is_absolute() and not q.exists():
            q = result_path.parent / q.name
        if q.exists():
            return q
    return None


def _load(result_path: Path) -> dict[str, Any]:
    """Everything the figures need, read from communities.h5 and (if found) its ntf.h5 input."""
    res = community_result.read(result_path)
    d: dict[str, Any] = {
        "labels": res.labels,
        "components": {r: {"membership": c.membership, "attrs": c.attrs}
                       for r, c in res.components.items()},
    }
    if res.overview is not None:
        d["overview"] = res.overview
    ntf = _ntf_path(result_path, provenance(result_path))
    d["ntf"] = ntf
    if ntf is not None:
        n = ntf_result.read(ntf)
        d.update(matrices=n.matrices, time=n.factors.get("time"), animal=n.factors.get("animal"),
                 windows=n.windows, animals=n.animals)
        ev = n.events
        d["events"] = ev.drop_duplicates(subset=["onset", "offset", "label"]) if len(ev) else None
    return d


def _window_centers(d: dict[str, Any], n: int) -> tuple[np.ndarray, str]:
    w = d.get("windows")
    if w is not None and len(w) == n:
        w = np.asarray(w, dtype=float)
        return (w.mean(axis=1) if w.ndim == 2 else w), "time (s)"
    return np.arange(n, dtype=float), "window"


def draw(result_path: Path, outdir: Path, fmt: str = "png") -> list[Path]:
    """Draw the community figures of ``result_path`` into ``outdir``; returns the files.

    One figure per analysed component (``communities_component_<r>``): its N x N affinity
    pattern reordered by community (neuron names when they fit, community boundaries), its
    temporal loading with event intervals shaded, its animal loading as bars. One overview
    (``communities_overview``): activity of every (component, community) over time. Loadings
    and matrices come from the NTF file recorded in the provenance ``inputs``; figures that
    need it are skipped if it is gone.
    """
    import matplotlib.pyplot as plt

    style.use()
    result_path, outdir = Path(result_path), Path(outdir)
    d = _load(result_path)
    caption = style.caption_from(result_path)
    paths: list[Path] = []
    labels = d["labels"]
    for r, comp in d["components"].items():
        memb = np.asarray(comp["membership"])
        order = style.group_order(memb)
        names = d.get("animals") or []
        many = d.get("animal") is not None and np.asarray(d["animal"]).shape[0] > 1
        n_ax = 3 if many else 2
        fig, axes = plt.subplots(1, n_ax, figsize=(16 if many else 13, 5.5),
                                 gridspec_kw={"width_ratios": [1.1, 1.4, 0.8][:n_ax]})
        fig.subplots_adjust(wspace=0.45)
        ax = axes[0]
        if "matrices" in d:
            M = np.asarray(d["matrices"][r], dtype=float)[np.ix_(order, order)]
            im = ax.imshow(M, cmap=style.SEQUENTIAL, interpolation="nearest")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                         label="pattern weight (dimensionless)")
            style.group_boundaries(ax, memb[order])
            style.label_matrix_axes(ax, [labels[i] for i in order])
        else:
            ax.text(0.5, 0.5, "NTF input not found", ha="center", va="center")
        a = comp["attrs"]
        ax.set_title(f"component {r}: {a.get('n_blocks')} communities "
                     f"({a.get('method')}, DL {float(a.get('description_length', np.nan)):.0f} nats, "
                     f"{a.get('ensemble') or ('dc' if a.get('degree_corrected') else 'ndc')})",
                     fontsize=9)  # fmt: skip
        ax = axes[1]
        if d.get("time") is not None:
            y = np.asarray(d["time"])[:, r]
            t, xlabel = _window_centers(d, len(y))
            style.shade_events(ax, d.get("events"))
            ax.plot(t, y, color=style.color(r), lw=1.2)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("temporal loading")
            ax.set_title("temporal loading (events shaded)", fontsize=9)
        if many:
            ax = axes[2]
            v = np.asarray(d["animal"])[:, r]
            names = names or [str(i) for i in range(len(v))]
            ax.bar(np.arange(len(v)), v, color=style.color(r))
            ax.set_xticks(np.arange(len(v)), names, rotation=90, fontsize=6)
            ax.set_ylabel("animal loading")
            ax.set_title("animal loading", fontsize=9)
        n_comm = len(np.unique(memb[memb >= 0]))
        style.add_caption(fig, caption.says(
            f"Communities of NTF component {r}: a weighted stochastic block model fitted to the "
            f"component's neuron x neuron pattern split the {len(memb)} neurons into {n_comm} "
            "communities; left, the pattern with neurons reordered by community (white lines: "
            "community boundaries; colour: pattern weight); " + ("middle" if many else "right")
            + ", the component's temporal loading"
            + (" with events shaded" if d.get("events") is not None else "")
            + ("; right, its loading in each animal." if many else "."),
            "" if "matrices" in d else "The NTF input file was not found: no pattern drawn.",
            "" if many or d.get("animal") is None else
            f"One animal{f' ({names[0]})' if names else ''}: no animal-loading panel.",
            "Member names per community: see the report's community table."))
        paths.append(style.save(fig, outdir, f"communities_component_{r}", fmt))
    ov = d.get("overview")
    if ov is not None and len(ov["activity"]):
        act = np.asarray(ov["activity"], dtype=float)
        t, xlabel = _window_centers(d, act.shape[1])
        fig, ax = plt.subplots(figsize=(12, 0.3 * len(act) + 2.0))
        extent = (t[0], t[-1], len(act) - 0.5, -0.5)
        im = ax.imshow(act, aspect="auto", cmap=style.SEQUENTIAL, interpolation="nearest",
                       extent=extent)  # fmt: skip
        style.shade_events(ax, d.get("events"), alpha=0.0)
        rows = [f"C{int(c)}.{int(k)}" for c, k in zip(ov["component"], ov["community"])]
        ax.set_yticks(np.arange(len(rows)), rows, fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("component.community")
        ax.set_title("dynamic connectome: within-community affinity x temporal loading", fontsize=9)
        fig.colorbar(im, ax=ax, label="activity (dimensionless)")
        style.add_caption(fig, caption.says(
            "Activity of every community over time: the mean within-community pattern weight of "
            "each (component, community), row C<component>.<community>, times the component's "
            "temporal loading in each window (x: window centre, s; colour: activity)."))
        paths.append(style.save(fig, outdir, "communities_overview", fmt))
    return paths


__all__ = ["draw"]
