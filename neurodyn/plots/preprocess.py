"""Preprocessed traces: one stacked-trace figure per recording of a preprocess output."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodyn.io import store
from neurodyn.plots import style

MAX_CHANNELS = 8


def draw(result_path: Path, outdir: Path, fmt: str = "png", *,
         max_recordings: int | None = 12) -> list[Path]:
    """Stacked traces (first ``MAX_CHANNELS`` channels, whole span, decimated for display)
    with event intervals shaded and the steps applied in the title; one file per recording.
    """
    paths = []
    ids = store.recording_ids(result_path)[:max_recordings]
    for rec in store.read_recordings(result_path, ids, lazy=True):
        n = min(MAX_CHANNELS, rec.n_channels)
        t, y = style.decimate(rec.times, rec.traces[:, :n])
        paths.append(_draw_one(rec, t, np.asarray(y, dtype=float), n, result_path, outdir, fmt))
    return paths


def _draw_one(rec, t, y, n, result_path, outdir, fmt) -> Path:
    import matplotlib.pyplot as plt

    style.use()
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * n))
    style.shade_events(ax, rec.events)
    spread = np.nanpercentile(np.abs(y), 99) if np.isfinite(y).any() else 1.0
    spread = spread if spread > 0 else 1.0
    scale = 2.5 * spread  # data units per unit of vertical offset
    for j in range(n):
        ax.plot(t, y[:, j] / scale - j, lw=0.5, color=style.trace_color(j))
    ax.set_yticks(-np.arange(n), list(rec.labels[:n]))
    ax.set_xlabel("time (s)")
    bar = float(f"{spread:.1g}")  # amplitude scale bar: a round value near the 99th percentile
    x_bar = t[-1] + 0.01 * (t[-1] - t[0]) if len(t) > 1 else 1.0
    ax.plot([x_bar, x_bar], [-n + 0.5, -n + 0.5 + bar / scale], color="k", lw=2, clip_on=False)
    ax.text(x_bar, -n + 0.5 + bar / (2 * scale), " " + style.amplitude(bar, rec.units), va="center",
            fontsize=7, clip_on=False)
    steps = [r.get("step", "?") for r in rec.meta.get("preprocess", []) if "skipped" not in r]
    shown = f"first {n} of {rec.n_channels} channels" if n < rec.n_channels else \
        f"all {n} channels"
    ax.set_title(f"{rec.id}: {shown}, {rec.fs:.4g} Hz; steps: {', '.join(steps) or 'none'}")
    style.add_caption(fig, style.caption_from(result_path).says(
        f"Preprocessed traces of recording {rec.id} ({shown}, each offset vertically; "
        f"{rec.fs:.4g} Hz, whole span"
        + (", block-averaged for display" if len(t) < rec.n_samples else "")
        + f"); bar: {style.amplitude(bar, rec.units)}"
        + ("; shaded: events." if len(rec.events) else "."),
        f"{rec.n_channels - n} channels not drawn." if n < rec.n_channels else ""))
    return style.save(fig, outdir, f"preprocess_{rec.id}", fmt)
