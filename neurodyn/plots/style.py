"""Shared figure style: colorblind-safe palettes, stable colors per index, captions, saving.

Every figure module should draw through these helpers so that the same state or community
index has the same color in every figure, matrices are ordered and labelled the same way, and
every figure carries a caption that says in words what it shows and names the files and seeds
it was drawn from (:class:`Caption`; the parameters go to a caption file beside the figure).
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from neurodyn.io.outputs import atomic_path
from neurodyn.io.store import provenance
from neurodyn.params import ParamError
from neurodyn.plots import CAPTION_SUFFIX, read_caption  # noqa: F401  (read_caption: re-export)

#: Okabe & Ito (2008) colorblind-safe qualitative palette (black moved last).
OKABE_ITO = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
)
#: Color of "no group" (background neurons, label -1).
BACKGROUND = "#BBBBBB"
#: Sequential map for non-negative matrices and diverging map for signed ones.
SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"
#: Formats ``neurodyn figures --format`` accepts.
FORMATS = ("png", "svg", "pdf")
#: Show neuron names on matrix axes up to this many neurons; above that every k-th name.
MAX_TICK_LABELS = 120
#: Neuron names are never drawn smaller than this (pt); more names than fit are thinned.
MIN_LABEL_PT = 5.0
#: Above this many neurons matrices are ordered by community/cluster.
ORDER_ABOVE = 100
#: Time series are decimated to at most this many points for display.
MAX_POINTS = 4000

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": SEQUENTIAL,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
}


def use() -> None:
    """Apply the neurodyn rcParams (call at the start of every ``draw``)."""
    plt.rcParams.update(RC)


def color(index: int) -> str:
    """Stable color of a state/community/cluster index (negative: background gray).

    Indices 0-7 take the Okabe-Ito colors; larger indices cycle through viridis samples
    at golden-ratio offsets so neighbours stay distinguishable.
    """
    i = int(index)
    if i < 0:
        return BACKGROUND
    if i < len(OKABE_ITO):
        return OKABE_ITO[i]
    x = ((i - len(OKABE_ITO)) * 0.618033988749895) % 1.0
    return matplotlib.colors.to_hex(plt.get_cmap(SEQUENTIAL)(x))


def trace_color(index: int) -> str:
    """Color of the ``index``-th line of stacked traces: the Okabe-Ito colors without yellow,
    which is unreadable as a thin line on white."""
    dark = [c for c in OKABE_ITO if c != "#F0E442"]
    return dark[int(index) % len(dark)]


def colors(n: int) -> list[str]:
    """Colors of indices ``0..n-1``."""
    return [color(i) for i in range(n)]


def category_cmap(n: int) -> ListedColormap:
    """A listed colormap whose entry ``k`` is :func:`color` ``(k)``, for ``imshow`` of labels."""
    return ListedColormap(colors(max(n, 1)), name=f"neurodyn{n}")


def group_order(groups: Sequence[int] | np.ndarray) -> np.ndarray:
    """Permutation that sorts items by group (background -1 last), stable within a group.

    Parameters
    ----------
    groups : int array (N,)

    Returns
    -------
    order : int array (N,)
    """
    g = np.asarray(groups, dtype=np.int64)
    key = np.where(g < 0, np.iinfo(np.int64).max, g)
    return np.argsort(key, kind="stable")


def display_order(n: int, groups: Sequence[int] | np.ndarray | None) -> np.ndarray:
    """Order for an ``n``-neuron matrix: by ``groups`` when ``n > ORDER_ABOVE``, else identity."""
    if groups is None or n <= ORDER_ABOVE or len(groups) != n:
        return np.arange(n)
    return group_order(groups)


def decimate(t: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Block-average a long time series for display only.

    Parameters
    ----------
    t : array (T,)
        Times (s).
    y : array (T,) or (T, K)
    max_points : int

    Returns
    -------
    t_ds : array (T',), y_ds : array (T', ...)
        Unchanged when ``T <= max_points``; otherwise means over blocks of ``ceil(T/max_points)``.
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(y)
    T = t.shape[0]
    if T <= max_points:
        return t, y
    step = int(np.ceil(T / max_points))
    n = T // step
    tt = t[: n * step].reshape(n, step).mean(1)
    yy = y[: n * step].reshape((n, step) + y.shape[1:]).astype(float).mean(1)
    return tt, yy


def decimate_labels(t: np.ndarray, z: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Subsample a discrete sequence (states) for display by taking every k-th sample."""
    t = np.asarray(t, dtype=float)
    z = np.asarray(z)
    if t.shape[0] <= max_points:
        return t, z
    step = int(np.ceil(t.shape[0] / max_points))
    return t[::step], z[::step]


