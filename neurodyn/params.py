"""Stage parameters declared once: default, type, range, choices, unit and help of each.

Every stage declares one frozen dataclass deriving from :class:`StageParams` whose fields are
made with :func:`param`. From it derive the stage's command-line options (:func:`cli_options`),
the validation of pipeline TOML / ``--set`` / environment values, ``neurodyn config show`` and
the parameters recorded in each output file, so the copies cannot drift apart (the Typer
options are built by :mod:`neurodyn.cli.options`)::

    @dataclass(frozen=True)
    class AffinityParams(StageParams):
        window: float = param(8.0, "Window width.", unit="s", gt=0)

    AffinityParams(window=-1)   # ParamError: window: must be > 0, got -1

Validation errors are :class:`ParamError` (a ``ValueError``) naming the *field*; the CLI maps
the field to its flag (``--window``) and the pipeline to its TOML key (``[stages.affinity]
window``), with the same problem text.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import math
import operator
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

log = logging.getLogger(__name__)

_MISSING = dataclasses.MISSING


class ParamError(ValueError):
    """A parameter value is out of range, of the wrong type, or unknown.

    Attributes
    ----------
    name : str
        The parameter (dataclass field) at fault; ``""`` when no single one is.
    problem : str
        What is wrong, in plain words, without any flag or file name.
    """

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"{name}: {problem}" if name else problem)


def param(
    default: Any,
    help: str,
    *,
    unit: str | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    finite: bool = True,
    check: Callable[[Any], Any] | None = None,
    choices: tuple[str, ...] = (),
    metavar: str | None = None,
    short: str | None = None,
    flag: str | None = None,
    aliases: tuple[str, ...] = (),
    cli: bool = True,
    deprecated: str = "",
) -> Any:
    """A dataclass field with the metadata the CLI, the pipeline and provenance use.

    Parameters
    ----------
    default : Any
        The default value (immutable: use a tuple for lists).
    help : str
        One or two sentences for ``--help``; the unit, range and choices are appended.
    unit : str, optional
        Unit of the value, e.g. ``"s"`` or ``"Hz"``.
    ge, gt, le, lt : float, optional
        Inclusive / exclusive bounds of a number.
    finite : bool
        Reject inf and nan (default True).
    check : callable, optional
        ``raw value -> normalised value`` (e.g. ``"2-8"`` or ``[2, 3]`` -> ``"2,3"``); raises
        ``ValueError`` with a plain message when the value is invalid. Runs before the type
        conversion and the bounds, on whatever a flag, TOML or Python gave.
    choices : tuple of str
        Allowed values of a plain ``str`` field (an Enum-typed field lists its members itself;
        use this where model code needs plain strings).
    metavar, short : str, optional
        Command-line display name, e.g. ``"START:STOP"``; a short flag such as ``"-k"``.
    flag : str, optional
        Only for booleans: the on/off flag pair, e.g. ``"--joint/--per-recording"``. Every
        other option is spelled like its field (``max_iter`` -> ``--max-iter``), as in TOML.
    aliases : tuple of str
        Former names, accepted for one release as hidden flags and TOML keys (with a warning).
    cli : bool
        False for parameters only a pipeline or Python caller sets.
    deprecated : str
        For a former option kept for one release whose *unit* differs from its successor's (so
        it cannot be a plain alias), what to use instead, e.g. ``"--history (seconds)"``: the
        flag is hidden from ``--help`` and setting it (flag or TOML key) logs a warning.
    """
    meta = dict(help=help, unit=unit, ge=ge, gt=gt, le=le, lt=lt, finite=finite, check=check,
                choices=tuple(choices), metavar=metavar, short=short, flag=flag, aliases=tuple(aliases), cli=cli,
                deprecated=deprecated)
    if isinstance(default, dict):  # a table: each instance gets its own copy
        return dataclasses.field(default_factory=lambda: dict(default), metadata={"neurodyn": meta})
    return dataclasses.field(default=default, metadata={"neurodyn": meta})


@dataclasses.dataclass(frozen=True)
class Spec:
    """One parameter as declared: name, type, default and the :func:`param` metadata."""

    name: str
    type: Any
    default: Any
    help: str
    unit: str | None
    ge: float | None
    gt: float | None
    le: float | None
    lt: float | None
    finite: bool
    check: Callable[[Any], Any] | None
    choices: tuple[str, ...]
    metavar: str | None
    short: str | None
    flag: str | None
    aliases: tuple[str, ...]
    cli: bool
    deprecated: str = ""

    def deprecation(self, name: str) -> str:
        """The warning logged when a deprecated parameter, spelled ``name``, is set."""
        unit = f" (in {self.unit})" if self.unit else ""
        return (f"{name}{unit} is deprecated and will be removed in the next release; "
                f"use {self.deprecated}")

    @property
    def optional(self) -> bool:
        return _optional(self.type)[1]

    @property
    def base(self) -> Any:
        return _optional(self.type)[0]

    @property
    def choice_values(self) -> list[str]:
        """Allowed values of a choice parameter (Enum members or ``choices``); [] otherwise."""
        base = self.base
        if isinstance(base, type) and issubclass(base, enum.Enum):
            return [str(m.value) for m in base]
        return list(self.choices)

    @property
    def option(self) -> str:
        """The command-line flag: the field name with dashes."""
        return "--" + self.name.replace("_", "-")

    def describe(self) -> str:
        """Help text with unit, range and default-meaning appended."""
        text = self.help.rstrip()
        extra = []
        if self.unit:
            extra.append(f"unit: {self.unit}")
        rng = self.range_text()
        if rng:
            extra.append(f"range: {rng}")
        return text + (f" [{'; '.join(extra)}]" if extra else "")

    def range_text(self) -> str:
        lo = f">= {_num(self.ge)}" if self.ge is not None else f"> {_num(self.gt)}" if self.gt is not None else ""
        hi = f"<= {_num(self.le)}" if self.le is not None else f"< {_num(self.lt)}" if self.lt is not None else ""
        return " and ".join(x for x in (lo, hi) if x)

    def validate(self, value: Any) -> Any:
        """The value converted to this parameter's type; :class:`ParamError` when invalid."""
        try:
            return self._validate(value)
        except ParamError:
            raise
        except (TypeError, ValueError) as exc:
            raise ParamError(self.name, str(exc)) from None

    def _validate(self, value: Any) -> Any:
        base, optional = _optional(self.type)
        if value is None:
            if optional:
                return None
            raise ValueError("a value is required")
        if self.check is not None:
            value = self.check(value)
        value = _convert(base, value)
        if self.choices and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}, got {value!r}")
        if isinstance(value, float) and self.finite and not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ok = ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                  and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))
            if not ok:
                raise ValueError(f"must be {self.range_text()}, got {_num(value)}")
        return value


