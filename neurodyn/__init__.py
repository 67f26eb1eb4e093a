"""neurodyn: raw neural recordings to interpretable dynamics."""

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
