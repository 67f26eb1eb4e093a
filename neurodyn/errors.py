"""Exceptions that the CLI maps to exit codes."""

from __future__ import annotations

from os import PathLike


class InputError(Exception):
    """Bad input from the user: the CLI prints one line and exits with code 2.

    Parameters
    ----------
    source : path-like or str
        The file (or option) at fault; printed first.
    problem : str
        What is wrong with it, in plain words.
    """

    def __init__(self, source: str | PathLike | None, problem: str) -> None:
        self.source = None if source is None else str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)
