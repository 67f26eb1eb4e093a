"""Small helpers shared by readers."""

from __future__ import annotations

from pathlib import Path

import h5py


def is_hdf5(path: Path) -> bool:
    """True when the file starts with the HDF5 signature."""
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def h5_has(path: Path, *keys: str) -> bool:
    """True when ``path`` is HDF5 and holds every key."""
    if not is_hdf5(path):
        return False
    try:
        with h5py.File(path, "r", locking=False) as f:
            return all(k in f for k in keys)
    except OSError:
        return False


def is_matlab_v5(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(6) == b"MATLAB"
    except OSError:
        return False
