"""Reader registry: readers declare what they read; callers never branch on extensions."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from neurodyn.connectome import Connectome
from neurodyn.errors import InputError
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
    """

    name: str
    extensions: tuple[str, ...]
    sniff: Callable[[Path], bool]
    read: Callable[..., list[Item]]
    description: str = ""

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
) -> Callable[[Callable[..., list[Item]]], Callable[..., list[Item]]]:
    """Decorator registering ``read(path, **options) -> list[Recording | Connectome]``."""

    def deco(fn: Callable[..., list[Item]]) -> Callable[..., list[Item]]:
        READERS[name] = Reader(
            name, tuple(e.lower() for e in extensions), sniff or (lambda p: True), fn,
            description or (fn.__doc__ or "").strip().splitlines()[0],
        )
        return fn

    return deco


def _load_builtin_readers() -> None:
    # Importing the modules registers their readers.
    from neurodyn.io import readers  # noqa: F401


def find_reader(path: str | os.PathLike, format: str | None = None) -> Reader:
    """The one reader for ``path``; an error lists the readers tried when none or several fit."""
    _load_builtin_readers()
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
    if not fits:
        hint = " (truncated or corrupt?)" if by_suffix else ""
        raise InputError(
            p, f"no reader recognises this file's content{hint} (tried: {tried}); see `neurodyn formats`"
        )
    raise InputError(
        p, f"ambiguous format, several readers fit ({', '.join(r.name for r in fits)}); pass --format"
    )


def read(path: str | os.PathLike, format: str | None = None, **options: Any) -> list[Item]:
    """Read ``path`` with the reader that recognises it; returns recordings and connectomes.

    Reader failures on malformed content become :class:`InputError` naming the file.
    """
    reader = find_reader(path, format)
    try:
        items = reader.read(Path(path), **options)
    except InputError:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError) as exc:
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InputError(path, f"cannot read as {reader.name}: {msg}") from exc
    if not items:
        raise InputError(path, f"{reader.name} found nothing to read")
    return items
