"""HBN-scale EEG: per-subject wall time and peak memory of the resting-state pipeline, and the
projected cost of the whole release on a cluster.

    python benchmarks/bench_eeg_cohort.py [--subjects 20] [--duration 60] [--slurm] [--keep DIR]

`neurodyn simulate eeg-cohort` writes an HBN-layout tree (NDAR.../EEG/raw/RestingState.set,
129 channels, 500 Hz); the stages of pipelines/eeg-states.toml (ingest, preprocess, Gaussian
HMM states with the number of states chosen by CV, report) run over it, one unit per subject:
locally with ``--jobs 2``, or with ``--slurm`` as the job array that `neurodyn batch
--emit-sbatch` writes (submitted with ``sbatch --wait``; needs a SLURM controller, e.g.
scripts/slurm/start.sh). Every task records its wall time and the peak RSS of the process that
ran it (`neurodyn status --json`); this script prints them per stage and per subject, and
projects the release (1,574 subjects of ~300 s) from the per-subject cost scaled by recording
length (linear: every stage is linear in samples at a fixed number of states).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from neurodyn.cli import main; main()"]
RELEASE_SUBJECTS, RELEASE_SECONDS = 1574, 300.0


def neurodyn(*args: str, cwd: Path) -> str:
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd)
    if r.returncode != 0:
        raise SystemExit(f"neurodyn {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    return r.stdout


def pipeline_file(dest: Path) -> Path:
    """pipelines/eeg-states.toml over the simulated tree, whole recordings, 1 core per job."""
    text = (ROOT / "pipelines" / "eeg-states.toml").read_text()
    text = text.replace('inputs = ["../sample_data/eeg/*.edf"]',
                        'inputs = ["hbn/*/EEG/raw/RestingState.set"]')
    text = text.replace('crop = "0:60"', "").replace("cores = 2", "cores = 1")
    assert "RestingState.set" in text, "pipelines/eeg-states.toml changed: update this script"
    dest.write_text(text)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per recording")
    ap.add_argument("--slurm", action="store_true", help="run as a SLURM job array")
    ap.add_argument("--keep", type=Path, default=None, help="keep the files here")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_eeg_")) if a.keep is None else a.keep
    root.mkdir(parents=True, exist_ok=True)
    neurodyn("simulate", "eeg-cohort", "--subjects", str(a.subjects), "--duration",
             str(a.duration), "--out", "hbn", cwd=root)
    spec = pipeline_file(root / "hbn.toml")
    t0 = time.perf_counter()
    if a.slurm:
        neurodyn("batch", str(spec), "--out", "run", "--emit-sbatch", "run.sbatch", cwd=root)
        r = subprocess.run(["sbatch", "--parsable", "--wait", "run.sbatch"], cwd=root,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"sbatch failed: {r.stderr}")
    else:
        neurodyn("run", str(spec), "--out", "run", "--jobs", "2", cwd=root)
    wall = time.perf_counter() - t0
    rows = json.loads(neurodyn("status", "run", "--json", cwd=root))
    rows = [r for r in rows if r["unit"] != "joint" and r["seconds"] is not None]
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    units = sorted({r["unit"] for r in rows})
    print(f"{len(units)} subjects x {a.duration:g} s, 129 channels, 500 Hz; "
          f"{'SLURM job array' if a.slurm else 'local, 2 jobs'}: {wall:.0f} s wall in all")
    print(f"{'stage':<12}{'median s':>10}{'max s':>8}{'median MB':>11}{'max MB':>8}")
    for s in stages:
        sec = np.array([r["seconds"] for r in rows if r["stage"] == s])
        mb = np.array([r["peak_rss_mb"] for r in rows if r["stage"] == s])
        print(f"{s:<12}{np.median(sec):>10.1f}{sec.max():>8.1f}{np.median(mb):>11.0f}{mb.max():>8.0f}")
    per_unit = np.array([sum(r["seconds"] for r in rows if r["unit"] == u) for u in units])
    peak = max(r["peak_rss_mb"] for r in rows)
    scale = RELEASE_SECONDS / a.duration
    hours = RELEASE_SUBJECTS * np.median(per_unit) * scale / 3600
    print(f"per subject: median {np.median(per_unit):.1f} s, max {per_unit.max():.1f} s of "
          f"stage time; peak RSS {peak:.0f} MB")
    print(f"projected release ({RELEASE_SUBJECTS} subjects x {RELEASE_SECONDS:g} s, linear in "
          f"length): {np.median(per_unit) * scale / 60:.1f} min per subject job, "
          f"{hours:.1f} core-hours in all, memory per job ~{peak:.0f} MB (+ the longer "
          "recording's samples)")
    print(f"files: {root}")


if __name__ == "__main__":
    main()
