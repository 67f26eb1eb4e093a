"""The Typer application objects, error mapping and the options shared by every command."""

from __future__ import annotations

import difflib
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from neurodyn import __version__
from neurodyn.errors import InputError
from neurodyn.params import ParamError
from neurodyn.progress import set_quiet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger("neurodyn")
#: every log line: ``2026-12-04T17:40:02 WARNING neurodyn.bicluster: ...``
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATEFMT = "%Y-%m-%dT%H:%M:%S"


class RunLog(logging.Handler):
    """Appends timestamped log lines to ``RUNDIR/run.log`` once the run has begun
    (:meth:`begin`, after its usage checks passed); lines logged before are kept and written
    then, and dropped when the run is refused, so a refused run leaves RUNDIR untouched."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.pending: list[str] = []
        self.begun = False
        self.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATEFMT))

    def begin(self) -> None:
        """Start writing (the pending lines first)."""
        self.begun = True
        self.flush_pending()

    def emit(self, record: logging.LogRecord) -> None:
        self.pending.append(self.format(record) + "\n")
        self.flush_pending()

    def flush_pending(self) -> None:
        try:
            if self.begun and self.path.parent.is_dir():
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write("".join(self.pending))
                self.pending.clear()
        except OSError:  # a log file must never stop the run
            pass


STATE: dict[str, Any] = {"verbose": 0}


# the order `neurodyn --help` lists commands in: the data flow first, then the tools
COMMAND_ORDER = (
    "ingest", "preprocess", "affinity", "factorize", "communities", "states", "bicluster",
    "figures", "report", "compare-connectome", "run", "status", "batch", "config", "inspect",
    "formats", "simulate",
)


# typer >= 0.2x vendors click: its usage errors (e.g. an option below its minimum) derive from
# typer.TyperException, not click.ClickException; they must reach typer's handler (exit 2).
_TYPER_CLICK = (typer.TyperException,) if hasattr(typer, "TyperException") else ()


# options that must behave the same whatever the environment holds
NO_ENVVAR = frozenset({"help", "version", "install_completion", "show_completion"})


def flag_envvar(prefix: str, param: Any) -> str | None:
    """``NEURODYN_<COMMAND>_<FLAG>``: the variable named after the option's long flag
    (``--reader-option`` -> ``..._READER_OPTION``), not after its Python name."""
    longs = [o for o in param.opts if o.startswith("--")]
    if not longs or param.name in NO_ENVVAR:
        return None
    return f"{prefix}_{longs[0][2:].upper().replace('-', '_')}"


def set_envvars(cmd: Any, prefix: str = "NEURODYN") -> None:
    """Give every option of ``cmd`` and its subcommands the environment variable of its flag.

    Replaces click's automatic names (built from Python parameter names such as ``option`` or
    ``set_``, and read even by ``--version``): help, version and completion read none.
    Duck-typed: typer >= 0.2x vendors its own click classes.
    """
    for p in cmd.params:
        if getattr(p, "param_type_name", "") == "option":
            p.envvar = flag_envvar(prefix, p)
            p.allow_from_autoenv = False
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        set_envvars(sub, f"{prefix}_{name.upper().replace('-', '_')}")


class NeurodynGroup(TyperGroup):
    """Maps exceptions to exit codes: 2 bad input, 1 unexpected, 130 interrupted."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        set_envvars(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        rank = {n: i for i, n in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, typer.Exit, typer.Abort,
                *_TYPER_CLICK):
            raise
        except BrokenPipeError:  # output piped into `head` and closed early
            sys.stderr.close()
            ctx.exit(0)
        except InputError as exc:
            if STATE["verbose"] > 0:
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except ParamError as exc:  # raised by numerical code (e.g. a size guard): name the flag
            if STATE["verbose"] > 0:
                traceback.print_exc()
            flag = "--" + exc.name.replace("_", "-") if exc.name else None
            click.echo(f"error: {InputError(flag, exc.problem)}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: outputs already written are kept; rerun to resume", err=True)
            ctx.exit(130)
        except Exception as exc:
            if STATE["verbose"] > 0:
                traceback.print_exc()
            problem = _os_problem(exc)
            if problem is not None:  # full disk, read-only or forbidden location: the user's to fix
                click.echo(f"error: {exc.filename or 'output'}: {problem}", err=True)  # type: ignore[attr-defined]
                ctx.exit(2)
            first = str(exc).splitlines()[0] if str(exc) else ""
            click.echo(
                f"error: unexpected failure: {type(exc).__name__}: {first} (rerun with -v for the traceback)",
                err=True,
            )
            ctx.exit(1)


