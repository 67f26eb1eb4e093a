"""The HDF5 layout of ``affinity.h5``: written and read here only.

``/affinity`` (P, W, A) float32, ``/mask`` (P, W, A) bool (True = observed), ``/pairs`` (P, 2)
int64, ``/labels`` (N,), ``/windows`` (W, 2) seconds, ``/animals`` (A,), ``/present`` (A, N)
bool, ``/events`` table (onset, offset, label, animal); attrs ``kernel``, ``formula``, ``fs``,
``n_neurons``, ``n_pairs``, ``n_windows``, ``n_animals``, ``observed_fraction``.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from neurodyn.affinity.tensor import AffinityTensor
from neurodyn.errors import InputError
from neurodyn.io.store import open_h5, put, read_frame, strings, write_frame
from neurodyn.recording import empty_events

STAGE = "affinity"

FORMULAS = {
    "differential": "a_ij(t) = sqrt(max(0, d_i d_j)) * exp(-(d_i - d_j)^2 / (2 sigma^2)), d = smoothed "
    "derivative / (1.4826 MAD); stand-in for Dyballa et al. 2024 (exact published formula not used)",
    "pearson": "max(0, Pearson r) of smoothed values within each window",
    "gaussian": "exp(-(z_i - z_j)^2 / (2 sigma^2)) on robust z-scored smoothed values",
}


def write(f: h5py.Group, t: AffinityTensor, kernel: str) -> None:
    """Write an :class:`AffinityTensor` at the root of an open HDF5 file."""
    put(f, "affinity", t.affinity)
    put(f, "mask", t.mask)
    put(f, "pairs", t.pairs)
    put(f, "labels", np.array(t.labels, dtype=object))
    put(f, "windows", t.windows)
    put(f, "animals", np.array(t.animals, dtype=object))
    put(f, "present", t.present)
    write_frame(f.create_group("events"), t.events)
    P, W, A = t.affinity.shape
    kernel = str(kernel)
    f.attrs.update(
        kernel=kernel, formula=FORMULAS[kernel], fs=t.fs, n_neurons=len(t.labels), n_pairs=P,
        n_windows=W, n_animals=A, observed_fraction=float(t.mask.mean()) if t.mask.size else 0.0,
    )


def read(path: str | os.PathLike) -> AffinityTensor:
    """Read ``affinity.h5`` (:class:`InputError` when the file is not one)."""
    with open_h5(path) as f:
        if f.attrs.get("stage") != STAGE or "affinity" not in f:
            raise InputError(path, "not an affinity file (run `neurodyn affinity` first)")
        return AffinityTensor(
            affinity=f["affinity"][()], mask=f["mask"][()], pairs=f["pairs"][()],
            labels=strings(f["labels"]), windows=f["windows"][()], animals=strings(f["animals"]),
            present=f["present"][()] if "present" in f else np.ones((0, 0), bool),
            events=read_frame(f["events"]) if "events" in f else empty_events(),
            fs=float(f.attrs.get("fs", np.nan)),
        )
