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
    for j in range(n):
        ax.plot(t, y[:, j] / (2.5 * spread) - j, lw=0.5, color=style.color(j))
    ax.set_yticks(-np.arange(n), list(rec.labels[:n]))
    ax.set_xlabel("time (s)")
    steps = [r.get("step", "?") for r in rec.meta.get("preprocess", []) if "skipped" not in r]
    ax.set_title(f"{rec.id}: {rec.n_channels} channels, {rec.fs:.4g} Hz, units {rec.units}; "
                 f"steps: {', '.join(steps) or 'none'}")
    style.add_caption(fig, style.caption_from(result_path))
    return style.save(fig, outdir, f"preprocess_{rec.id}", fmt)
