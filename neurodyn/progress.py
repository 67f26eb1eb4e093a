"""Progress: tqdm bars on an interactive stderr, periodic log lines otherwise.

Bars stay on screen when done. When stderr is not a terminal (batch jobs, pipes, SLURM logs)
:func:`bar` writes one line per minute at most (``desc: 42% (420/1000 it), 1m03s elapsed,
ETA 1m27s``) and a last line when done, so a long job shows it is alive; a job shorter than
a minute prints nothing. ``--quiet`` silences both.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_QUIET = False
LOG_INTERVAL_S = 60.0


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar of this process."""
    global _QUIET
    _QUIET = quiet


def enabled() -> bool:
    return not _QUIET and sys.stderr.isatty()


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, **kw: Any) -> Iterator[T]:
    """Wrap an iterable in a tqdm bar on stderr when interactive."""
    return iter(tqdm(iterable, desc=desc, total=total, disable=not enabled(), leave=True, **kw))


def _duration(s: float) -> str:
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class LogBar:
    """The non-interactive stand-in of a tqdm bar: a line on stderr every ``interval`` s."""

    def __init__(self, total: int, desc: str = "", unit: str = "it", interval: float | None = None,
                 stream: Any = None):
        self.total, self.desc, self.unit = int(total), desc, unit
        self.interval = LOG_INTERVAL_S if interval is None else interval
        self.stream = stream
        self.n = 0
        self.postfix = ""
        self.t0 = self.last = time.monotonic()
        self.lines = 0

    def _line(self) -> str:
        el = time.monotonic() - self.t0
        frac = self.n / self.total if self.total else 1.0
        eta = f", ETA {_duration(el * (1 - frac) / frac)}" if 0 < frac < 1 else ""
        post = f" [{self.postfix}]" if self.postfix else ""
        return (f"{self.desc}: {100 * frac:.0f}% ({self.n}/{self.total} {self.unit}), "
                f"{_duration(el)} elapsed{eta}{post}")

    def _emit(self) -> None:
        print(self._line(), file=self.stream or sys.stderr, flush=True)
        self.lines += 1
        self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.interval:
            self._emit()

    def set_postfix(self, refresh: bool = True, **kw: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def close(self) -> None:
        if self.lines:  # only jobs that already logged say they finished
            self.n = max(self.n, self.total)
            self._emit()


def bar(total: int, desc: str = "", **kw: Any) -> Any:
    """A manual bar (``.update(n)``, ``.set_postfix(...)``, ``.close()``).

    A tqdm bar that stays on screen when stderr is a terminal; a :class:`LogBar` otherwise;
    a disabled tqdm bar under ``--quiet``.
    """
    if enabled() or _QUIET:
        return tqdm(total=total, desc=desc, disable=not enabled(), leave=True, **kw)
    return LogBar(total, desc, unit=kw.get("unit", "it"))
