"""Package simulated HMM-GLM data as a :class:`~neurodyn.recording.Recording`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurodyn.recording import Recording


def state_events(states: np.ndarray, fs: float) -> pd.DataFrame:
    """Intervals (s) of constant state as an events table labelled ``state <k>``."""
    z = np.asarray(states)
    change = np.flatnonzero(np.diff(z)) + 1
    on = np.concatenate([[0], change])
    off = np.concatenate([change, [z.size]])
    return pd.DataFrame({"onset": on / fs, "offset": off / fs,
                         "label": [f"state {int(z[i])}" for i in on]})


def to_recording(y: np.ndarray, truth: dict, *, fs: float = 100.0, rec_id: str = "hmmglm/sim",
                 seq_len: int = 0) -> Recording:
    """A ``spikes`` recording of counts ``y`` (T, N); true state intervals become events."""
    N = y.shape[1]
    return Recording(traces=y, labels=[f"n{i:02d}" for i in range(N)], modality="spikes", fs=fs,
                     units="counts", id=rec_id, subject="sim", dataset="simulate-hmmglm",
                     events=state_events(truth["states"], fs),
                     meta={"sequence_length": int(seq_len), "bin_s": 1.0 / fs})


def to_recordings(y: np.ndarray, truth: dict, n_recordings: int = 1, *, fs: float = 100.0,
                  seq_len: int = 0, rec_id: str = "hmmglm/sim") -> list[Recording]:
    """Split simulated trials into ``n_recordings`` consecutive recordings of one model.

    With one recording, :func:`to_recording` of everything (id ``rec_id``); otherwise the
    trials (``truth["starts"]``) are dealt out in contiguous blocks as evenly as possible,
    ids ``<rec_id>/rec0``, ``<rec_id>/rec1``, ...
    """
    if n_recordings <= 1:
        return [to_recording(y, truth, fs=fs, rec_id=rec_id, seq_len=seq_len)]
    starts, stops = np.asarray(truth["starts"]), np.asarray(truth["stops"])
    if n_recordings > starts.size:
        raise ValueError("more recordings than trials")
    recs = []
    for r, seqs in enumerate(np.array_split(np.arange(starts.size), n_recordings)):
        a, b = int(starts[seqs[0]]), int(stops[seqs[-1]])
        part = {"states": np.asarray(truth["states"])[a:b]}
        recs.append(to_recording(y[a:b], part, fs=fs, rec_id=f"{rec_id}/rec{r}",
                                 seq_len=seq_len))
    return recs
