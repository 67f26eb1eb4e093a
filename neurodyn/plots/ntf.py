"""Figures of the factorize stage: rank selection curves and one panel row per component."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from neurodyn.plots import style
from neurodyn.tensor import result


def draw(result_path: Path, outdir: Path, fmt: str = "png") -> list[Path]:
    """Draw ``ntf_rank_selection`` (relative error, held-out error and restart stability by
    rank) and ``ntf_component_<r>`` per component (temporal loading with the first animal's
    events shaded, animal loading bars, N x N pattern with neuron names where they fit)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style.use()
    res = result.read(result_path)
    rs, mats, chosen = res.rank_selection, res.matrices, res.rank
    t_load, a_load, weights = res.factors["time"], res.factors["animal"], res.factors["weights"]
    labels, windows, animals = res.labels, res.windows, res.animals
    events = res.events
    caption = style.caption_from(result_path)
    out = []
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(rs["ranks"], rs["error"], "o-", color=style.color(0), label="relative error (best restart)")
    ax.plot(rs["ranks"], rs["heldout_error"], "s-", color=style.color(1), label="held-out error")
    ax.set_xlabel("rank")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("relative error")
    ax2 = ax.twinx()
    ax2.plot(rs["ranks"], rs["stability"], "^--", color=style.color(2), label="restart stability")
    ax2.set_ylabel("stability (factor match score)")
    ax2.set_ylim(0, 1.05)
    ax.axvline(chosen, color="0.3", lw=0.8, ls=":")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, frameon=False)
    ax.set_title(f"Rank selection (chosen: {chosen})")
    style.add_caption(fig, caption.says(
        f"Non-negative tensor factorization of the affinity tensor (pairs x {len(windows)} "
        f"windows x {len(animals)} animal(s)) at each candidate rank: relative reconstruction "
        "error of the best restart and on held-out entries (left axis), and the similarity of "
        f"the factors across restarts (right axis, 1 = identical). Dotted line: the chosen "
        f"rank {chosen}."))
    out.append(style.save(fig, outdir, "ntf_rank_selection", fmt))
    first = None
    if events is not None and len(events):
        first = events[events["animal"] == animals[0]] if "animal" in events else events
    mid = windows.mean(axis=1)
    many = len(animals) > 1  # one animal: its loading is a single bar, not drawn
    for r in range(len(weights)):
        big = len(labels) > 40
        fig = plt.figure(figsize=(14, 7.5) if big else (11, 5.2))
        gs = fig.add_gridspec(2, 2, width_ratios=[1.3, 1] if big else [1.6, 1], hspace=0.6)
        ax_t = fig.add_subplot(gs[0, 0] if many else gs[:, 0])
        ax_t.plot(mid, t_load[:, r], color=style.color(r), lw=1)
        style.shade_events(ax_t, first)
        ax_t.set_xlabel("time (s)")
        ax_t.set_ylabel("temporal loading")
        ax_t.set_title(f"component {r} (weight {weights[r]:.3g})")
        if many:
            ax_a = fig.add_subplot(gs[1, 0])
            ax_a.bar(np.arange(len(animals)), a_load[:, r], color=style.color(r))
            ax_a.set_xticks(np.arange(len(animals)),
                            [a.split("/")[-1] for a in animals] if len(animals) <= 25
                            else [""] * len(animals), rotation=90, fontsize=6)
            ax_a.set_ylabel("animal loading")
        ax_m = fig.add_subplot(gs[:, 1])
        im = ax_m.imshow(mats[r], cmap=style.SEQUENTIAL, interpolation="nearest")
        style.label_matrix_axes(ax_m, labels)
        fig.colorbar(im, ax=ax_m, fraction=0.046, label="pattern weight (dimensionless)")
        style.add_caption(fig, caption.says(
            f"Component {r} of the rank-{len(weights)} factorization: its temporal loading over "
            f"the sliding windows (x: window centre in s"
            + ("; shaded: events of the first animal)" if first is not None else ")")
            + (", its loading in each animal (bars)" if many else "")
            + f" and its neuron x neuron pattern (colour: weight of each pair; the "
            f"{len(labels)} neurons in recording order).",
            "" if many else f"One animal ({animals[0]}): no animal-loading panel."))
        out.append(style.save(fig, outdir, f"ntf_component_{r}", fmt))
    return out
