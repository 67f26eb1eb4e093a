"""Collection scale: wall time, CPU time and peak memory of the C. elegans pipeline vs worms.

    python benchmarks/bench_scale.py [--worms 100,300,900] [--rank 4] [--ranks 2-10]
                                     [--max-iter 20] [--auto 900] [--jobs 2] [--keep DIR]

For each size: `neurodyn simulate collection` writes a stand-in of the Homogenized collection
(published parquet layout), then ingest (labelled neurons, the pipeline file's settings),
affinity (window 30 s, step 15 s, as pipelines/celegans-connectome.toml) and factorize run as
real subprocesses under /usr/bin/time, which reports wall time, user+sys CPU time and peak RSS
of each stage on its own. CPU time is the figure to compare on a loaded machine.

Factorize reads the tensor as per-animal observed blocks and is timed at a fixed ``--rank``
with ``--max-iter`` sweeps and one restart (the per-sweep cost, plus its held-out refit).
``--auto SIZES`` also runs ``--rank auto --ranks 2-10`` for real at those sizes (default
sweeps, tolerance and ``--scan-animals``; ``--jobs`` processes). With ``--keep DIR`` a size's simulated parquet is reused
when present. Growth exponents are least-squares slopes of log(cost) on log(worms). Goals: 900
worms ingest -> affinity -> NTF under 10 min on 2 cores, peak RSS under 8 GB, ingest and
affinity at most linear in worms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CLI = [sys.executable, "-c", "from neurodyn.cli import main; main()"]


def measured(args: list[str], env: dict) -> dict:
    """Run one CLI command under /usr/bin/time: wall s, cpu s (user+sys), peak RSS MB."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        cmd = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", tf.name, *CLI, "-q", *args]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise SystemExit(f"failed: {' '.join(args)}\n{res.stderr[-2000:]}")
        wall, user, sys_, rss_kb = tf.read().split()[-4:]
    return dict(wall=float(wall), cpu=float(user) + float(sys_), rss=float(rss_kb) / 1024)


def slope(x: list[float], y: list[float]) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0]) if len(x) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worms", default="100,300")
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--ranks", default="2-10")
    ap.add_argument("--max-iter", type=int, default=20)
    ap.add_argument("--auto", default="", help="sizes at which to run --rank auto for real")
    ap.add_argument("--restarts", type=int, default=5, help="restarts of the --auto scan")
    ap.add_argument("--jobs", type=int, default=1, help="factorize --jobs of the --auto scan")
    ap.add_argument("--keep", type=Path, default=None, help="keep the files here")
    a = ap.parse_args()
    sizes = [int(w) for w in a.worms.split(",")]
    env = dict(os.environ)
    root = Path(tempfile.mkdtemp(prefix="bench_scale_")) if a.keep is None else a.keep
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in sizes:
        d = root / f"w{n}"
        d.mkdir(exist_ok=True)
        if not (d / "c.parquet").exists():
            measured(["simulate", "collection", "--worms", str(n), "--out",
                      str(d / "c.parquet"), "--seed", "0"], env)
        ing = measured(["ingest", str(d / "c.parquet"), "--labeled-only", "--out",
                        str(d / "rec.h5")], env)
        aff = measured(["affinity", str(d / "rec.h5"), "--window", "30", "--step", "15",
                        "--out", str(d / "aff.h5")], env)
        import h5py

        with h5py.File(d / "aff.h5") as f:
            shape = tuple(int(f.attrs[k]) for k in ("n_pairs", "n_windows", "n_animals"))
            obs = float(f.attrs["observed_fraction"])
        ntf = measured(["factorize", str(d / "aff.h5"), "--rank", str(a.rank), "--restarts", "1",
                        "--max-iter", str(a.max_iter), "--tol", "0", "--out", str(d / "ntf.h5")],
                       env)
        row = dict(worms=n, shape=shape, obs=obs, ingest=ing, affinity=aff, ntf=ntf,
                   mb=(d / "c.parquet").stat().st_size / 2**20)
        if str(n) in a.auto.split(","):
            row["auto"] = measured(["factorize", str(d / "aff.h5"), "--rank", "auto", "--ranks",
                                    a.ranks, "--restarts", str(a.restarts), "--jobs",
                                    str(a.jobs), "--out", str(d / "ntf_auto.h5")], env)
            with h5py.File(d / "ntf_auto.h5") as f:
                row["auto"]["rank"] = int(f.attrs["rank"])
                row["auto"]["n_iter"] = f["restarts/n_iter"][()].tolist()
        rows.append(row)
        print(f"{n} worms done", file=sys.stderr, flush=True)
    print(f"\nneurodyn collection scale ({os.cpu_count()} cores; wall inflated by load, CPU = "
          "user+sys)\n")
    print(f"{'worms':>6} {'parquet MB':>10} {'tensor P x W x A':>20} {'obs':>5} | "
          f"{'ingest wall/cpu s':>17} {'RSS MB':>7} | {'affinity wall/cpu s':>19} {'RSS MB':>7} | "
          f"{'NTF r' + str(a.rank) + ' wall/cpu s':>18} {'RSS MB':>7}")
    for r in rows:
        P, W, A = r["shape"]
        i, f, t = r["ingest"], r["affinity"], r["ntf"]
        print(f"{r['worms']:>6} {r['mb']:>10.0f} {f'{P} x {W} x {A}':>20} {r['obs']:>5.2f} | "
              f"{i['wall']:>8.1f}/{i['cpu']:<8.1f} {i['rss']:>7.0f} | {f['wall']:>9.1f}/{f['cpu']:<9.1f} "
              f"{f['rss']:>7.0f} | {t['wall']:>8.1f}/{t['cpu']:<9.1f} {t['rss']:>7.0f}")
    for r in rows:
        if "auto" in r:
            t, i, f = r["auto"], r["ingest"], r["affinity"]
            total = i["wall"] + f["wall"] + t["wall"]
            print(f"\n{r['worms']} worms, --rank auto --ranks {a.ranks} --restarts {a.restarts} "
                  f"--jobs {a.jobs}: wall {t['wall']:.0f} s, cpu {t['cpu']:.0f} s, peak RSS "
                  f"{t['rss']:.0f} MB; chose rank {t['rank']} (sweeps of its restarts: "
                  f"{t['n_iter']}); ingest + affinity + auto wall {total:.0f} s")
    ws = [r["worms"] for r in rows]
    print("\ngrowth exponent (cost ~ worms^k), CPU time and peak RSS:")
    for stage in ("ingest", "affinity", "ntf"):
        k_cpu = slope(ws, [r[stage]["cpu"] for r in rows])
        k_rss = slope(ws, [r[stage]["rss"] for r in rows])
        line = f"  {stage:>8}: cpu k = {k_cpu:.2f}, RSS k = {k_rss:.2f}"
        if len(ws) > 1 and 900 not in ws:
            c9 = rows[-1][stage]["cpu"] * (900 / ws[-1]) ** k_cpu
            m9 = rows[-1][stage]["rss"] * (900 / ws[-1]) ** k_rss
            line += f"; projected at 900 worms: {c9:.0f} s CPU, {m9 / 1024:.1f} GB"
        print(line)
    if a.keep is None:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
