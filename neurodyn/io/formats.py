"""The table of readers: each reader module registers itself here with :func:`register`.

Lookup by content lives in :mod:`neurodyn.io.registry`, which imports every built-in reader.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

from neurodyn.connectome import Connectome
from neurodyn.recording import Recording

Item = Recording | Connectome


@dataclasses.dataclass(frozen=True)
class Reader:
    """A registered reader.

    Attributes
    ----------
    name : str
        Format name users pass as ``--format``.
    extensions : tuple of str
        Lower-case suffixes it may read (``".h5"``, ``".tar.gz"``); ``()`` for directories.
    sniff : callable(Path) -> bool
        Cheap content check (magic bytes, HDF5 keys) run only on matching extensions.
    read : callable(Path, **options) -> list of Recording | Connectome
    description : str
    probe : callable(Path) -> str or None, optional
        Run when no reader recognises a file: a hint when the file is a valid container of
        this reader's kind whose layout it does not detect (``"columns [a, b]: pass
        --reader-option unit_col=..."``), else None.
    """

    name: str
    extensions: tuple[str, ...]
    sniff: Callable[[Path], bool]
    read: Callable[..., list[Item]]
    description: str = ""
    probe: Callable[[Path], str | None] | None = None

    def accepts_options(self, names: Sequence[str]) -> bool:
        """True when ``read`` takes every option in ``names``."""
        params = inspect.signature(self.read).parameters
        return all(n in params for n in names)

    def accepts_suffix(self, path: Path) -> bool:
        if path.is_dir():
            return not self.extensions or "/" in self.extensions
        name = path.name.lower()
        return any(name.endswith(ext) for ext in self.extensions)


READERS: dict[str, Reader] = {}


def register(
    name: str,
    extensions: Sequence[str],
    sniff: Callable[[Path], bool] | None = None,
    description: str = "",
    probe: Callable[[Path], str | None] | None = None,
) -> Callable[[Callable[..., list[Item]]], Callable[..., list[Item]]]:
    """Decorator registering ``read(path, **options) -> list[Recording | Connectome]``."""

    def deco(fn: Callable[..., list[Item]]) -> Callable[..., list[Item]]:
        READERS[name] = Reader(
            name, tuple(e.lower() for e in extensions), sniff or (lambda p: True), fn,
            description or (fn.__doc__ or "").strip().splitlines()[0], probe,
        )
        return fn

    return deco
