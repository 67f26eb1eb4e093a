"""Joint HMM-GLM fits: one model over all recordings of a file (``neurodyn states --joint``).

The recordings are stacked along time; each keeps its own sequences (its trials, or the
whole recording), so history, the forward-backward recursions and the held-out blocks
never cross a recording boundary, and every recording contributes training and held-out
bins. All recordings must have the same channel labels in the same order and resolve to the
same observation model. A neuron is dropped only when it is silent (no spike, or constant
trace) in every recording; a neuron silent in some recordings only is kept. Traces under
the Gaussian model are z-scored per recording (a constant trace becomes zeros there).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from neurodyn.errors import InputError
from neurodyn.hmmglm.result import JOINT as JOINT_GROUP
from neurodyn.io.store import group_name

log = logging.getLogger("neurodyn.hmmglm")


@dataclasses.dataclass
class Stacked:
    """Recordings stacked along time for a joint fit.

    Attributes
    ----------
    y : array (T, N) float32
        Observations of all recordings, in order, kept neurons only.
    starts, stops : int64 arrays (S,)
        Sequence ranges (rows of ``y``); each lies within one recording.
    bounds : int64 array (R + 1,)
        Recording ``r`` owns rows ``bounds[r]:bounds[r + 1]``.
    observation : str
        The shared observation model.
    labels, dropped : list of str
        Kept and dropped channel labels.
    """

    y: np.ndarray
    starts: np.ndarray
    stops: np.ndarray
    bounds: np.ndarray
    observation: str
    labels: list[str]
    dropped: list[str]

    def part(self, r: int) -> tuple[int, int]:
        """Row range ``(a, b)`` of recording ``r``."""
        return int(self.bounds[r]), int(self.bounds[r + 1])

    def sequences_of(self, r: int) -> np.ndarray:
        """Boolean mask (S,) of the sequences of recording ``r``."""
        a, b = self.part(r)
        return (self.starts >= a) & (self.stops <= b)


def stack(recs, observations, sequences, source: Path) -> Stacked:
    """Check and stack recordings for a joint fit.

    Parameters
    ----------
    recs : list of Recording
    observations : callable
        ``observations(rec) -> (y (T, N) float32, observation name, alive (N,) bool)``.
    sequences : callable
        ``sequences(rec, T) -> (starts, stops)`` of one recording.
    source : Path
        The input file (named in errors).

    Raises
    ------
    InputError
        Naming the file and the first recording whose labels or observation model differ
        from the first recording's, or when no neuron is active in any recording.
    """
    if not recs:
        raise InputError(source, "holds no recordings to fit")
    first = recs[0]
    labels = [str(x) for x in first.labels]
    ys, alive, obs0 = [], np.zeros(len(labels), dtype=bool), None
    starts, stops, bounds = [], [], [0]
    for rec in recs:
        where = f"{source} [{rec.id}]"
        if group_name(rec.id) == JOINT_GROUP:
            raise InputError(where, f"a recording named {JOINT_GROUP!r} clashes with the "
                                    f"/{JOINT_GROUP} group of a joint fit; use --per-recording")
        lab = [str(x) for x in rec.labels]
        if lab != labels:
            diff = _first_difference(labels, lab)
            raise InputError(where, f"--joint needs the same channels in the same order as "
                                    f"[{first.id}], but {diff}; select channels or fit "
                                    "--per-recording")
        y, obs, a = observations(rec)
        if obs0 is None:
            obs0 = obs
        elif obs != obs0:
            raise InputError(where, f"resolves to the {obs} observation model but [{first.id}] "
                                    f"to {obs0}; --joint needs one model (set --observation "
                                    "or fit --per-recording)")
        st, sp = sequences(rec, y.shape[0])
        starts.append(st + bounds[-1])
        stops.append(sp + bounds[-1])
        bounds.append(bounds[-1] + y.shape[0])
        ys.append(y)
        alive |= a
    if not alive.any():
        raise InputError(source, "no neuron has any spike (or variance) in any recording")
    dropped = [x for x, a in zip(labels, alive) if not a]
    if dropped:
        log.warning("%s: dropping %d neuron(s) silent in every recording: %s", source,
                    len(dropped), ", ".join(dropped[:10]))
    y = np.ascontiguousarray(np.concatenate([v[:, alive] for v in ys]), dtype=np.float32)
    return Stacked(y, np.concatenate(starts), np.concatenate(stops),
                   np.asarray(bounds, np.int64), obs0,
                   [x for x, a in zip(labels, alive) if a], dropped)


def _first_difference(ref: list[str], lab: list[str]) -> str:
    if len(ref) != len(lab):
        return f"it has {len(lab)} channels instead of {len(ref)}"
    i = next(i for i, (a, b) in enumerate(zip(ref, lab)) if a != b)
    return f"channel {i} is {lab[i]!r} instead of {ref[i]!r}"
