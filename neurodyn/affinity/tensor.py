"""Assemble the (pair, window, animal) affinity tensor from several recordings.

Animals are aligned by neuron label. A neuron absent from an animal is *masked* for every
pair it belongs to (mask False, value 0), never treated as a zero affinity. The tensor is built
and kept as its observed entries (:class:`neurodyn.tensor.observed.ObservedTensor`: per animal,
the pairs of its own neurons over all windows), never as a dense ``(P, W, A)`` array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from neurodyn.affinity.kernels import KINDS, windowed_affinity
from neurodyn.affinity.signals import prepare
from neurodyn.affinity.windows import make_windows, window_samples
from neurodyn.errors import InputError
from neurodyn.params import ParamError
from neurodyn.progress import progress
from neurodyn.recording import Recording
from neurodyn.signal.recordings import resample
from neurodyn.tensor.observed import ObservedTensor


@dataclass
class AffinityTensor:
    """Windowed pairwise affinities of several animals.

    Attributes
    ----------
    observed : ObservedTensor
        Window-averaged affinity per neuron pair, window and animal, shape (P, W, A), stored as
        each animal's observed pairs; an entry is observed when both neurons are recorded in
        that animal and the window has enough jointly observed samples. ``affinity`` and
        ``mask`` give the dense arrays (for small tensors; refused when too large).
    pairs : int64 array (P, 2)
        Upper-triangle neuron index pairs ``i < j`` into ``labels``.
    labels : list of str (N,)
    windows : float64 array (W, 2)
        Window start/end in seconds.
    animals : list of str (A,)
        Recording ids.
    present : bool array (A, N)
        Which neurons each animal has.
    events : DataFrame
        onset, offset (s), label, animal: the events of every animal.
    fs : float
        Common sampling rate used (Hz).
    """

    observed: ObservedTensor
    pairs: np.ndarray
    labels: list[str]
    windows: np.ndarray
    animals: list[str]
    present: np.ndarray
    events: pd.DataFrame
    fs: float
    _dense: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """Dense affinity float32 (P, W, A) (0 where unobserved) and mask bool (P, W, A),
        computed once; :class:`neurodyn.params.ParamError` when they would not fit in memory."""
        if self._dense is None:
            self._dense = self.observed.to_dense()
        return self._dense

    @property
    def affinity(self) -> np.ndarray:
        """Dense float32 (P, W, A), 0 where unobserved (see :meth:`dense`)."""
        return self.dense()[0]

    @property
    def mask(self) -> np.ndarray:
        """Dense bool (P, W, A), True where observed (see :meth:`dense`)."""
        return self.dense()[1]


def upper_pairs(n: int) -> np.ndarray:
    """All pairs ``(i, j)`` with ``i < j < n`` in row-major upper-triangle order, (P, 2) int64."""
    i, j = np.triu_indices(n, k=1)
    return np.stack([i, j], axis=1).astype(np.int64)


def _labelled(rec: Recording) -> np.ndarray:
    info = rec.channel_info
    if info is not None and "is_labeled" in info.columns:
        return info["is_labeled"].to_numpy(dtype=bool)
    return np.ones(rec.n_channels, dtype=bool)


def _is_regular(rec: Recording, tol: float = 0.01) -> bool:
    if rec.time is None or rec.n_samples < 3:
        return True
    dt = np.diff(rec.time)
    return bool(np.max(np.abs(dt * rec.fs - 1.0)) <= tol)


def common_rate(recs: Sequence[Recording], fs: float | None) -> tuple[list[Recording], float]:
    """Put every recording on a regular grid at one rate.

    With ``fs`` given, all recordings are resampled to it. Otherwise, when all share one rate
    (within 0.1 %) on regular grids they are used as they are; if not, all are resampled
    (linear interpolation, :func:`neurodyn.signal.recordings.resample`) to the lowest native rate.
    """
    rates = np.array([r.fs for r in recs])
    if fs is None:
        same = np.all(np.abs(rates / rates[0] - 1.0) < 1e-3)
        if same and all(_is_regular(r) for r in recs):
            return list(recs), float(rates[0])
        fs = float(rates.min())
    return [resample(r, fs) for r in recs], float(fs)


def align_neurons(
    recs: Sequence[Recording], align: str, keep_unlabelled: bool
) -> tuple[list[str], list[np.ndarray]]:
    """Shared neuron list and, per animal, the column of each shared neuron (-1 if absent).

    Parameters
    ----------
    align : {"union", "intersection"}
        ``union`` keeps every neuron recorded in at least one animal (absent ones masked);
        ``intersection`` keeps only neurons recorded in all animals.
    keep_unlabelled : bool
        Keep unlabelled ROIs (``channel_info.is_labeled == False``); they cannot be matched
        across animals, so each is named ``"<animal id>:<label>"`` and observed in one animal.
    """
    if align not in ("union", "intersection"):
        raise ParamError("align", f"must be union or intersection, got {align!r}")
    names_per = []
    for r in recs:
        lab = _labelled(r)
        names = {}
        for k, name in enumerate(r.labels):
            if lab[k]:
                names[name] = k
            elif keep_unlabelled:
                names[f"{r.id}:{name}"] = k
        names_per.append(names)
    sets = [set(n) for n in names_per]
    shared = set.union(*sets) if align == "union" else set.intersection(*sets)
    labels = sorted(shared)
    if len(labels) < 2:
        raise ParamError(
            "align", f"only {len(labels)} neuron(s) left after {align} alignment of {len(recs)} "
            "animals (are neurons labelled? try --keep-unlabelled or --align union)"
        )
    cols = [np.array([n.get(x, -1) for x in labels], dtype=np.int64) for n in names_per]
    return labels, cols


def build_affinity_tensor(
    recs: Sequence[Recording],
    *,
    kernel: str = "differential",
    window_s: float = 8.0,
    step_s: float = 4.0,
    smooth_s: float = 0.5,
    sigma: float = 2.0,
    min_fraction: float = 0.5,
    align: str = "union",
    keep_unlabelled: bool = False,
    fs: float | None = None,
) -> AffinityTensor:
    """Compute the windowed affinity tensor of several recordings (one per animal).

    Parameters
    ----------
    recs : sequence of Recording
        One per animal, neurons named by canonical label.
    kernel : {"differential", "pearson", "gaussian"}
        See :mod:`neurodyn.affinity.kernels`.
    window_s, step_s : float
        Window width and step in seconds.
    smooth_s : float
        Gaussian smoothing (s.d. in seconds) of traces before derivatives/values are compared.
    sigma : float
        Kernel width in robust-scale units (differential and gaussian kernels).
    min_fraction : float
        A window is observed for a pair when at least this fraction of its samples are jointly
        observed (at least 3 samples for Pearson).
    align, keep_unlabelled : see :func:`align_neurons`.
    fs : float, optional
        Common rate in Hz; see :func:`common_rate`.
    """
    if kernel not in KINDS:
        raise ParamError("kernel", f"unknown kernel {kernel!r}; one of {sorted(KINDS)}")
    if not sigma > 0:
        raise ParamError("sigma", f"must be positive, got {sigma}")
    if not 0 < min_fraction <= 1:
        raise ParamError("min_fraction", f"must be in (0, 1], got {min_fraction}")
    if not recs:
        raise InputError(None, "no recordings to compute affinities from")
    recs, rate = common_rate(recs, fs)
    labels, cols = align_neurons(recs, align, keep_unlabelled)
    N, A = len(labels), len(recs)
    pairs = upper_pairs(N)
    t0 = min(float(r.times[0]) for r in recs)
    t1 = max(float(r.times[-1]) + 1.0 / rate for r in recs)
    windows = make_windows(t0, t1, window_s, step_s)
    P, W = len(pairs), len(windows)
    blocks: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    present = np.zeros((A, N), dtype=bool)
    events = []
    floor = 3 if kernel == "pearson" else 1
    for a, rec in enumerate(progress(recs, desc="affinity")):
        col = cols[a]
        present[a] = col >= 0
        x = np.zeros((rec.n_samples, N), dtype=np.float64)
        obs = np.zeros((rec.n_samples, N), dtype=bool)
        have = np.flatnonzero(col >= 0)
        x[:, have] = rec.data[:, col[have]]
        obs[:, have] = rec.observed[:, col[have]]
        s = prepare(x, obs, rate, kernel, smooth_s)
        start, stop = window_samples(rec.times, windows)
        n_win = stop - start
        min_count = np.maximum(np.ceil(min_fraction * n_win), floor).astype(np.int64)
        # only the pairs this animal has: a worm with 8 of 300 neurons costs 28 pairs, not 44,850
        sub = np.flatnonzero(present[a][pairs[:, 0]] & present[a][pairs[:, 1]])
        sub_aff = np.zeros((sub.size, W), dtype=np.float32)
        sub_ok = np.zeros((sub.size, W), dtype=bool)
        windowed_affinity(
            s, np.ascontiguousarray(obs.T), pairs[sub, 0], pairs[sub, 1], start, stop,
            min_count, KINDS[kernel], float(sigma), sub_aff, sub_ok,
        )
        for part, arr in zip(blocks, (sub, sub_aff, sub_ok), strict=True):
            part.append(arr)
        ev = rec.events[["onset", "offset", "label"]].copy()
        ev["animal"] = rec.id
        events.append(ev)
    events_df = pd.concat(events, ignore_index=True) if events else pd.DataFrame()
    return AffinityTensor(
        observed=ObservedTensor.from_blocks((P, W, A), *blocks), pairs=pairs, labels=labels, windows=windows,
        animals=[r.id for r in recs], present=present, events=events_df, fs=rate,
    )


def pairs_to_matrix(values: np.ndarray, pairs: np.ndarray, n: int) -> np.ndarray:
    """Unfold per-pair values (P,) into a symmetric (n, n) matrix with zero diagonal."""
    m = np.zeros((n, n), dtype=np.float64)
    m[pairs[:, 0], pairs[:, 1]] = values
    m[pairs[:, 1], pairs[:, 0]] = values
    return m


def observed_means(t: ObservedTensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean over observed entries: per pair (P,) over windows and animals, and per window and
    animal (W, A) over pairs (NaN where nothing is observed)."""
    P, W, A = t.shape
    sums = t.values.sum(axis=1, dtype=np.float64)  # 0 where unobserved
    counts = t.mask.sum(axis=1)
    n_pair = np.bincount(t.pair_index, weights=counts, minlength=P)
    s_pair = np.bincount(t.pair_index, weights=sums, minlength=P)
    n_win = np.zeros((W, A))
    s_win = np.zeros((W, A))
    for k in range(A):
        lo, hi = t.offsets[k], t.offsets[k + 1]
        n_win[:, k] = t.mask[lo:hi].sum(axis=0)
        s_win[:, k] = t.values[lo:hi].sum(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_pair = np.where(n_pair > 0, s_pair / n_pair, np.nan)
        per_window = np.where(n_win > 0, s_win / n_win, np.nan)
    return per_pair, per_window
