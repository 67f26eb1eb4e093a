"""Cross-method timeline: HMM-GLM states, bi-clustering states and NTF temporal factors.

Aligns, for one recording, the HMM-GLM state posterior (``states.h5``), the bi-clustering
state sequence (``bicluster.h5``) and the NTF temporal factors (``ntf.h5``, shared by all
animals) on one time axis in seconds, with the recording's events, and scores the agreement
of the two state partitions (adjusted Rand index, normalized mutual information).

Each piece is optional; the files are read through their stages' result modules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodyn.analysis.rundir import (
    BICLUSTER_FILES,
    NTF_FILES,
    STATE_FILES,
    find_file,
    recording_file,
)
from neurodyn.bicluster import result as bicluster_result
from neurodyn.errors import InputError
from neurodyn.hmmglm import result as states_result
from neurodyn.io.groups import GroupTree
from neurodyn.io.store import read_recordings
from neurodyn.tensor import result as ntf_result


# -- pure functions -------------------------------------------------------------------------
def partition_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Adjusted Rand index and normalized mutual information of two labelings.

    Parameters
    ----------
    a, b : int arrays (T,)
        State labels per time bin (any integers; label identities need not match).

    Returns
    -------
    ari, nmi : float
        NaN when fewer than two samples.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    a = np.asarray(a).ravel()
    b = np.asarray(b).ravel()
    if a.shape != b.shape:
        raise ValueError(f"labelings differ in length: {a.shape} vs {b.shape}")
    if a.size < 2:
        return float("nan"), float("nan")
    return float(adjusted_rand_score(a, b)), float(normalized_mutual_info_score(a, b))


def resample_labels(t_src: np.ndarray, z_src: np.ndarray, t_dst: np.ndarray) -> np.ndarray:
    """Discrete labels sampled at ``t_dst`` by the last source sample at or before each time.

    Parameters
    ----------
    t_src : array (S,)
        Increasing source times (s).
    z_src : int array (S,)
    t_dst : array (D,)
        Target times (s); times before ``t_src[0]`` take the first label.

    Returns
    -------
    int array (D,)
    """
    t_src = np.asarray(t_src, dtype=float)
    idx = np.searchsorted(t_src, np.asarray(t_dst, dtype=float), side="right") - 1
    return np.asarray(z_src)[np.clip(idx, 0, t_src.size - 1)]


def common_grid(t_a: np.ndarray, t_b: np.ndarray) -> np.ndarray:
    """The times of the coarser of two grids that fall inside both grids' spans (s)."""
    t_a = np.asarray(t_a, dtype=float)
    t_b = np.asarray(t_b, dtype=float)
    base = t_a if t_a.size <= t_b.size else t_b
    lo, hi = max(t_a[0], t_b[0]), min(t_a[-1], t_b[-1])
    return base[(base >= lo) & (base <= hi)]


