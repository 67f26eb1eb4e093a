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
    """A SLURM job-array script with one array task per unit (and one for joint stages)."""
    root = Path(rundir).resolve()
    n = len(pipe.index_units())
    s = pipe.slurm
    cores = int(s.get("cores", 1))
    lines = ["#!/bin/bash", f"#SBATCH --job-name=neurodyn-{pipe.name}", f"#SBATCH --array=0-{n - 1}",
             f"#SBATCH --cpus-per-task={cores}"]
    if "memory" in s:
        lines.append(f"#SBATCH --mem={_slurm_memory(str(s['memory']))}")
    if "walltime" in s:
        lines.append(f"#SBATCH --time={s['walltime']}")
    if "queue" in s:
        lines.append(f"#SBATCH --partition={s['queue']}")
    if "account" in s:
        lines.append(f"#SBATCH --account={s['account']}")
    lines.append(f"#SBATCH --output={root / META / 'slurm'}/%x-%A_%a.out")
    lines += [f"#SBATCH {d}" for d in s.get("job_extra_directives", [])]
    cmd = [neurodyn_executable(), "run", str(Path(pipe.path).resolve()), "--out", str(root),
           "--index", "$SLURM_ARRAY_TASK_ID", "--jobs", "1", "--seed", str(pipe.seed), *extra_args]
    lines += [
        "set -euo pipefail",
        f"export NUMBA_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-{cores}}}",
        f"export OMP_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-{cores}}}",
        "export HDF5_USE_FILE_LOCKING=FALSE",
        " ".join(c if c.startswith("$") else shlex.quote(c) for c in cmd),
    ]
    return "\n".join(lines) + "\n"


def _slurm_memory(text: str) -> str:
    """``"4GB"`` / ``"4 GiB"`` / ``"500MB"`` -> sbatch's ``--mem`` in megabytes (``4096M``)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, flags=re.IGNORECASE)
    if not m:
        raise InputError("[slurm] memory", f"cannot read {text!r}; write e.g. '4GB'")
    scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[(m.group(2) or "M").upper()]
    return f"{max(1, math.ceil(float(m.group(1)) * scale))}M"