def _num(x: Any) -> str:
    return repr(x) if isinstance(x, float) and not float(x).is_integer() else str(int(x)) if \
        isinstance(x, float) and math.isfinite(x) else str(x)


def _optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (tp, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) < len(typing.get_args(tp)):
            return (args[0] if len(args) == 1 else functools.reduce(operator.or_, args)), True
    return tp, False


def _convert(tp: Any, value: Any) -> Any:
    """Check/convert one non-None value to ``tp`` (int, float, bool, str, Enum, tuple[str, ...])."""
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            raise ValueError(f"must be one of {', '.join(m.value for m in tp)}, got {value!r}") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {value!r}")
        return value
    if typing.get_origin(tp) is tuple:  # tuple[str, ...]: a list, or one comma-separated string
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
            raise ValueError(f"must be a list of strings, got {value!r}")
        return tuple(y.strip() for x in items for y in x.split(",") if y.strip())
    if typing.get_origin(tp) is dict or tp is dict:  # a table; from the CLI, KEY=VALUE items
        items = [value] if isinstance(value, str) else value
        if isinstance(items, (list, tuple)) and all(isinstance(x, str) for x in items):
            pairs = [x.split("=", 1) for x in items]
            if any(len(kv) != 2 or not kv[0].strip() for kv in pairs):
                raise ValueError(f"expected KEY=VALUE items, got {value!r}")
            return {k.strip(): v.strip() for k, v in pairs}
        if not isinstance(items, Mapping):
            raise ValueError(f"must be a table of KEY = VALUE, got {value!r}")
        return dict(items)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):  # e.g. int | str: first that fits
        for arg in typing.get_args(tp):
            try:
                return _convert(arg, value)
            except ValueError:
                continue
        raise ValueError(f"unexpected value {value!r}")
    return value