def align_partitions(t_a: np.ndarray, z_a: np.ndarray, t_b: np.ndarray, z_b: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both state sequences sampled on :func:`common_grid` (times, labels a, labels b)."""
    grid = common_grid(t_a, t_b)
    return grid, resample_labels(t_a, z_a, grid), resample_labels(t_b, z_b, grid)


def match_labels(ref: np.ndarray, other: np.ndarray) -> dict[int, int]:
    """Relabeling of ``other`` that best matches ``ref`` (maximum overlap, Hungarian method).

    Parameters
    ----------
    ref, other : int arrays (T,), same time grid

    Returns
    -------
    dict old label -> new label; labels of ``other`` left unmatched get fresh labels above
    ``max(ref)``.
    """
    from scipy.optimize import linear_sum_assignment

    ref = np.asarray(ref)
    other = np.asarray(other)
    r_lab, r_idx = np.unique(ref, return_inverse=True)
    o_lab, o_idx = np.unique(other, return_inverse=True)
    overlap = np.zeros((o_lab.size, r_lab.size))
    np.add.at(overlap, (o_idx, r_idx), 1)
    rows, cols = linear_sum_assignment(-overlap)
    mapping = {int(o_lab[i]): int(r_lab[j]) for i, j in zip(rows, cols)}
    fresh = int(r_lab.max()) + 1 if r_lab.size else 0
    for lab in o_lab:
        if int(lab) not in mapping:
            mapping[int(lab)] = fresh
            fresh += 1
    return mapping


# -- data ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Timeline:
    """Everything the cross-method timeline shows for one recording.

    Attributes
    ----------
    recording : str
    hmm_time : array (T,) s, hmm_posterior : array (T, K), hmm_states : int array (T,)
    bic_time : array (S,) s, bic_states : int array (S,)
    ntf_time : array (W,) s (window centres), ntf_factors : array (W, R), ntf_labels : list[str]
    events : DataFrame (onset, offset, label; s)
    ari, nmi : float, agreement of HMM-GLM and bi-clustering states (NaN if either is absent)
    sources : dict name -> file used
    notes : list[str]
    """

    recording: str
    hmm_time: np.ndarray | None = None
    hmm_posterior: np.ndarray | None = None
    hmm_states: np.ndarray | None = None
    bic_time: np.ndarray | None = None
    bic_states: np.ndarray | None = None
    ntf_time: np.ndarray | None = None
    ntf_factors: np.ndarray | None = None
    ntf_labels: list[str] = dataclasses.field(default_factory=list)
    events: pd.DataFrame | None = None
    ari: float = float("nan")
    nmi: float = float("nan")
    sources: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def n_panels(self) -> int:
        return sum(x is not None for x in (self.hmm_posterior, self.bic_states, self.ntf_factors))


def _time_axis(fit: GroupTree, n: int, rec_times: np.ndarray | None) -> np.ndarray:
    """Times (s) of ``n`` bins of a per-recording group: stored, recording's, or from fs."""
    t = fit.time
    if t is not None and np.ndim(t) == 1 and len(t) == n:
        return np.asarray(t, dtype=float)
    if rec_times is not None and len(rec_times) == n:
        return np.asarray(rec_times, dtype=float)
    if fit.attr("fs") is not None:
        return np.arange(n) / float(fit.attr("fs"))
    if rec_times is not None and len(rec_times) > 1:
        # binned: spread n bins over the recording's span
        return np.linspace(rec_times[0], rec_times[-1], n)
    return np.arange(n, dtype=float)


def _state_labels(z: np.ndarray) -> np.ndarray:
    """A (T,) label sequence from a (T,), or a (samples, T) array (per-time mode)."""
    z = np.asarray(z)
    if z.ndim == 1:
        return z.astype(np.int64)
    z = z.reshape(-1, z.shape[-1]).astype(np.int64)
    z = z - z.min()
    counts = np.apply_along_axis(np.bincount, 0, z, minlength=int(z.max()) + 1)
    return counts.argmax(0)


def _recording_info(path: Path | None, rid: str) -> tuple[np.ndarray | None, pd.DataFrame | None]:
    """Time stamps (s) and events of recording ``rid`` (None when unavailable)."""
    if path is None:
        return None, None
    try:
        rec = read_recordings(path, [rid], lazy=True)[0]
    except Exception:
        return None, None
    return rec.times, rec.events


def recording_ids(rundir: Path) -> list[str]:
    """Recordings that have HMM-GLM or bi-clustering output in ``rundir``."""
    ids: list[str] = []
    for names, result in ((STATE_FILES, states_result), (BICLUSTER_FILES, bicluster_result)):
        p = find_file(rundir, names)
        if p is not None:
            ids += [rid for rid in result.ids(p) if rid not in ids]
    return ids


def _fit(result: Any, path: Path, recording: str, tl: Timeline) -> Any:
    """The group of ``recording`` in a states or bicluster file (None, with a note, when
    the file has none)."""
    try:
        fit = result.read(path, [recording]).get(recording)
    except InputError as exc:
        tl.notes.append(str(exc))
        return None
    if fit is None:
        tl.notes.append(f"{path.name} has no group for {recording}")
    return fit


def load_timeline(rundir: str | Path, recording: str) -> Timeline:
    """Assemble the timeline of one recording from the stage files present in ``rundir``."""
    rundir = Path(rundir)
    tl = Timeline(recording=recording)
    states_p = find_file(rundir, STATE_FILES)
    bic_p = find_file(rundir, BICLUSTER_FILES)
    ntf_p = find_file(rundir, NTF_FILES)
    rec_p = recording_file(rundir, states_p or bic_p)
    rec_times, tl.events = _recording_info(rec_p, recording)
    if rec_p is not None:
        tl.sources["recordings"] = rec_p.name
    fit = None if states_p is None else _fit(states_result, states_p, recording, tl)
    if fit is not None:
        post, vit = fit.posterior, fit.viterbi
        if post is not None and post.ndim == 2:
            tl.hmm_posterior = np.asarray(post, dtype=float)
            tl.hmm_states = (np.asarray(vit).astype(np.int64).ravel()
                             if vit is not None and np.size(vit) == post.shape[0]
                             else tl.hmm_posterior.argmax(1))
        elif vit is not None:
            tl.hmm_states = np.asarray(vit).astype(np.int64).ravel()
        if tl.hmm_states is not None:
            tl.hmm_time = _time_axis(fit, tl.hmm_states.size, rec_times)
            tl.sources["states"] = states_p.name
    fit = None if bic_p is None else _fit(bicluster_result, bic_p, recording, tl)
    if fit is not None:
        z = fit.state_sequence
        if z is not None and np.size(z) > 0:
            tl.bic_states = _state_labels(z)
            tl.bic_time = _time_axis(fit, tl.bic_states.size, rec_times)
            tl.sources["bicluster"] = bic_p.name
    if ntf_p is not None:
        _load_ntf(ntf_p, tl)
    if tl.hmm_states is not None and tl.bic_states is not None:
        _, a, b = align_partitions(tl.hmm_time, tl.hmm_states, tl.bic_time, tl.bic_states)
        tl.ari, tl.nmi = partition_agreement(a, b)
        if a.size:  # same color for matching states in both rows (scores are label-invariant)
            mapping = match_labels(a, b)
            tl.bic_states = np.array([mapping.get(int(x), int(x)) for x in tl.bic_states])
            tl.notes.append("bi-clustering states are relabelled to best match the HMM-GLM "
                            "states (colors agree; ARI and NMI are label-invariant)")
    return tl


def _load_ntf(path: Path, tl: Timeline) -> None:
    try:
        ntf = ntf_result.read(path)
    except InputError as exc:
        tl.notes.append(str(exc))
        return
    time = ntf.factors.get("time")
    if time is None or np.ndim(time) != 2:
        tl.notes.append(f"{path.name} has no /factors/time")
        return
    W = time.shape[0]
    win = ntf.windows
    if np.ndim(win) == 2 and win.shape[0] == W:
        centres = np.asarray(win, dtype=float).mean(1)
    else:
        centres = np.arange(W, dtype=float)
        tl.notes.append(f"{path.name}: no window times; NTF factors shown by window index")
    if tl.events is None and len(ntf.events):
        tl.events = _distinct_events(ntf.events)
    tl.ntf_time = centres
    tl.ntf_factors = np.asarray(time, dtype=float)
    tl.ntf_labels = [f"component {r}" for r in range(time.shape[1])]
    tl.sources["ntf"] = path.name


def _distinct_events(ev: pd.DataFrame) -> pd.DataFrame | None:
    """The distinct (onset, offset, label) events of a stage file's events table, or None."""
    if not {"onset", "offset", "label"} <= set(ev.columns):
        return None
    return ev.drop_duplicates(subset=["onset", "offset", "label"]).reset_index(drop=True)


def load_timelines(rundir: str | Path, max_recordings: int | None = None) -> list[Timeline]:
    """Timelines of every recording with state outputs (or one NTF-only timeline)."""
    rundir = Path(rundir)
    ids = recording_ids(rundir)
    if max_recordings is not None:
        ids = ids[:max_recordings]
    if not ids and find_file(rundir, NTF_FILES) is not None:
        tl = Timeline(recording="all animals")
        _load_ntf(find_file(rundir, NTF_FILES), tl)
        return [tl] if tl.ntf_factors is not None else []
    return [load_timeline(rundir, rid) for rid in ids]


def agreement_table(timelines: Sequence[Timeline]) -> list[dict[str, Any]]:
    """Rows ``{recording, ari, nmi, hmm_states, bicluster_states}`` for the report."""
    rows = []
    for tl in timelines:
        rows.append({
            "recording": tl.recording,
            "ari": tl.ari,
            "nmi": tl.nmi,
            "hmm_states": None if tl.hmm_states is None else int(np.unique(tl.hmm_states).size),
            "bicluster_states": None if tl.bic_states is None else int(np.unique(tl.bic_states).size),
        })
    return rows