def _os_problem(exc: BaseException) -> str | None:
    if not isinstance(exc, OSError):
        return None
    from neurodyn.io.outputs import os_problem

    return os_problem(exc)


def make_app(**kw: Any) -> typer.Typer:
    return typer.Typer(
        cls=NeurodynGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
        **kw,
    )


app = make_app(
    help=(
        "neurodyn: raw neural recordings to interpretable dynamics.\n\n"
        "Stages chain through HDF5 files: ingest -> preprocess -> affinity -> factorize -> "
        "communities, and states / bicluster per recording. Every output records its "
        "parameters, versions, input hashes and seed; `neurodyn inspect FILE` shows them."
    )
)
simulate_app = typer.Typer(
    no_args_is_help=True,
    help="Write ground-truth data from neurodyn's generative models (for demos and tests).",
)
app.add_typer(simulate_app, name="simulate")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"neurodyn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log output; -v shows tracebacks.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors; no progress bars.")] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file of option defaults, one table per command ([ingest], [affinity]...). "
            "Precedence: built-in defaults < this file < NEURODYN_<COMMAND>_<OPTION> env vars < flags.",
        ),
    ] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    STATE["verbose"] = -1 if quiet else verbose
    set_quiet(quiet)
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt=LOG_DATEFMT, stream=sys.stderr)
    log.setLevel(level)
    if config is not None:
        ctx.default_map = load_config(config)
        check_config(ctx, ctx.command, ctx.default_map, config)


def check_config(ctx: Any, group: Any, data: dict[str, Any], path: Path, where: str = "") -> None:
    """Refuse tables and keys of a config file that name no command or option of ``group``
    (a typo would otherwise be ignored without a word), suggesting the closest name."""
    for name, value in data.items():
        is_group = hasattr(group, "get_command")  # typer may vendor its own click
        cmd = group.get_command(ctx, name) if is_group else None
        table = f"{where}{name}"
        if cmd is None:
            known = sorted(group.list_commands(ctx)) if is_group else []
            near = difflib.get_close_matches(name, known, n=1)
            raise InputError(path, f"[{table}] is not a neurodyn command" +
                             (f" (did you mean [{where}{near[0]}]?)" if near else ""))
        if not isinstance(value, dict):
            raise InputError(path, f"{table} = ... must be a table of options, [{table}]")
        if hasattr(cmd, "get_command"):
            check_config(ctx, cmd, value, path, f"{table}.")
            continue
        options = {p.name for p in cmd.params if getattr(p, "param_type_name", "") == "option"}
        for key in value:
            if key not in options:
                near = difflib.get_close_matches(key, sorted(options), n=1)
                raise InputError(path, f"[{table}] {key}: not an option of `neurodyn "
                                       f"{table.replace('.', ' ')}`" +
                                       (f" (did you mean {near[0]}?)" if near else ""))


def load_config(path: Path) -> dict[str, Any]:
    """Read a TOML config into click's ``default_map``: a table per command (``[compare-connectome]``
    or ``[compare_connectome]``, ``[simulate.calcium]``), option keys with dashes or underscores."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(path, "no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise InputError(path, "is not UTF-8 text (a TOML file must be UTF-8)") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory, not a config file") from None

    def norm(d: Any) -> Any:  # tables name commands (dashes), keys name options (underscores)
        if isinstance(d, dict):
            return {str(k).replace("_", "-") if isinstance(v, dict) else str(k).replace("-", "_"):
                    norm(v) for k, v in d.items()}
        return d

    return norm(data)


# -- shared options -----------------------------------------------------------------------
Out = Annotated[
    Path, typer.Option("--out", "-o", help="Output file; written to a temporary name and renamed when complete.")
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed; recorded in the output for reproducibility.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", help="Parallel local worker processes (-1: all cores).")]
Force = Annotated[bool, typer.Option("--force", help="Recompute even if the output exists and is up to date.")]


def selection_lines(path: Path) -> list[str]:
    """The model-selection tables of an output file (root and per-recording groups)."""
    from neurodyn.io.groups import recording_groups
    from neurodyn.io.store import open_h5, read_tree
    from neurodyn.selection import from_tree

    out = []
    with open_h5(path) as f:
        found = [("", f["model_selection"])] if "model_selection" in f else []
        found += [(rid + ": ", g["model_selection"])
                  for rid, g in recording_groups(f).items() if "model_selection" in g]
        for who, g in found:
            t = read_tree(g)
            if "@parameter" in t:
                out += [who + line for line in from_tree(t).lines()]
    return out


def done(path: Path, what: str = "") -> None:
    """Tell the user where the output went (stdout; silent under --quiet)."""
    if STATE["verbose"] >= 0:
        typer.echo(f"wrote {path}" + (f" ({what})" if what else ""))
