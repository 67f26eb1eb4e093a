"""A stand-in for the HBN resting EEG release: one small HBN-layout EEGLAB file per subject.

Layout (as the HBN raw release, read by :func:`neurodyn.io.readers.eeg.read_eeglab`, which
names the subject from its ``NDAR...`` folder)::

    DIR/NDARSIM00001/EEG/raw/RestingState.set   129 channels E1..E128 + Cz, volts
    ...
    DIR/participants.tsv                          participant_id, age, sex

Events are the resting paradigm's markers, ``'20  '`` (eyes open, 20 s) and ``'30  '`` (eyes
closed, 40 s), alternating; eyes-closed stretches carry a stronger posterior alpha rhythm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from neurodyn.params import ParamError
from neurodyn.progress import progress

HBN_CHANNELS = [f"E{i}" for i in range(1, 129)] + ["Cz"]


def subject_ids(n: int) -> list[str]:
    """``NDARSIM00001`` ... (the HBN GUID pattern ``NDAR`` + 8 capitals/digits)."""
    return [f"NDARSIM{k:05d}" for k in range(1, n + 1)]


def simulate_rest(fs: float, duration_s: float, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """One subject: (129, T) float64 volts with pink-ish noise and eyes-closed alpha, and the
    marker list [(onset s, code)]."""
    T = int(round(fs * duration_s))
    t = np.arange(T) / fs
    markers, onset, code = [], 0.0, "20  "
    closed = np.zeros(T, bool)
    while onset < duration_s:
        markers.append((onset, code))
        length = 20.0 if code == "20  " else 40.0
        if code == "30  ":
            closed[(t >= onset) & (t < onset + length)] = True
        onset += length
        code = "30  " if code == "20  " else "20  "
    white = rng.standard_normal((len(HBN_CHANNELS), T))
    pink = np.cumsum(white, axis=1)
    pink -= np.linspace(0, 1, T)[None, :] * pink[:, -1:]  # no drift
    pink /= pink.std(axis=1, keepdims=True)
    weight = np.linspace(0.2, 1.0, len(HBN_CHANNELS))[:, None]  # later channels ~ posterior
    alpha = np.sin(2 * np.pi * rng.uniform(9, 11) * t + rng.uniform(0, 2 * np.pi))
    x = 0.5 * pink + white + weight * alpha[None, :] * np.where(closed, 3.0, 0.5)[None, :]
    return 1e-5 * x, markers


def write_cohort(out: str | Path, n_subjects: int, *, fs: float = 500.0, duration_s: float = 60.0,
                 seed: int = 0) -> list[Path]:
    """Write ``n_subjects`` HBN-layout files under ``out`` (see the module docstring).

    Returns the written ``RestingState.set`` paths.
    """
    import mne

    if n_subjects < 1:
        raise ParamError("subjects", f"must be at least 1, got {n_subjects}")
    if duration_s * fs < 10 * fs or fs <= 0:
        raise ParamError("duration", f"need at least 10 s of data, got {duration_s} s at {fs} Hz")
    out = Path(out)
    ids = subject_ids(n_subjects)
    paths = []
    rng = np.random.default_rng(seed)
    for sid in progress(ids, desc="simulate eeg", unit="subject"):
        x, markers = simulate_rest(fs, duration_s, np.random.default_rng([seed, int(sid[-5:])]))
        raw = mne.io.RawArray(x, mne.create_info(HBN_CHANNELS, fs, "eeg"), verbose="error")
        on, codes = zip(*markers)
        raw.set_annotations(mne.Annotations(list(on), [0.0] * len(on), list(codes)))
        path = out / sid / "EEG" / "raw" / "RestingState.set"
        path.parent.mkdir(parents=True, exist_ok=True)
        mne.export.export_raw(str(path), raw, fmt="eeglab", overwrite=True, verbose="error")
        paths.append(path)
    pd.DataFrame({"participant_id": ids, "age": rng.uniform(5, 21, n_subjects).round(1),
                  "sex": rng.choice(["M", "F"], n_subjects)}).to_csv(
        out / "participants.tsv", sep="\t", index=False)
    return paths
