"""Progress bars that stay silent when stderr is not a terminal or under ``--quiet``."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar of this process."""
    global _QUIET
    _QUIET = quiet


def enabled() -> bool:
    return not _QUIET and sys.stderr.isatty()


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, **kw: Any) -> Iterator[T]:
    """Wrap an iterable in a tqdm bar on stderr when interactive."""
    return iter(tqdm(iterable, desc=desc, total=total, disable=not enabled(), leave=False, **kw))


def bar(total: int, desc: str = "", **kw: Any) -> tqdm:
    """A manual bar (``.update(n)``, ``.set_postfix(...)``); a no-op when not interactive."""
    return tqdm(total=total, desc=desc, disable=not enabled(), leave=False, **kw)
