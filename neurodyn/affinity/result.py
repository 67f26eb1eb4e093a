"""The HDF5 layout of ``affinity.h5``: written and read here only.

The (pair, window, animal) tensor, shape (P, W, A), is stored by its observed entries, one
block of rows per animal (only ~2 % of the dense tensor is observed in a worm collection):

``/observed/pair_index`` (E,) int64
    Pair (row of ``/pairs``) of each row; the rows of animal ``k`` are contiguous.
``/observed/offsets`` (A + 1,) int64
    Rows of animal ``k`` are ``offsets[k]:offsets[k + 1]`` (one row per pair of neurons that
    animal has, whether or not any window of it passed ``min_fraction``).
``/observed/values`` (E, W) float32
    Affinity of each row in every window (0 where unobserved).
``/observed/mask`` (E, W) bool
    True where observed (a row's pair can still miss windows: shorter recordings, gaps).

Entries of pairs without a row in an animal are unobserved. Beside it: ``/pairs`` (P, 2)
int64, ``/labels`` (N,), ``/windows`` (W, 2) seconds, ``/animals`` (A,), ``/present`` (A, N)
bool, ``/events`` table (onset, offset, label, animal); attrs ``kernel``, ``formula``, ``fs``,
``n_neurons``, ``n_pairs``, ``n_windows``, ``n_animals``, ``n_observed``,
``observed_fraction``.

The block form is always written: it costs memory and disk in proportion to the observed
entries, where the dense form cost P x W x A (10 GB at 900 worms), and every reader turns it
into dense arrays on request (:meth:`AffinityTensor.dense`, small tensors only). Files written
before it (``/affinity`` and ``/mask``, both (P, W, A)) are still read, converted to the block
form on reading.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from neurodyn.affinity.tensor import AffinityTensor
from neurodyn.errors import InputError
from neurodyn.io.store import open_h5, put, read_frame, strings, write_frame
from neurodyn.recording import empty_events
from neurodyn.tensor.observed import ObservedTensor

STAGE = "affinity"

FORMULAS = {
    "differential": "a_ij(t) = sqrt(max(0, d_i d_j)) * exp(-(d_i - d_j)^2 / (2 sigma^2)), d = smoothed "
    "derivative / (1.4826 MAD); stand-in for Dyballa et al. 2024 (exact published formula not used)",
    "pearson": "max(0, Pearson r) of smoothed values within each window",
    "gaussian": "exp(-(z_i - z_j)^2 / (2 sigma^2)) on robust z-scored smoothed values",
}


def write(f: h5py.Group, t: AffinityTensor, kernel: str) -> None:
    """Write an :class:`AffinityTensor` at the root of an open HDF5 file (block form)."""
    obs = t.observed
    g = f.create_group("observed")
    put(g, "pair_index", obs.pair_index)
    put(g, "offsets", obs.offsets)
    put(g, "values", obs.values)
    put(g, "mask", obs.mask)
    put(f, "pairs", t.pairs)
    put(f, "labels", np.array(t.labels, dtype=object))
    put(f, "windows", t.windows)
    put(f, "animals", np.array(t.animals, dtype=object))
    put(f, "present", t.present)
    write_frame(f.create_group("events"), t.events)
    P, W, A = obs.shape
    kernel = str(kernel)
    f.attrs.update(
        kernel=kernel, formula=FORMULAS[kernel], fs=t.fs, n_neurons=len(t.labels), n_pairs=P,
        n_windows=W, n_animals=A, n_observed=obs.nnz, observed_fraction=obs.observed_fraction,
    )


def _observed(f: h5py.File, path: str | os.PathLike) -> ObservedTensor:
    """The tensor's blocks, from the block layout or an older file's dense arrays."""
    shape = (len(f["pairs"]), len(f["windows"]), len(f["animals"]))
    if "observed" in f:
        g = f["observed"]
        try:
            return ObservedTensor(shape, g["pair_index"][()], g["offsets"][()], g["values"][()],
                                  g["mask"][()])
        except InputError as e:
            raise InputError(path, f"corrupt affinity blocks: {e.problem}") from None
    return ObservedTensor.from_dense(f["affinity"][()], f["mask"][()])


def read(path: str | os.PathLike) -> AffinityTensor:
    """Read ``affinity.h5``, either layout (:class:`InputError` when the file is not one)."""
    with open_h5(path) as f:
        if f.attrs.get("stage") != STAGE or not ("observed" in f or "affinity" in f):
            raise InputError(path, "not an affinity file (run `neurodyn affinity` first)")
        return AffinityTensor(
            observed=_observed(f, path), pairs=f["pairs"][()],
            labels=strings(f["labels"]), windows=f["windows"][()], animals=strings(f["animals"]),
            present=f["present"][()] if "present" in f else np.ones((0, 0), bool),
            events=read_frame(f["events"]) if "events" in f else empty_events(),
            fs=float(f.attrs.get("fs", np.nan)),
        )
