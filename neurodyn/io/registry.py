"""Reader registry: readers declare what they read; callers never branch on extensions.

Importing this module registers the built-in readers of :mod:`neurodyn.io.readers` in
:data:`~neurodyn.io.formats.READERS`.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import struct
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neurodyn.errors import InputError
from neurodyn.io import readers  # noqa: F401  (importing the package registers its readers)
from neurodyn.io.formats import READERS, Item, Reader, register
from neurodyn.params import ParamError

__all__ = ["READERS", "Item", "Reader", "find_reader", "read", "register"]


def _container(path: Path) -> str | None:
    """What kind of valid file ``path`` is (``"HDF5"``, ``"NPY"``, ...), None when unreadable."""
    name = path.name.lower()
    try:
        if path.is_dir():
            return "folder"
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head == b"\x89HDF\r\n\x1a\n":
            with h5py.File(path, "r", locking=False) as f:
                keys = list(f.keys())
            return f"HDF5 (top-level keys: {', '.join(keys[:8]) or 'none'})"
        if head.startswith(b"\x93NUMPY"):
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            return f"NPY array {arr.shape} {arr.dtype}"
        if head.startswith(b"PK") and name.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                return f"NPZ (arrays: {', '.join(z.files[:8])})"
        if head.startswith(b"PK"):
            with zipfile.ZipFile(path) as z:
                z.testzip()
            return "zip archive"
        if head.startswith(b"MATLAB"):
            import scipy.io

            return f"MATLAB (variables: {', '.join(n for n, *_ in scipy.io.whosmat(path))})"
        if name.endswith(".json"):
            json.loads(path.read_text())
            return "JSON"
        if name.endswith((".csv", ".tsv", ".tab", ".txt")):
            with open(path, encoding="utf-8") as fh:
                fh.read(1 << 16)
            return "text table"
    except Exception:
        return None
    return None


def find_reader(path: str | os.PathLike, format: str | None = None,
                options: Sequence[str] = ()) -> Reader:
    """The one reader for ``path``; an error lists the readers tried when none or several fit.

    When no reader recognises the content, the readers' probes say whether the file is a valid
    file of a layout no reader detects (naming the closest reader and the option it needs) or
    looks corrupt. ``options`` (reader option names the user gave) pick the reader whose probe
    accepts the file and whose ``read`` takes them all, e.g. ``unit_col``/``time_col`` for a
    table with unusual column names.
    """
    p = Path(path)
    if format:
        if format not in READERS:
            raise InputError(p, f"unknown format {format!r}; known: {', '.join(sorted(READERS))}")
        return READERS[format]
    if not p.exists():
        raise InputError(p, "no such file or directory")
    by_suffix = [r for r in READERS.values() if r.accepts_suffix(p)]
    fits = []
    for r in by_suffix:
        try:
            ok = r.sniff(p)
        except Exception:
            ok = False
        if ok:
            fits.append(r)
    if len(fits) == 1:
        return fits[0]
    tried = ", ".join(r.name for r in by_suffix) or "none matched the file name"
    if fits:
        raise InputError(
            p, f"ambiguous format, several readers fit ({', '.join(r.name for r in fits)}); "
               "pass --format"
        )
    hints: dict[str, str] = {}
    for r in READERS.values():
        if r.probe is None or not r.accepts_suffix(p):
            continue
        try:
            hint = r.probe(p)
        except Exception:
            hint = None
        if hint:
            hints[r.name] = hint
    if options:
        told = [READERS[n] for n in hints if READERS[n].accepts_options(options)]
        if len(told) == 1:
            return told[0]
    kind = _container(p)
    if hints:
        what = f"valid {kind}" if kind else "readable file"
        near = "; ".join(f"closest reader {n}: {h}" for n, h in hints.items())
        raise InputError(p, f"{what}, but no reader detects its layout ({near})")
    if kind:
        raise InputError(p, f"valid {kind}, but no reader knows this layout (tried: {tried}); "
                            "see `neurodyn formats`")
    hint = " (truncated or corrupt?)" if by_suffix else ""
    raise InputError(
        p, f"no reader recognises this file's content{hint} (tried: {tried}); see `neurodyn formats`"
    )


# what readers of a truncated or corrupt archive raise besides OSError/ValueError
CORRUPT: tuple[type[BaseException], ...] = (zipfile.BadZipFile, zlib.error, pickle.UnpicklingError,
                                             struct.error)


def read(path: str | os.PathLike, format: str | None = None, **options: Any) -> list[Item]:
    """Read ``path`` with the reader that recognises it; returns recordings and connectomes.

    Reader failures on malformed content become :class:`InputError` naming the file.
    """
    reader = find_reader(path, format, list(options))
    if not reader.accepts_options(list(options)):
        params = inspect.signature(reader.read).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            unknown = [k for k in options if k not in params]
            takes = [k for k in params if k != "path"]
            raise ParamError("reader_options", f"{reader.name} takes no option "
                             f"{', '.join(unknown)}; it takes: {', '.join(takes) or 'none'}")
    try:
        items = reader.read(Path(path), **options)
    except (InputError, ParamError):  # a bad reader option is reported as such
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, *CORRUPT) as exc:
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InputError(path, f"cannot read as {reader.name}: {msg}") from exc
    if not items:
        raise InputError(path, f"{reader.name} found nothing to read")
    return items
