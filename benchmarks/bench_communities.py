"""Benchmark: weighted nested SBM (ours) against Leiden and, when available, graph-tool.

The nine settings of issue 18: weighted LFR-style graphs (N = 125, power-law degrees with
exponent 2, community sizes with exponent 1 on [20, 50], mean degree 25, max degree 100;
weights ``w_ij = x_i x_j`` fitted so that node strengths are ``s_i = k_i^beta`` with an
internal share ``1 - mu_w``): beta = 0.5, 1, 2 at mu_t = mu_w = 0.5; then at beta = 2:
mu_t = 0.25, mu_t = 0.5 (other seeds), mu_t = 0.75, k = 10, mu_w = 0.25, mu_w = 0.75; and
three rows of the project's earlier LFR table (exponential weights, max degree 50, mu_w = mu_t).

Per setting, the mean over graphs of the level-0 NMI with the planted partition for

* ``auto``: :func:`fit_wsbm` with ``weights="auto"`` (topology and weight codes chosen by
  description length),
* ``exp``: :func:`fit_wsbm` with its defaults (exponential weights, topology code chosen),
* ``DC``: the degree-corrected variant forced (weight code chosen),
* ``Leiden``: weighted modularity (leidenalg), the same run,
* ``graph-tool``: ``minimize_nested_blockmodel_dl`` with real-exponential weights (level 0),
  when graph-tool can be imported by this python or by ``--graph-tool-python`` (Debian's
  ``python3-graph-tool`` installs for ``/usr/bin/python3``); otherwise the column is ``-``,

and the CPU seconds per graph (``time.process_time`` of this process, or of the graph-tool
subprocess: one core, less sensitive to a shared machine than wall time), the fraction of
graphs where auto chose the degree-corrected code (``DC?``) and the split log-normal weight
code (``SP?``), ``lvl``: the best NMI over auto's non-trivial hierarchy levels, and ``dDL``: the mean of auto's
description length minus that of Leiden's partition under auto's code (nats; negative = the
SBM found a shorter description than Leiden's partition), and ``dDL*`` the same against the
planted partition: negative where the model prefers what it found to the truth (then the model,
not the search, limits the NMI), positive where the search missed a shorter description.

Run: ``python benchmarks/bench_communities.py [--seeds 5] [--small] [--no-graph-tool]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import normalized_mutual_info_score as nmi

from neurodyn.community.benchmark_graphs import lfr_weighted, planted_partition
from neurodyn.community.leiden import leiden
from neurodyn.community.nested import describe_partition, fit_wsbm, weight_code_of

BASE = dict(n=125, avg_degree=25.0, max_degree=100, mu=0.5, mu_w=0.5, strength_exponent=1.0)
SETTINGS = [  # (name, overrides of BASE, seed offset)
    ("beta=0.5", dict(strength_exponent=0.5), 0),
    ("beta=1", dict(strength_exponent=1.0), 0),
    ("beta=2", dict(strength_exponent=2.0), 0),
    ("mu_t=0.25", dict(strength_exponent=2.0, mu=0.25), 0),
    ("mu_t=0.5 (other seeds)", dict(strength_exponent=2.0), 100),
    ("mu_t=0.75", dict(strength_exponent=2.0, mu=0.75), 0),
    ("k=10", dict(strength_exponent=2.0, avg_degree=10.0), 0),
    ("mu_w=0.25", dict(strength_exponent=2.0, mu_w=0.25), 0),
    ("mu_w=0.75", dict(strength_exponent=2.0, mu_w=0.75), 0),
    # the project's earlier LFR table: exponential weights, max degree 50, mu_w = mu_t
    ("exp-LFR mu=0.25", dict(max_degree=50, mu=0.25, mu_w=None, strength_exponent=None), 0),
    ("exp-LFR mu=0.45", dict(max_degree=50, mu=0.45, mu_w=None, strength_exponent=None), 0),
    ("exp-LFR mu=0.65", dict(max_degree=50, mu=0.65, mu_w=None, strength_exponent=None), 0),
]

GT_SCRIPT = r"""
import json, sys, time
import numpy as np
import graph_tool.all as gt
data = np.load(sys.argv[1])
out = []
for idx in range(int(data["count"])):
    W = data[f"W{idx}"]
    i, j = np.nonzero(np.triu(W, 1))
    g = gt.Graph(directed=False)
    g.add_vertex(W.shape[0])
    g.add_edge_list(np.c_[i, j])
    w = g.new_ep("double")
    w.a = W[i, j]
    gt.seed_rng(int(data["seed"][idx]))
    np.random.seed(int(data["seed"][idx]))
    t0 = time.process_time()
    state = gt.minimize_nested_blockmodel_dl(
        g, state_args=dict(recs=[w], rec_types=["real-exponential"]))
    el = time.process_time() - t0
    b = np.asarray(state.levels[0].b.a, dtype=int).tolist()
    out.append(dict(b=b, t=el, dl=float(state.entropy())))
