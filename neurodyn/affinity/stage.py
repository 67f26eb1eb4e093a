"""The ``affinity`` stage: recordings.h5 -> affinity.h5."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurodyn.affinity.events import write_events
from neurodyn.affinity.tensor import AffinityTensor, build_affinity_tensor
from neurodyn.io.store import atomic_h5, put, read_recordings


def run(
    input_path: Path,
    out: Path,
    *,
    seed: int = 0,
    kernel: str = "differential",
    window: float = 8.0,
    step: float = 4.0,
    smooth: float = 0.5,
    sigma: float = 2.0,
    min_fraction: float = 0.5,
    align: str = "union",
    keep_unlabelled: bool = False,
    fs: float | None = None,
    recording: list[str] | None = None,
) -> Path:
    """Compute windowed pairwise affinities of every recording in ``input_path``.

    Parameters
    ----------
    input_path : Path
        A recordings file (``neurodyn ingest`` / ``neurodyn simulate``), one recording per animal.
    out : Path
        ``affinity.h5`` to write (stage ``"affinity"``).
    seed : int
        Recorded only (the stage is deterministic).
    kernel, window, step, smooth, sigma, min_fraction, align, keep_unlabelled, fs, recording
        Named like the CLI options: ``kernel``, ``window`` (s), ``step`` (s), ``smooth`` (s),
        ``sigma``, ``min_fraction``, ``align``, ``keep_unlabelled``, ``fs`` (see
        :func:`~neurodyn.affinity.tensor.build_affinity_tensor`, where window/step/smooth are
        ``window_s``/``step_s``/``smooth_s``) and ``recording`` (list of recording ids to use;
        default all).

    Output layout
    -------------
    ``/affinity`` (P, W, A) float32, ``/mask`` (P, W, A) bool (True = observed), ``/pairs``
    (P, 2) int64, ``/labels`` (N,), ``/windows`` (W, 2) seconds, ``/animals`` (A,),
    ``/present`` (A, N) bool, ``/events`` table (onset, offset, label, animal); attrs
    ``kernel``, ``fs``, ``n_neurons``, ``n_pairs``, ``n_windows``, ``n_animals``, ``formula``.
    """
    p = dict(kernel=kernel, window=window, step=step, smooth=smooth, sigma=sigma,
             min_fraction=min_fraction, align=align, keep_unlabelled=keep_unlabelled, fs=fs,
             recording=list(recording) if recording else None)
    recs = read_recordings(input_path, ids=p["recording"] or None)
    tens = build_affinity_tensor(
        recs, kernel=p["kernel"], window_s=float(p["window"]), step_s=float(p["step"]),
        smooth_s=float(p["smooth"]), sigma=float(p["sigma"]), min_fraction=float(p["min_fraction"]),
        align=p["align"], keep_unlabelled=bool(p["keep_unlabelled"]),
        fs=None if p["fs"] is None else float(p["fs"]),
    )
    with atomic_h5(out, stage="affinity", params=p, inputs=[input_path], seed=seed) as f:
        write_affinity(f, tens, p["kernel"])
    return Path(out)


FORMULAS = {
    "differential": "a_ij(t) = sqrt(max(0, d_i d_j)) * exp(-(d_i - d_j)^2 / (2 sigma^2)), d = smoothed "
    "derivative / (1.4826 MAD); stand-in for Dyballa et al. 2024 (exact published formula not used)",
    "pearson": "max(0, Pearson r) of smoothed values within each window",
    "gaussian": "exp(-(z_i - z_j)^2 / (2 sigma^2)) on robust z-scored smoothed values",
}


def write_affinity(f: Any, t: AffinityTensor, kernel: str) -> None:
    """Write an :class:`AffinityTensor` at the root of an open HDF5 file."""
    put(f, "affinity", t.affinity)
    put(f, "mask", t.mask)
    put(f, "pairs", t.pairs)
    put(f, "labels", np.array(t.labels, dtype=object))
    put(f, "windows", t.windows)
    put(f, "animals", np.array(t.animals, dtype=object))
    put(f, "present", t.present)
    write_events(f.create_group("events"), t.events)
    P, W, A = t.affinity.shape
    f.attrs.update(
        kernel=kernel, formula=FORMULAS[kernel], fs=t.fs, n_neurons=len(t.labels), n_pairs=P,
        n_windows=W, n_animals=A, observed_fraction=float(t.mask.mean()) if t.mask.size else 0.0,
    )