class Choice(str, enum.Enum):
    """Base of choice parameters: compares, prints and formats as its value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


P = TypeVar("P", bound="StageParams")


@dataclasses.dataclass(frozen=True)
class StageParams:
    """Base of every stage's parameter dataclass: validation on construction, JSON view.

    Subclasses set ``stage`` (its name in pipelines and on the command line) and may override
    :meth:`check` for constraints between fields.
    """

    stage: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for s in self.specs():
            object.__setattr__(self, s.name, s.validate(getattr(self, s.name)))
        self.check()

    def check(self) -> None:
        """Constraints between fields; raise :class:`ParamError` naming the field at fault."""

    @classmethod
    @functools.cache
    def specs(cls) -> tuple[Spec, ...]:
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("neurodyn")
            if meta is None:  # a plain field: a setting for pipelines and Python callers only
                meta = param(f.default, "", cli=False).metadata["neurodyn"]
            default = f.default_factory() if f.default is _MISSING else f.default  # type: ignore[misc]
            out.append(Spec(name=f.name, type=hints[f.name], default=default, **meta))
        return tuple(out)

    @classmethod
    def spec(cls, name: str) -> Spec:
        for s in cls.specs():
            if s.name == name:
                return s
        raise KeyError(name)

    @classmethod
    def names(cls) -> list[str]:
        return [s.name for s in cls.specs()]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Default values as plain JSON-able data (what a pipeline resolves and records)."""
        return {s.name: plain(s.default) for s in cls.specs()}

    @classmethod
    def aliases(cls) -> dict[str, str]:
        """Former name -> current name."""
        return {a: s.name for s in cls.specs() for a in s.aliases}

    @classmethod
    def build(cls: type[P], params: P | Mapping[str, Any] | None = None, **kw: Any) -> P:
        """An instance from another instance or a mapping, updated by keywords.

        Former names (aliases) are accepted with a warning; unknown names raise
        :class:`ParamError`.
        """
        if isinstance(params, cls):
            base = {s.name: getattr(params, s.name) for s in cls.specs()}
        else:
            base = {}
            kw = {**dict(params or {}), **kw}
        values = dict(base)
        values.update(cls.rename(kw))
        return cls(**values)

    @classmethod
    def rename(cls, values: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
        """Replace former names by current ones (warning once each); reject unknown names."""
        known, aliases = set(cls.names()), cls.aliases()
        out: dict[str, Any] = {}
        for k, v in values.items():
            k = k.replace("-", "_")
            if k in aliases:
                log.warning("%s%s is a former name of %s; it will be removed in the next release",
                            f"{where} " if where else "", k, aliases[k])
                k = aliases[k]
            elif k not in known:
                raise ParamError(k, f"unknown parameter; {cls.stage or cls.__name__} takes "
                                    f"{', '.join(sorted(known))}")
            out[k] = v
        return out

    def to_dict(self) -> dict[str, Any]:
        """Field values as plain JSON-able data (Enums by value, tuples as lists)."""
        return {s.name: plain(getattr(self, s.name)) for s in self.specs()}

    def replace(self: P, **kw: Any) -> P:
        return dataclasses.replace(self, **kw)


# -- parsers of parameter text shared by several stages ------------------------------------------
def parse_crop(text: str | None) -> tuple[float | None, float | None]:
    """``"START:STOP"`` in seconds (either side may be empty) -> (start, stop)."""
    if not text:
        return None, None
    try:
        a, b = str(text).split(":")
        return (float(a) if a.strip() else None, float(b) if b.strip() else None)
    except ValueError:
        raise ValueError(f"expected START:STOP in seconds, got {text!r}") from None


def parse_floats(text: str | float | list | tuple | None) -> list[float | None]:
    """``"1,40"`` / ``",40"`` / ``[1, 40]`` / ``50`` -> list of floats (None for empty sides)."""
    if text is None:
        return []
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return [float(text)]
    if not isinstance(text, (str, list, tuple)):
        raise ValueError(f"expected numbers separated by commas, got {text!r}")
    parts = list(text) if isinstance(text, (list, tuple)) else str(text).split(",")
    out: list[float | None] = []
    for p in parts:
        if p is None or (isinstance(p, str) and not p.strip()):
            out.append(None)
            continue
        try:
            if isinstance(p, bool):
                raise ValueError
            out.append(float(p))
        except (TypeError, ValueError):
            raise ValueError(f"expected numbers separated by commas, got {text!r}") from None
        if not math.isfinite(out[-1]):
            raise ValueError(f"expected finite numbers, got {text!r}")
    return out


def plain(value: Any) -> Any:
    """An Enum by its value, a tuple as a list; other values unchanged."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
