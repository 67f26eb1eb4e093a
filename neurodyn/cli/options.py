"""Typer options built from a stage's :class:`~neurodyn.params.StageParams` class.

``@stage_command(AffinityParams)`` gives a command one option per field: flag = field name with
dashes (the TOML key), help = help + unit + range, default = the field default, choices shown
as ``{a|b}`` and completed; former names become hidden options. Values are validated by the
Params class, so a bad flag and the same bad TOML value get the same problem text.
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from neurodyn.errors import InputError
from neurodyn.params import ParamError, Spec, StageParams, _optional, plain

log = logging.getLogger("neurodyn.params")
P = TypeVar("P", bound=StageParams)


def _cli_type(s: Spec) -> tuple[Any, Any]:
    """(annotation, default) of the Typer parameter for a spec."""
    base, optional = _optional(s.type)
    if typing.get_origin(base) in (tuple, dict) or base is dict:
        return list[str], []
    if isinstance(base, type) and issubclass(base, enum.Enum):  # checked by the Params class
        return (str | None if optional else str), plain(s.default)
    if isinstance(base, type) and issubclass(base, (bool, int, float, str)):
        return (base | None if optional else base), s.default
    return (str | None if optional else str), (None if s.default is None else str(s.default))


def _completer(choices: list[str]) -> Callable[[str], list[str]]:
    def complete(incomplete: str) -> list[str]:
        return [c for c in choices if c.startswith(incomplete)]

    return complete


def _choices(s: Spec) -> list[str]:
    return s.choice_values


def cli_parameters(cls: type[StageParams]) -> list[inspect.Parameter]:
    """Typer parameters (keyword-only, ``Annotated[..., typer.Option]``) for a Params class.

    Each former name becomes a hidden option ``_<field>__<i>`` that the wrapper folds in.
    """
    out = []
    for s in cls.specs():
        if not s.cli:
            continue
        tp, default = _cli_type(s)
        decls = [s.flag or s.option] + ([s.short] if s.short else [])
        choices = _choices(s)
        metavar = s.metavar or ("{" + "|".join(choices) + "}" if choices else
                                "<list>" if tp == list[str] else None)
        opt = typer.Option(*decls, help=s.describe(), metavar=metavar, hidden=bool(s.deprecated),
                           autocompletion=_completer(choices) if choices else None,
                           show_default=not (isinstance(default, list) or default is None))
        out.append(inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY,
                                     annotation=Annotated[tp, opt], default=default))
        for i, alias in enumerate(s.aliases):
            hidden = typer.Option("--" + alias.replace("_", "-"), hidden=True)
            atp = list[str] if tp == list[str] else (tp | None)
            out.append(inspect.Parameter(f"_{s.name}__{i}", inspect.Parameter.KEYWORD_ONLY,
                                         annotation=Annotated[atp, hidden],
                                         default=[] if tp == list[str] else None))
    return out


def from_cli(cls: type[P], values: dict[str, Any]) -> P:
    """Build params from Typer's values (hidden alias options folded in).

    Raises
    ------
    neurodyn.errors.InputError
        Naming the flag, e.g. ``--max-iter: must be >= 1, got -5``.
    """
    for s in cls.specs():
        for i, alias in enumerate(s.aliases):
            v = values.pop(f"_{s.name}__{i}", None)
            if v not in (None, []):
                log.warning("--%s is a former name of %s; it will be removed in the next release",
                            alias.replace("_", "-"), s.option)
                values[s.name] = v
        if s.deprecated and values.get(s.name, s.default) != s.default:
            log.warning(s.deprecation(s.option))
    try:
        return cls(**values)
    except ParamError as exc:
        raise InputError(flag_of(cls, exc.name), exc.problem) from None


def flag_of(cls: type[StageParams], name: str) -> str | None:
    """The command-line flag of a field (``None`` for an empty name)."""
    if not name:
        return None
    try:
        s = cls.spec(name)
    except KeyError:
        return "--" + name.replace("_", "-")
    return (s.flag or s.option).split("/")[0]


#: Every Params class a command was built from (tests check each CLI default against it).
STAGE_COMMANDS: list[type[StageParams]] = []


def stage_command(cls: type[StageParams]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a Typer command taking ``params: cls``: its options come from ``cls``.

    The command's own parameters (input, ``--out``, ``--seed``...) come first in ``--help``;
    a :class:`ParamError` raised while the command runs is reported against its flag.
    """

    STAGE_COMMANDS.append(cls)

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()
               if p.name != "params"]
        extra = cli_parameters(cls)
        names = {p.name for p in extra}

        @functools.wraps(fn)
        def wrapper(**kw: Any) -> Any:
            values = {k: kw.pop(k) for k in list(kw) if k in names}
            params = from_cli(cls, values)
            try:
                return fn(**kw, params=params)
            except ParamError as exc:
                raise InputError(flag_of(cls, exc.name), exc.problem) from None

        params = own + extra
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return deco
