"""Figures of the affinity stage: mean affinity matrix and mean affinity over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodyn.affinity import result
from neurodyn.affinity.tensor import observed_means, pairs_to_matrix
from neurodyn.plots import style


def draw(result_path: Path, outdir: Path, fmt: str = "png") -> list[Path]:
    """Draw ``affinity_matrix`` (mean over windows and animals) and ``affinity_time`` (mean
    over pairs per window, one line per animal, events of the first animal shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style.use()
    t = result.read(result_path)
    pairs, labels = t.pairs, t.labels
    windows, animals, events = t.windows, t.animals, t.events
    per_pair, per_window = observed_means(t.observed)
    caption = style.caption_from(result_path)
    out = []
    fig, ax = plt.subplots(figsize=(6.5, 5.8))
    m = pairs_to_matrix(np.nan_to_num(per_pair), pairs, len(labels))
    im = ax.imshow(m, cmap=style.SEQUENTIAL, interpolation="nearest")
    style.label_matrix_axes(ax, labels)
    fig.colorbar(im, ax=ax, label="mean affinity (dimensionless)")
    ax.set_title("Mean affinity (observed windows, all animals)")
    kernel = caption.sources[0].parameters.get("kernel", "")
    n_an = f"{len(animals)} animal{'s' if len(animals) != 1 else ''}"
    style.add_caption(fig, caption.says(
        f"Affinity{f' ({kernel} kernel)' if kernel else ''} between every pair of the "
        f"{len(labels)} neurons, averaged over the {len(windows)} sliding windows and {n_an} "
        "(windows with missing samples left out); colour: mean affinity, rows and columns: "
        "neurons."))
    out.append(style.save(fig, outdir, "affinity_matrix", fmt))
    fig, ax = plt.subplots(figsize=(8, 3.5))
    mid = windows.mean(axis=1)
    for a, name in enumerate(animals):
        ax.plot(mid, per_window[:, a], lw=0.8, color=style.color(a) if len(animals) <= 8 else "0.4",
                label=name if len(animals) <= 8 else None)
    if events is not None and len(events):
        first = events[events["animal"] == animals[0]] if "animal" in events else events
        style.shade_events(ax, first)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mean pair affinity")
    if len(animals) <= 8:
        ax.legend(fontsize=6, frameon=False)
    has_ev = events is not None and len(events) > 0
    style.add_caption(fig, caption.says(
        f"Mean affinity over all {len(pairs)} neuron pairs in each sliding window (x: window "
        f"centre, s), one line per animal"
        + (f"; shaded: events of {animals[0]}." if has_ev else "."),
        "" if len(animals) <= 8 else f"{len(animals)} animals, drawn in grey without a legend."))
    out.append(style.save(fig, outdir, "affinity_time", fmt))
    return out
