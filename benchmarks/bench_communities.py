"""Benchmark: weighted nested SBM (ours) against Leiden (leidenalg, weighted modularity).

Prints, per setting, the normalized mutual information (NMI) with the planted partition and
the wall time of each method, on

* weighted LFR-style graphs (N=125, target average degree 25, max degree 50, mixing
  mu = mu_w from 0.25 to 0.75, exponential weights), and
* planted partitions (exponential weights, 2 / 3 / 5 blocks, several signal strengths),
* one dense affinity-like component (N=180, complete graph, 4 blocks visible only in weights)
  for timing at the C. elegans scale.

Extra columns: NMI of the degree-corrected variant forced (``NMI_DC``) and the fraction of
graphs on which the automatic choice (shortest description length) was degree-corrected.

Run: ``python benchmarks/bench_communities.py [--seeds 3] [--n-init 2]``. ``main()`` is also
called by ``benchmarks/bench_connectome.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import normalized_mutual_info_score as nmi

from neurodyn.community.benchmark_graphs import lfr_weighted, planted_partition
from neurodyn.community.leiden import leiden
from neurodyn.community.nested import fit_wsbm

MIXINGS = (0.25, 0.35, 0.45, 0.55, 0.65, 0.75)
PLANTED = (  # (sizes, p_in, p_out, w_in, w_out)
    ([20, 20], 0.5, 0.1, 2.0, 1.0),
    ([15, 15, 15], 0.5, 0.1, 2.0, 1.0),
    ([12] * 5, 0.5, 0.1, 2.0, 1.0),
    ([12] * 5, 0.4, 0.15, 1.5, 1.0),
    ([30] * 4, 0.3, 0.1, 1.0, 1.0),
)


def _compare(W: np.ndarray, truth: np.ndarray, seed: int, n_init: int) -> tuple[float, ...]:
    t0 = time.perf_counter()
    res = fit_wsbm(W, seed=seed, n_init=n_init)
    t_sbm = time.perf_counter() - t0
    t0 = time.perf_counter()
    lb = leiden(W, seed=seed)
    t_leiden = time.perf_counter() - t0
    dc = fit_wsbm(W, seed=seed, n_init=n_init, degree_corrected=True)
    return (nmi(truth, res.membership), res.n_blocks, t_sbm,
            nmi(truth, lb), len(np.unique(lb)), t_leiden,
            nmi(truth, dc.membership), res.degree_corrected)  # fmt: skip


def _row(name: str, rows: list[tuple[float, ...]], true_b: float) -> None:
    a = np.array(rows)
    m = a.mean(axis=0)
    print(f"{name:<34s} {true_b:6.1f} | {m[0]:6.3f} {m[1]:6.1f} {m[2]:8.2f} | "
          f"{m[3]:6.3f} {m[4]:6.1f} {m[5]:8.3f} | {m[2] / max(m[5], 1e-9):8.0f}x | "
          f"{m[6]:6.3f} {m[7]:5.2f}")  # fmt: skip


def _header(title: str) -> None:
    print(f"\n{title}")
    print(f"{'setting':<34s} {'B_true':>6s} | {'NMI':>6s} {'B':>6s} {'time_s':>8s} | "
          f"{'NMI':>6s} {'B':>6s} {'time_s':>8s} | {'t_sbm/t_leiden':>9s} | "
          f"{'NMI_DC':>6s} {'DC?':>5s}")
    print(f"{'':<34s} {'':>6s} | {'--- nested WSBM (ours) ---':^22s} | {'--- Leiden ---':^22s} |"
          "                | DC forced; fraction of graphs where auto chose DC")


def main(n_seeds: int = 2, n_init: int = 2, dense: bool = True) -> dict[str, list]:
    """Run the benchmark, print the tables, return the raw rows."""
    # warm-up: numba compilation is not part of the timings
    W, _ = planted_partition([10, 10], 0.5, 0.1, seed=0)
    fit_wsbm(W, seed=0, n_init=1)
    leiden(W, seed=0)
    out: dict[str, list] = {"lfr": [], "planted": [], "dense": []}
    _header(f"weighted LFR-style, N=125, <k>=25 target, mean over {n_seeds} graphs, "
            f"SBM n_init={n_init}")  # fmt: skip
    for mu in MIXINGS:
        rows, kbar, n_true = [], [], []
        for s in range(n_seeds):
            W, truth = lfr_weighted(n=125, avg_degree=25, max_degree=50, mu=mu, seed=1000 + s)
            kbar.append((W > 0).sum(1).mean())
            n_true.append(len(np.unique(truth)))
            rows.append(_compare(W, truth, s, n_init))
        _row(f"mu={mu:.2f} (realised <k>={np.mean(kbar):.1f})", rows, float(np.mean(n_true)))
        out["lfr"].append((mu, rows))
    _header(f"planted partitions, exponential weights, mean over {n_seeds} graphs")
    for sizes, p_in, p_out, w_in, w_out in PLANTED:
        rows = []
        for s in range(n_seeds):
            W, truth = planted_partition(sizes, p_in, p_out, w_in=w_in, w_out=w_out, seed=2000 + s)
            rows.append(_compare(W, truth, s, n_init))
        name = f"{len(sizes)}x{sizes[0]} p={p_in}/{p_out} w={w_in}/{w_out}"
        _row(name, rows, float(len(sizes)))
        out["planted"].append((sizes, p_in, p_out, w_in, w_out, rows))
    if dense:
        _header("dense affinity-like component: complete graph N=180, 4 blocks in weights only")
        rng = np.random.default_rng(3000)
        truth = np.repeat(np.arange(4), 45)
        same = truth[:, None] == truth[None, :]
        M = np.triu(rng.exponential(1.0, (180, 180)) * np.where(same, 2.0, 1.0), 1)
        rows = [_compare(M + M.T, truth, 0, n_init)]
        _row("N=180 complete, w=2/1", rows, 4.0)
        out["dense"].append(rows)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2, help="graphs per setting")
    ap.add_argument("--n-init", type=int, default=2, help="SBM searches per variant")
    ap.add_argument("--no-dense", action="store_true", help="skip the N=180 dense graph")
    a = ap.parse_args()
    main(n_seeds=a.seeds, n_init=a.n_init, dense=not a.no_dense)
