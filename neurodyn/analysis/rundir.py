"""Where stage outputs live in a run directory: file names and the recordings file a stage
read (per-recording groups: :mod:`neurodyn.io.groups`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from neurodyn.io.store import open_h5

STATE_FILES = ("states.h5", "hmmglm.h5")
BICLUSTER_FILES = ("bicluster.h5",)
NTF_FILES = ("ntf.h5", "factorize.h5")
RECORDING_FILES = ("preprocessed.h5", "preprocess.h5", "recordings.h5")


def find_file(rundir: Path, names: Sequence[str]) -> Path | None:
    """First of ``names`` that exists in ``rundir``."""
    for n in names:
        p = Path(rundir) / n
        if p.exists():
            return p
    return None


def recording_file(rundir: Path, stage_file: Path | None) -> Path | None:
    """The recordings file a stage read (from its provenance inputs), else a default one."""
    if stage_file is not None:
        try:
            with open_h5(stage_file, require_complete=False) as f:
                inputs = json.loads(f.attrs.get("inputs", "{}"))
            for p in inputs:
                q = Path(p)
                for cand in (q, Path(rundir) / q.name):
                    if cand.exists() and cand.suffix == ".h5" and has_recordings(cand):
                        return cand
        except Exception:
            pass
    for n in RECORDING_FILES:
        p = Path(rundir) / n
        if p.exists() and has_recordings(p):
            return p
    return None


def has_recordings(p: Path) -> bool:
    try:
        with open_h5(p) as f:
            return "recordings" in f
    except Exception:
        return False