json.dump(out, open(sys.argv[2], "w"))
"""


def graph_tool_python(explicit: str | None) -> str | None:
    """A python that can import graph_tool: ``explicit``, this one, or /usr/bin/python3."""
    cands = [explicit] if explicit else [sys.executable, shutil.which("python3"), "/usr/bin/python3"]
    for py in cands:
        if py and Path(py).exists():
            ok = subprocess.run([py, "-c", "import graph_tool.all"], capture_output=True, timeout=120)
            if ok.returncode == 0:
                return py
    return None


def run_graph_tool(py: str, graphs: list[np.ndarray], seeds: list[int]) -> list[dict]:
    """Fit graph-tool's nested SBM (real-exponential weights) to each graph in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(inp, count=len(graphs), seed=np.array(seeds),
                 **{f"W{i}": W for i, W in enumerate(graphs)})  # fmt: skip
        subprocess.run([py, "-c", GT_SCRIPT, str(inp), str(out)], check=True, timeout=3600)
        return json.loads(out.read_text())


def ours(W: np.ndarray, truth: np.ndarray, seed: int) -> dict:
    t0 = time.process_time()
    res = fit_wsbm(W, seed=seed, weights="auto")
    t_auto = time.process_time() - t0
    t0 = time.process_time()
    default = fit_wsbm(W, seed=seed)
    t_default = time.process_time() - t0
    t0 = time.process_time()
    dc = fit_wsbm(W, seed=seed, degree_corrected=True, weights="auto")
    t_dc = time.process_time() - t0
    t0 = time.process_time()
    lb = leiden(W, seed=seed)
    t_leiden = time.process_time() - t0
    code = dict(degree_corrected=res.degree_corrected, dense=True,
                weights=weight_code_of(res.ensemble))
    ref = describe_partition(W, lb, **code)
    planted = describe_partition(W, truth, **code)
    levels = [b for b in res.level_memberships() if b.max() > 0]
    return dict(auto=nmi(truth, res.membership), t_auto=t_auto, exp=nmi(truth, default.membership),
                t_exp=t_default, dc=nmi(truth, dc.membership),
                t_dc=t_dc, leiden=nmi(truth, lb), t_leiden=t_leiden, chose_dc=res.degree_corrected,
                ddl=res.description_length - ref.description_length, B=res.n_blocks,
                ddl_truth=res.description_length - planted.description_length,
                best_level=max((nmi(truth, b) for b in levels), default=0.0),
                split=res.ensemble.endswith("_split"),
                B_true=len(np.unique(truth)))  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    """Run the benchmark, print the table, return the raw rows per setting."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="graphs per setting (default 5)")
    ap.add_argument("--small", action="store_true", help="2 graphs per setting, no graph-tool")
    ap.add_argument("--no-graph-tool", action="store_true", help="skip the graph-tool column")
    ap.add_argument("--graph-tool-python", default=None, help="python that imports graph_tool")
    ap.add_argument("--settings", default="all", help="comma-separated setting numbers (1-9: issue 18; 10-12: exponential-weight LFR)")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    n_seeds = 2 if args.small else args.seeds
    chosen = (range(len(SETTINGS)) if args.settings == "all"
              else [int(x) - 1 for x in args.settings.split(",")])  # fmt: skip
    py = None if (args.no_graph_tool or args.small) else graph_tool_python(args.graph_tool_python)
    print(f"load average {os.getloadavg()} on {os.cpu_count()} CPUs; times are CPU seconds "
          f"per graph (one core); {n_seeds} graphs per setting; graph-tool: "
          f"{py or 'not run (not importable or skipped)'}")  # fmt: skip
    # warm-up: numba compilation is not part of the timings
    W, _ = planted_partition([10, 10], 0.5, 0.1, seed=0)
    fit_wsbm(W, seed=0, weights="auto")
    hdr = (f"{'setting':<24s} {'B_true':>6s} | {'auto':>5s} {'B':>5s} {'t_auto':>6s} {'DC?':>4s} "
           f"{'SP?':>4s} {'lvl':>5s} {'dDL':>7s} {'dDL*':>7s} | {'exp':>5s} {'t_exp':>5s} | {'DC':>5s} {'t_DC':>5s} | {'Leiden':>6s} {'t_L':>6s} | "
           f"{'g-t':>5s} {'t_g-t':>6s} | {'goal':>5s}")  # fmt: skip
    print(hdr)
    print("-" * len(hdr))
    out: dict[str, list[dict]] = {}
    for si in chosen:
        name, over, off = SETTINGS[si]
        graphs, truths, seeds = [], [], []
        for s in range(n_seeds):
            W, truth = lfr_weighted(**{**BASE, **over}, seed=1000 + off + s)
            graphs.append(W)
            truths.append(truth)
            seeds.append(s)
        rows = [ours(W, t, s) for W, t, s in zip(graphs, truths, seeds)]
        gt_rows = run_graph_tool(py, graphs, seeds) if py else []
        for r, g, t in zip(rows, gt_rows, truths):
            r["gt"] = nmi(t, g["b"])
            r["t_gt"] = g["t"]
        out[name] = rows

        def mean(key: str, rows: list[dict] = rows) -> float:
            vals = [r[key] for r in rows if key in r]
            return float(np.mean(vals)) if vals else float("nan")

        anchor = np.nanmax([mean("gt"), mean("leiden")])
        goal = "ok" if mean("auto") >= anchor - 0.05 else "MISS"
        gt_txt = f"{mean('gt'):5.2f} {mean('t_gt'):6.2f}" if gt_rows else f"{'-':>5s} {'-':>6s}"
        print(f"{name:<24s} {mean('B_true'):6.1f} | {mean('auto'):5.2f} {mean('B'):5.1f} "
              f"{mean('t_auto'):6.2f} {mean('chose_dc'):4.1f} "
              f"{mean('split'):4.1f} {mean('best_level'):5.2f} {mean('ddl'):7.1f} {mean('ddl_truth'):7.1f} | "
              f"{mean('exp'):5.2f} {mean('t_exp'):5.2f} | "
              f"{mean('dc'):5.2f} {mean('t_dc'):5.2f} | {mean('leiden'):6.2f} "
              f"{mean('t_leiden'):6.3f} | {gt_txt} | {goal:>5s}", flush=True)  # fmt: skip
    allrows = [r for rows in out.values() for r in rows]
    t = np.array([r["t_auto"] for r in allrows])
    print(f"auto: {t.mean():.2f} s per graph (max {t.max():.2f}, {np.mean(t > 1):.0%} over 1 s); "
          f"goal = auto NMI >= max(graph-tool, Leiden) - 0.05")
    return out


if __name__ == "__main__":
    main()
