"""SLURM job-array scripts (one array task per unit) for ``neurodyn batch --emit-sbatch``."""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from neurodyn.errors import InputError
from neurodyn.pipeline.config import Pipeline
from neurodyn.pipeline.stages import META


def neurodyn_executable() -> str:
    """Absolute path of the ``neurodyn`` console script of this installation."""
    beside = Path(sys.executable).with_name("neurodyn")
    return str(beside) if beside.exists() else (shutil.which("neurodyn") or "neurodyn")


def sbatch_script(pipe: Pipeline, rundir: str | os.PathLike, *, extra_args: Sequence[str] = ()) -> str:
    """A SLURM job-array script with one array task per unit (and one for joint stages).

    Every value from the pipeline file or the command line (pipeline name, ``[slurm]`` values
    and directives, paths, ``--set`` arguments) is shell-quoted, and one holding a control
    character (a newline would start a new shell command) is refused, so a hostile pipeline
    file cannot make the script run anything but ``neurodyn run``.
    """
    src = pipe.path
    root = Path(rundir).resolve()
    n = len(pipe.index_units())
    s = pipe.slurm
    cores = _int(s.get("cores", 1), "[slurm] cores", src)

    def value(v: object, what: str) -> str:
        return shlex.quote(_text(v, what, src))

    def directive(d: object) -> str:
        text = _text(d, "[slurm] job_extra_directives", src)
        try:
            return " ".join(shlex.quote(tok) for tok in shlex.split(text))
        except ValueError as exc:
            raise InputError(src, f"[slurm] job_extra_directives entry {text!r}: {exc}") from None

    lines = ["#!/bin/bash", f"#SBATCH --job-name={value('neurodyn-' + pipe.name, '[pipeline] name')}",
             f"#SBATCH --array=0-{n - 1}", f"#SBATCH --cpus-per-task={cores}"]
    if "memory" in s:
        lines.append(f"#SBATCH --mem={_slurm_memory(_text(s['memory'], '[slurm] memory', src))}")
    for key, flag in (("walltime", "time"), ("queue", "partition"), ("account", "account")):
        if key in s:
            lines.append(f"#SBATCH --{flag}={value(s[key], f'[slurm] {key}')}")
    log = value(f"{root / META / 'slurm'}/%x-%A_%a.out", "--out")
    lines.append(f"#SBATCH --output={log}")
    extra = s.get("job_extra_directives", [])
    lines += [f"#SBATCH {directive(d)}" for d in ([extra] if isinstance(extra, str) else extra)]
    cmd = [neurodyn_executable(), "run", str(Path(pipe.path).resolve()), "--out", str(root),
           "--index", "--jobs", "1", "--seed", str(pipe.seed), *extra_args]
    words = [value(c, "--set" if c in extra_args else "path") for c in cmd]
    words.insert(words.index("--index") + 1, '"$SLURM_ARRAY_TASK_ID"')
    lines += [
        "set -euo pipefail",
        f"export NUMBA_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-{cores}}}",
        f"export OMP_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-{cores}}}",
        "export HDF5_USE_FILE_LOCKING=FALSE",
        " ".join(words),
    ]
    return "\n".join(lines) + "\n"


def _text(v: object, what: str, source: str | os.PathLike) -> str:
    """``v`` as text for the script; control characters (newline, tab, escape...) refused."""
    text = str(v)
    bad = [c for c in text if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise InputError(source, f"{what} holds a control character ({bad[0]!r}); refusing to "
                                 "write it into a job script")
    return text


def _int(v: object, what: str, source: str | os.PathLike) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, str)) or not str(v).strip().isdigit():
        raise InputError(source, f"{what} must be a positive integer, got {v!r}")
    return max(1, int(v))


def _slurm_memory(text: str) -> str:
    """``"4GB"`` / ``"4 GiB"`` / ``"500MB"`` -> sbatch's ``--mem`` in megabytes (``4096M``)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, flags=re.IGNORECASE)
    if not m:
        raise InputError("[slurm] memory", f"cannot read {text!r}; write e.g. '4GB'")
    scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[(m.group(2) or "M").upper()]
    return f"{max(1, math.ceil(float(m.group(1)) * scale))}M"