def label_matrix_axes(ax: Any, labels: Sequence[str], *, x: bool = True, y: bool = True) -> None:
    """Put neuron names on matrix axes at a readable size (7 pt down to ``MIN_LABEL_PT``
    with the count); when more names than fit, every k-th, said in the axis label."""
    n = len(labels)
    if n == 0:
        return
    fit = int(7 * 30 / MIN_LABEL_PT)  # names that fit at the smallest readable size
    step = int(np.ceil(n / min(fit, MAX_TICK_LABELS)))
    shown = int(np.ceil(n / step))
    size = 7.0 if shown <= 30 else max(MIN_LABEL_PT, 7.0 * 30 / shown)
    ticks = np.arange(0, n, step)
    names = [str(labels[i]) for i in ticks]
    note = f" ({len(ticks)} of {n} names shown, 1 in {step})" if step > 1 else ""
    if x:
        ax.set_xticks(ticks, names, rotation=90, fontsize=size)
        if note:
            ax.set_xlabel((ax.get_xlabel() or "neuron") + note)
    if y:
        ax.set_yticks(ticks, names, fontsize=size)
        if note:
            ax.set_ylabel((ax.get_ylabel() or "neuron") + note)


def group_boundaries(ax: Any, groups_sorted: np.ndarray) -> None:
    """Draw thin lines between consecutive groups of an ordered matrix."""
    g = np.asarray(groups_sorted)
    for b in np.flatnonzero(np.diff(g) != 0):
        ax.axhline(b + 0.5, color="white", lw=0.6)
        ax.axvline(b + 0.5, color="white", lw=0.6)


def shade_events(ax: Any, events: Any, *, alpha: float = 0.15, max_edges: int = 20) -> None:
    """Shade stimulus/event intervals (a DataFrame with onset, offset, label; seconds).

    Interval edges are also drawn as dashed lines (visible over opaque panels) when there are
    at most ``max_edges`` events.
    """
    if events is None or len(events) == 0:
        return
    labels = [str(x) for x in events["label"]]
    uniq = list(dict.fromkeys(labels))
    for on, off, lab in zip(events["onset"], events["offset"], labels):
        if not (np.isfinite(on) and np.isfinite(off)):
            continue
        ax.axvspan(float(on), float(off), color=color(uniq.index(lab)), alpha=alpha, lw=0)
        if len(labels) <= max_edges:  # edges stay visible over opaque (stacked) panels
            for x in (on, off):
                ax.axvline(float(x), color="#333333", lw=0.7, ls="--", zorder=5)


@dataclasses.dataclass(frozen=True)
class Source:
    """A stage file a figure was drawn from, with the parameters and seed it was run with."""

    file: str
    stage: str = ""
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seed: Any = None

    def words(self) -> str:
        """``ntf.h5 (stage factorize, seed 0)``."""
        bits = [f"stage {self.stage}"] if self.stage else []
        if self.seed is not None and self.seed != -1:
            bits.append(f"seed {self.seed}")
        return f"{self.file} ({', '.join(bits)})" if bits else self.file


def read_source(path: str | Path) -> Source:
    """:class:`Source` of a stage file from its provenance (the file name alone if unreadable)."""
    try:
        p = provenance(path)
    except Exception:  # provenance is decoration; never fail a figure over it
        return Source(Path(path).name)
    params = p.get("parameters") if isinstance(p.get("parameters"), dict) else {}
    return Source(Path(path).name, str(p.get("stage", "")), params, p.get("seed"))


@dataclasses.dataclass(frozen=True)
class Caption:
    """What a figure shows, in words, and the stage files it was drawn from.

    ``text`` is one or two sentences (what each axis and colour is, what was fitted, on what
    data); ``notes`` say what was left out (panels skipped, channels not shown). The figure
    carries ``text``, the notes and a ``Data:`` line naming the files and seeds; the full
    parameters go to the figure's caption file for the report's collapsible block.
    """

    text: str = ""
    sources: tuple[Source, ...] = ()
    notes: tuple[str, ...] = ()

    def says(self, text: str, *notes: str) -> Caption:
        """This caption with ``text`` as its sentences (and ``notes`` added)."""
        return dataclasses.replace(self, text=text, notes=self.notes + tuple(n for n in notes if n))

    def note(self, *notes: str) -> Caption:
        """This caption with ``notes`` added (empty ones ignored)."""
        return dataclasses.replace(self, notes=self.notes + tuple(n for n in notes if n))

    def words(self) -> str:
        """The sentences and notes, without the data line."""
        return " ".join(_sentence(x) for x in (self.text, *self.notes) if x)

    def data_line(self) -> str:
        return ("Data: " + "; ".join(s.words() for s in self.sources) + ".") if self.sources else ""

    def to_dict(self) -> dict[str, Any]:
        """What the caption file holds: ``caption``, ``data`` and ``parameters`` per file."""
        return {"caption": self.words(), "data": self.data_line(),
                "parameters": {s.file: dict(s.parameters) for s in self.sources}}


