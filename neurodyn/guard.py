"""Refuse allocations larger than the machine's memory before making them.

A parameter in the wrong unit (``--resample-hz 1e9``, ``bin_ms=1e-6``, spike times in
samples read as seconds, ``--rank 100000``) asks for arrays of terabytes. Numerical code calls
:func:`check_alloc` with the shape it is about to allocate; an impossible request becomes a
one-line :class:`~neurodyn.params.ParamError` naming the parameter and the size it would need,
instead of a ``MemoryError`` (or the machine swapping) minutes later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from neurodyn.params import ParamError

#: Environment variable that caps the memory neurodyn assumes it may use (bytes, or with a
#: K/M/G/T suffix), e.g. on a shared login node.
MEMORY_ENV = "NEURODYN_MAX_MEMORY"


def format_bytes(n: float) -> str:
    """``n`` bytes as a short human-readable size (``"1.5 GiB"``)."""
    if not math.isfinite(n):
        return "an unbounded amount"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(n) < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover


def _parse_size(text: str) -> int | None:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(text[-1:], 1)
    try:
        return int(float(text.rstrip("KMGT")) * scale)
    except ValueError:
        return None


def memory_limit() -> int:
    """Bytes this process may use: physical memory, lowered by a cgroup (container, SLURM job)
    limit and by ``NEURODYN_MAX_MEMORY``."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover (not POSIX)
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                value = fh.read().strip()
        except OSError:
            continue
        if value.isdigit() and int(value) < 2**60:
            limits.append(int(value))
    env = _parse_size(os.environ.get(MEMORY_ENV, "")) if os.environ.get(MEMORY_ENV) else None
    if env:
        limits.append(env)
    return min(limits) if limits else 2**62


def nbytes(shape: Sequence[float], dtype: np.dtype | type | str = np.float64) -> float:
    """Bytes of an array of ``shape`` (exact, as a float: no integer overflow for absurd shapes)."""
    n = float(np.dtype(dtype).itemsize)
    for s in shape:
        n *= float(s)
    return n


def check_alloc(shape: Sequence[float], dtype: np.dtype | type | str, what: str, *,
                param: str = "", copies: float = 1.0, limit: int | None = None) -> float:
    """Raise :class:`ParamError` when arrays of ``shape`` would not fit in memory.

    Parameters
    ----------
    shape : sequence of numbers
        Shape about to be allocated (may be non-integer or huge: it is only multiplied).
    dtype : numpy dtype
    what : str
        What the array is, in plain words (``"the resampled traces"``).
    param : str
        The parameter (field name, e.g. ``"resample_hz"``) whose value sets the size; the CLI
        reports it as its flag (``--resample-hz``).
    copies : float
        How many such arrays exist at once (work arrays of the same size).
    limit : int, optional
        Bytes available (default :func:`memory_limit`).

    Returns
    -------
    float
        The bytes needed.
    """
    need = nbytes(shape, dtype) * copies
    have = memory_limit() if limit is None else limit
    if not need <= have:  # also catches NaN
        dims = " x ".join(f"{s:,.0f}" if math.isfinite(s) else str(s) for s in shape)
        raise ParamError(param, f"{what} would need {format_bytes(need)} of memory "
                                f"({dims} {np.dtype(dtype).name}), more than the "
                                f"{format_bytes(have)} available")
    return need
