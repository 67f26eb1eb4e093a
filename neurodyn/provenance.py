"""Provenance: content hashes, package versions and the digest that decides resumption."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from neurodyn import __version__

TRACKED_PACKAGES = (
    "numpy", "scipy", "tensorly", "h5py", "pandas", "numba", "mne", "pynwb", "dask",
    "matplotlib", "typer",
)

_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's content, ``"sha256:<hex>"``; cached per (path, size, mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
        _HASH_CACHE[key] = "sha256:" + h.hexdigest()
    return _HASH_CACHE[key]


def versions() -> dict[str, str]:
    """Versions of Python, neurodyn and the numerical dependencies."""
    out = {"python": sys.version.split()[0], "neurodyn": __version__}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def to_json(obj: Any) -> str:
    """Canonical strict JSON (sorted keys) of parameters; paths and numpy scalars become plain.

    Non-finite numbers become the strings ``"nan"``, ``"inf"`` and ``"-inf"``.
    """

    def default(o: Any) -> Any:
        if isinstance(o, Path):
            return str(o)
        if hasattr(o, "item"):
            return o.item()
        if hasattr(o, "tolist"):
            return o.tolist()
        if isinstance(o, (set, frozenset, tuple)):
            return list(o)
        return str(o)

    text = json.dumps(obj, sort_keys=True, default=default)
    if "NaN" in text or "Infinity" in text:  # strict JSON: non-finite numbers as strings
        text = json.dumps(_finite(json.loads(text)), sort_keys=True, allow_nan=False)
    return text


def _finite(obj: Any) -> Any:
    """Replace non-finite floats by ``"nan"``, ``"inf"``, ``"-inf"`` (JSON has no such numbers)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if obj != obj else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def input_digest(params: Mapping[str, Any], input_hashes: Mapping[str, str]) -> str:
    """One hash of a stage's parameters and its inputs' content hashes (not their paths)."""
    payload = to_json({"params": params, "inputs": sorted(input_hashes.values())})
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""


def hashes(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    """``{path: file_hash(path)}`` for each existing file."""
    return {str(p): file_hash(p) for p in paths if Path(p).is_file()}