def _sentence(x: str) -> str:
    x = x.strip()
    return x if not x or x[-1] in ".!?" else x + "."


def caption_from(path: str | Path, text: str = "") -> Caption:
    """A :class:`Caption` drawn from one stage file (its provenance names data, parameters,
    seed)."""
    return Caption(text, (read_source(path),))


def caption_from_many(paths: Sequence[str | Path], text: str = "") -> Caption:
    """A :class:`Caption` drawn from several stage files."""
    return Caption(text, tuple(read_source(p) for p in paths))


CAPTION_PT = 7.0  # caption font size (points)


def wrap_caption(text: str, fig_width_in: float) -> str:
    """Wrap each line of ``text`` to the characters that fit ``fig_width_in`` inches at
    :data:`CAPTION_PT` (average glyph width about 0.55 em, with a margin)."""
    width = max(30, int(fig_width_in * 72 / (CAPTION_PT * 0.55)) - 4)
    return "\n".join(w for line in text.split("\n") for w in (textwrap.wrap(line, width) or [""]))


def add_caption(fig: Any, caption: Caption | str) -> None:
    """Write the caption's words and data line under the figure, wrapped to its width, leaving
    room for it; :func:`save` writes it (with the parameters) to the caption file."""
    cap = caption if isinstance(caption, Caption) else Caption(str(caption))
    text = "\n".join(x for x in (cap.words(), cap.data_line()) if x)
    text = wrap_caption(text, fig.get_figwidth())
    n = text.count("\n") + 1
    h = fig.get_figheight()
    bottom = min(0.45, (0.62 + 0.13 * n) / h)  # tick labels + axis label + caption lines
    fig.subplots_adjust(bottom=max(fig.subplotpars.bottom, bottom))
    _clear_caption(fig, (0.1 + n * CAPTION_PT * 1.3 / 72) / h)
    fig.text(0.01, 0.01, text, fontsize=CAPTION_PT, color="#333333", ha="left", va="bottom",
             wrap=False)
    fig.neurodyn_caption = cap


def _clear_caption(fig: Any, height: float) -> None:
    """Raise the subplots until their tick labels (e.g. long rotated names) end above the
    bottom ``height`` (figure fraction) that the caption takes."""
    if not fig.axes:
        return
    renderer = fig.canvas.get_renderer()
    low = min(ax.get_tightbbox(renderer).y0 for ax in fig.axes if ax.get_visible())
    low /= fig.bbox.height
    if low < height:
        b = fig.subplotpars.bottom
        fig.subplots_adjust(bottom=min(0.6, fig.subplotpars.top - 0.2, b + height - low))


def amplitude(value: float, units: str) -> str:
    """An amplitude with its unit as a reader says it: ``3 SD`` for z-scored traces (unit "z"),
    ``3 a.u.`` when the unit is unknown, else ``3 uV``."""
    unit = {"z": "SD", "": "a.u."}.get(units or "", units)
    return f"{value:g} {unit}"


def safe_name(s: str) -> str:
    """A file-name-safe version of an id (``sim/animal0`` -> ``sim_animal0``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(s)).strip("_") or "x"


def save(fig: Any, outdir: str | Path, name: str, fmt: str = "png", *, tight: bool = False
         ) -> Path:
    """Save ``fig`` as ``outdir/name.fmt`` (under a temporary name, then renamed) and close it;
    its caption (see :func:`add_caption`) goes to ``outdir/name.fmt.json``. Returns the path."""
    if fmt not in FORMATS:
        raise ParamError("format", f"unknown figure format {fmt!r}; one of {FORMATS}")
    path = Path(outdir) / f"{safe_name(name)}.{fmt}"
    cap = getattr(fig, "neurodyn_caption", None)
    try:
        with atomic_path(path, option="--outdir") as tmp:
            fig.savefig(tmp, format=fmt, **({"bbox_inches": "tight"} if tight else {}))
        side = Path(str(path) + CAPTION_SUFFIX)
        if cap is not None:
            with atomic_path(side, option="--outdir") as tmp:
                Path(tmp).write_text(json.dumps(cap.to_dict(), default=str, indent=1),
                                     encoding="utf-8")
        elif side.exists():
            side.unlink()
    finally:
        plt.close(fig)
    return path
