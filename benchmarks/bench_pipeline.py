"""Pipeline overhead: a fully cached rerun and `neurodyn status` over many recordings.

    python benchmarks/bench_pipeline.py [--units 100] [--jobs 2]

Writes N single-animal recordings files (one unit each), runs ingest -> preprocess once,
then times, as real subprocesses: `neurodyn --version` (the baseline: interpreter + CLI
start-up), a fully cached `neurodyn run` (every task skipped) and `neurodyn status`.
Goal: cached rerun of 100 recordings under 2 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neurodyn.io.store import write_recordings
from neurodyn.simulate import simulate_calcium

CLI = [sys.executable, "-c", "from neurodyn.cli import main; main()"]


def timed(args: list[str], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(CLI + args, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        recs, _ = simulate_calcium(n_animals=a.units, n_neurons=10, n_frames=200, fs=4.0,
                                   n_groups=2, missing_fraction=0.0, noise=0.1, seed=0)
        for i, r in enumerate(recs):
            write_recordings(root / "data" / f"rec{i:03d}.h5", [r])
        spec = root / "p.toml"
        spec.write_text(f'[pipeline]\ninputs = ["{root}/data/*.h5"]\n[stages.ingest]\n'
                        '[stages.preprocess]\nnormalize = "zscore"\n')
        t0 = time.perf_counter()
        subprocess.run(CLI + ["run", str(spec), "--out", str(root / "run"), "--jobs", str(a.jobs)],
                       check=True, capture_output=True)
        first = time.perf_counter() - t0
        base = timed(["--version"])
        cached = timed(["run", str(spec), "--out", str(root / "run"), "--jobs", str(a.jobs)])
        stat = timed(["status", str(root / "run")])
        out = subprocess.run(CLI + ["run", str(spec), "--out", str(root / "run")],
                             check=True, capture_output=True, text=True).stdout
        assert f"0 ran, {2 * a.units} up to date" in out, out
    print(f"{a.units} units x 2 stages; first run --jobs {a.jobs}: {first:.1f} s")
    print(f"baseline `neurodyn --version`: {base:.2f} s")
    print(f"cached `neurodyn run`:  {cached:.2f} s  ({cached / base:.1f}x baseline)  goal < 2 s")
    print(f"`neurodyn status`:      {stat:.2f} s  ({stat / base:.1f}x baseline)")


if __name__ == "__main__":
    main()
