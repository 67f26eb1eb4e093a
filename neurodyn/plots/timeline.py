"""Cross-method timeline figure: HMM-GLM posterior, bi-clustering states, NTF time factors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodyn.analysis.timeline import Timeline, load_timelines
from neurodyn.plots import style


def draw(result_path: Path, outdir: Path, fmt: str = "png", *,
         max_recordings: int | None = 12) -> list[Path]:
    """One timeline figure per recording of the run directory ``result_path``.

    ``result_path`` may be the run directory or any stage file inside it.
    """
    rundir = Path(result_path)
    if rundir.is_file():
        rundir = rundir.parent
    return [draw_timeline(tl, outdir, fmt, rundir) for tl in load_timelines(rundir, max_recordings)
            if tl.n_panels > 0]


def draw_timeline(tl: Timeline, outdir: Path, fmt: str = "png", rundir: Path | None = None
                  ) -> Path:
    """Draw one :class:`~neurodyn.analysis.timeline.Timeline` with shared time axis (s).

    ``rundir`` (where ``tl.sources`` live) lets the caption name their parameters and seeds.
    """
    import matplotlib.pyplot as plt

    style.use()
    panels = [k for k, v in (("hmm", tl.hmm_states), ("bic", tl.bic_states),
                             ("ntf", tl.ntf_factors)) if v is not None]
    heights = {"hmm": 1.6, "bic": 0.7, "ntf": 1.6}
    fig, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False,
                             figsize=(9, 1.0 + sum(heights[p] for p in panels)),
                             gridspec_kw={"height_ratios": [heights[p] for p in panels]})
    axes = axes[:, 0]
    for ax, kind in zip(axes, panels):
        style.shade_events(ax, tl.events)
        if kind == "hmm":
            _hmm(ax, tl)
        elif kind == "bic":
            _states(ax, tl.bic_time, tl.bic_states, "bi-clustering\nstate")
        else:
            _ntf(ax, tl)
    axes[-1].set_xlabel("time (s)")
    title = f"Cross-method timeline, recording {tl.recording}"
    if np.isfinite(tl.ari):
        title += f"   (HMM-GLM vs bi-clustering: ARI {tl.ari:.2f}, NMI {tl.nmi:.2f})"
    axes[0].set_title(title, loc="left")
    ev = "" if tl.events is None or len(tl.events) == 0 else (
        "; shaded: events (" + ", ".join(dict.fromkeys(str(x) for x in tl.events["label"]))[:120]
        + ")")
    if rundir is not None and tl.sources:
        caption = style.caption_from_many([Path(rundir) / n for n in tl.sources.values()])
    else:
        caption = style.Caption(sources=tuple(style.Source(str(v)) for v in tl.sources.values()))
    what = {"hmm": "the HMM-GLM state posterior", "bic": "the bi-clustering state sequence",
            "ntf": "the NTF temporal factors"}
    style.add_caption(fig, caption.says(
        f"Recording {tl.recording} on one time axis (s): " + ", ".join(what[p] for p in panels)
        + ev + ("; ARI / NMI: agreement of the two state partitions (1 = identical, 0 = "
                "chance)." if np.isfinite(tl.ari) else ".")))
    fig.subplots_adjust(left=0.1, right=0.86, top=0.9, hspace=0.25)
    return style.save(fig, outdir, f"timeline_{style.safe_name(tl.recording)}", fmt)


def _hmm(ax, tl: Timeline) -> None:
    if tl.hmm_posterior is not None:
        t, p = style.decimate(tl.hmm_time, tl.hmm_posterior)
        K = p.shape[1]
        ax.stackplot(t, p.T, colors=style.colors(K), labels=[f"state {k}" for k in range(K)],
                     lw=0)
        ax.set_ylim(0, 1)
        ax.set_ylabel("HMM-GLM\nP(state)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    else:
        _states(ax, tl.hmm_time, tl.hmm_states, "HMM-GLM\nstate")


def _states(ax, t: np.ndarray, z: np.ndarray, ylabel: str) -> None:
    t, z = style.decimate_labels(t, z)
    z = np.asarray(z, dtype=int)
    K = int(z.max()) + 1 if z.size else 1
    dt = np.median(np.diff(t)) if t.size > 1 else 1.0
    edges = np.concatenate([t - dt / 2, [t[-1] + dt / 2]])
    ax.pcolormesh(edges, [0, 1], z[None, :], cmap=style.category_cmap(K), vmin=-0.5,
                  vmax=K - 0.5, shading="flat")
    ax.set_yticks([])
    ax.set_ylabel(ylabel)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=style.color(k), label=f"state {k}") for k in np.unique(z)],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def _ntf(ax, tl: Timeline) -> None:
    f = tl.ntf_factors
    for r in range(f.shape[1]):
        ax.plot(tl.ntf_time, f[:, r], color=style.color(r), lw=1.2, label=tl.ntf_labels[r],
                marker="o" if f.shape[0] < 40 else None, ms=2.5)
    ax.set_ylabel("NTF temporal\nfactor (a.u.)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
