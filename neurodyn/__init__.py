"""neurodyn: raw neural recordings to interpretable dynamics.

The public API (imported on first use, so ``import neurodyn`` stays cheap):

- :func:`load` -- read any neurodyn file: recordings as :class:`Recording`, stage results as
  :class:`xarray.Dataset` with named dimensions, coordinates and units.
- :func:`open_run` -- a run directory's results by stage name (:class:`Run`).
- :class:`Recording` -- the one in-memory recording type.
"""

import importlib as _importlib
import os as _os
import sys as _sys

__version__ = "0.1.0"


def cache_dir() -> str:
    """neurodyn's per-user cache folder: ``NEURODYN_CACHE_DIR``, else the platform's cache
    location (``$XDG_CACHE_HOME/neurodyn`` or ``~/.cache/neurodyn`` on Linux,
    ``~/Library/Caches/neurodyn`` on macOS, ``%LOCALAPPDATA%\\neurodyn\\Cache`` on Windows)."""
    if _os.environ.get("NEURODYN_CACHE_DIR"):
        return _os.path.abspath(_os.path.expanduser(_os.environ["NEURODYN_CACHE_DIR"]))
    home = _os.path.expanduser("~")
    if _sys.platform == "win32":
        base = _os.environ.get("LOCALAPPDATA") or _os.path.join(home, "AppData", "Local")
        return _os.path.join(base, "neurodyn", "Cache")
    if _sys.platform == "darwin":
        return _os.path.join(home, "Library", "Caches", "neurodyn")
    return _os.path.join(_os.environ.get("XDG_CACHE_HOME") or _os.path.join(home, ".cache"),
                         "neurodyn")


def _use_cache_dir() -> None:
    """Keep numba's compiled-kernel cache out of the installed package.

    By default numba writes ``__pycache__/*.nbi|*.nbc`` next to the sources, i.e. into
    site-packages; an uninstall then leaves a ``neurodyn/`` folder behind that shadows a later
    (editable) install. Set before any kernel is compiled; an explicit ``NUMBA_CACHE_DIR``
    is kept unless ``NEURODYN_CACHE_DIR`` is given.
    """
    if _os.environ.get("NUMBA_CACHE_DIR") and not _os.environ.get("NEURODYN_CACHE_DIR"):
        return
    path = _os.path.join(cache_dir(), "numba")
    _os.environ["NUMBA_CACHE_DIR"] = path
    numba_config = _sys.modules.get("numba.core.config")
    if numba_config is not None:  # numba imported first: its config was read already
        numba_config.CACHE_DIR = path


_use_cache_dir()


_LAZY = {
    "load": "neurodyn.api",
    "open_run": "neurodyn.api",
    "Run": "neurodyn.api",
    "Recording": "neurodyn.recording",
}
__all__ = ["__version__", "cache_dir", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neurodyn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
