"""Benchmark of the bi-clustering sampler (not a test; run on demand).

Prints seconds per sweep (total and per block), peak traced memory for two chain lengths
(memory must not grow with iterations), and adjusted Rand indices on the published setting
(30 neurons x 500 bins) and on a scaled one (300 neurons x 5,000 bins; the second half of
``--scaled-sweeps`` is summarised, so its ARI means something from ~100 sweeps). Kernel
ratios are against plain-numpy references measured in the same run. The machine load is printed
because the host is shared.

    python benchmarks/bench_bicluster.py [--sweeps 300] [--scaled-sweeps 3] [--skip-scaled]
    python benchmarks/bench_bicluster.py --quick     # published setting only, timed, ~1 min
    python benchmarks/bench_bicluster.py --sweeps 60 --scaled-sweeps 120   # scaled ARI, ~5 min
    python benchmarks/bench_bicluster.py --real [--real-sweeps 400] [--datasets rat16,phy64]

``--real`` fits real recordings with 4 chains on 2 processes, once with the sampler as it was
before issue 16 ("before": no scale / dispersion / state-run / noise moves, trajectories started at 0)
and once as it is now ("after"), and once with ``--until-converged`` (10-minute budget);
``--configs`` picks others (``defaults``: the stage's defaults; ``tempered``: "after" with
``--temperatures`` replicas per chain down to b = ``--temper-min``; ``matched``: "after" with as
many sweeps as ``tempered`` runs replica sweeps). It
prints rank-normalised R-hat, bulk ESS per second of the log-likelihood, the pairwise ARI of
the chains' final neuron partitions and state sequences, and the wall time:

* rat16: the bundled rat hippocampus sample (16 tetrode units), first 60 s at 100 ms (16 x 600),
  as ``pipelines/sample.toml`` bins it;
* phy64: a phy (Kilosort) folder written from the same file: four consecutive 240 s windows of
  the 16 units as 64 "units" (cluster id 16 w + u), read back by neurodyn's phy reader at 100 ms
  (64 x 2,400). Units of different windows are independent real recordings.

Sweep times are measured without tracemalloc (which slows Python code); peak memory comes from
separate traced runs.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score as ari

from neurodyn.bicluster.ffbs import ffbs, kalman_smoother
from neurodyn.bicluster.model import Priors, SamplerConfig
from neurodyn.bicluster.sampler import BLOCKS, run_chain
from neurodyn.bicluster.simulate import simulate_bicluster
from neurodyn.bicluster.summaries import expand_grid, point_estimate


def load() -> str:
    la = os.getloadavg()
    return f"load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} on {os.cpu_count() or 1} cores"


def kernel_ratio(T: int = 500, q: int = 3, reps: int = 50) -> None:
    rng = np.random.default_rng(0)
    J = np.tile(np.eye(q), (T, 1, 1))
    h = rng.normal(size=(T, q))
    A = np.tile(0.9 * np.eye(q), (2, 1, 1))
    b = np.zeros((2, q))
    Q = np.tile(0.1 * np.eye(q), (2, 1, 1))
    s = rng.integers(0, 2, T)
    args = (J, h, A, b, Q, s, np.zeros(q), np.eye(q))
    ffbs(*args, rng.standard_normal((T, q)), np.zeros((T, q)), True)
    t0 = time.perf_counter()
    for _ in range(reps):
        ffbs(*args, rng.standard_normal((T, q)), np.zeros((T, q)), True)
    t_nb = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(max(3, reps // 10)):
        kalman_smoother(*args)
    t_np = (time.perf_counter() - t0) / max(3, reps // 10)
    print(f"FFBS draw (numba) {t_nb * 1e3:.2f} ms vs numpy RTS smoother (means only) {t_np * 1e3:.2f} ms:"
          f" ratio {t_np / t_nb:.1f}x  (T={T}, q={q})")


def marginal_ratio(N: int = 300, T: int = 5000, K: int = 10, q: int = 3) -> None:
    """All N x K label marginals: matrix products vs the per-pair loop (same results)."""
    from neurodyn.bicluster.clusters import _marginal_loglik_loop, marginal_loglik

    rng = np.random.default_rng(0)
    kap, om = rng.normal(size=(N, T)), rng.gamma(2.0, 1.0, (N, T))
    base, X, m0 = np.zeros(N), rng.normal(size=(K, T, q)), np.zeros((N, q))
    prec = np.ones(q)
    args = (kap, om, base, X, m0, prec)
    _marginal_loglik_loop(kap[:2], om[:2], base[:2], X, m0[:2], prec)  # compile
    marginal_loglik(*args)
    t0 = time.perf_counter()
    ref = _marginal_loglik_loop(*args)
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    new = marginal_loglik(*args)
    t_mm = time.perf_counter() - t0
    print(f"label marginals N={N} x K={K}, T={T}: matrix products {t_mm * 1e3:.1f} ms vs per-pair "
          f"loop {t_loop * 1e3:.1f} ms: ratio {t_loop / t_mm:.1f}x (max |diff| "
          f"{np.abs(new - ref).max():.1e})")


def run(n_neurons, n_clusters, n_bins, segment, sweeps, burn_in, seed=0, init="one", max_states=10,
        trace=False):
    rec, truth = simulate_bicluster(n_neurons=n_neurons, n_clusters=n_clusters, n_bins=n_bins,
                                    segment=segment, seed=seed)
    y = rec.data.T.astype(float)
    cfg = SamplerConfig(iters=sweeps, burn_in=burn_in, thin=2, init=init, max_states=max_states,
                        warmup=min(25, burn_in))
    timing: dict = {}
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    out = run_chain(y, cfg, Priors(), seed, timing=timing)
    el = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] if trace else float("nan")
    if trace:
        tracemalloc.stop()
    acc = out["acc"]
    z = point_estimate(acc.neuron_co / acc.n)
    s = expand_grid(point_estimate((acc.state_co / acc.n).astype(float)), acc.grid, n_bins)
    return {"sec_per_sweep": el / sweeps, "peak_mb": peak / 2**20, "ari_neurons": ari(truth["clusters"], z),
            "ari_states": ari(truth["states"], s), "k_mode": int(np.bincount(acc.n_clusters).argmax()),
            "blocks": {k: timing.get(k, 0.0) / sweeps for k in BLOCKS}}


def show(name: str, r: dict) -> None:
    print(f"{name}: {r['sec_per_sweep']:.3f} s/sweep ({1 / r['sec_per_sweep']:.1f} sweeps/s; goal 20 -> "
          f"{(1 / r['sec_per_sweep']) / 20:.2f}x of goal), peak traced memory {r['peak_mb']:.1f} MiB, "
          f"ARI neurons {r['ari_neurons']:.3f}, ARI states {r['ari_states']:.3f}, modal #clusters {r['k_mode']}")
    print("   per block (ms/sweep): " + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in r["blocks"].items()))


RAT = Path(__file__).resolve().parents[1] / "sample_data" / "spikes" / "all_unit.mat"


def real_datasets(names: list[str], tmp: Path) -> dict[str, np.ndarray]:
    """(N, T) count matrices of the real recordings (see the module docstring)."""
    import scipy.io

    from neurodyn.io.readers.phy import read_phy
    from neurodyn.io.readers.spikes import read_unit_mat

    out = {}
    if "rat16" in names:
        rec = read_unit_mat(RAT, bin_ms=100, t_start=0.0, t_stop=60.0)[0]
        out["rat16"] = rec.data.T.astype(float)
    if "phy64" in names:
        cells = scipy.io.loadmat(RAT)["unit_t"][0]
        times, ids = [], []
        for w in range(4):
            for u, c in enumerate(cells):
                t = np.ravel(c)
                t = t[(t >= 240 * w) & (t < 240 * (w + 1))] - 240 * w
                times.append(np.round(t * 30000).astype(np.int64))
                ids.append(np.full(t.size, 16 * w + u, dtype=np.int64))
        times, ids = np.concatenate(times), np.concatenate(ids)
        order = np.argsort(times, kind="stable")
        folder = tmp / "phy64"
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "spike_times.npy", times[order].astype(np.uint64))
        np.save(folder / "spike_clusters.npy", ids[order].astype(np.int32))
        (folder / "params.py").write_text("sample_rate = 30000.0\nn_channels_dat = 4\n")
        (folder / "cluster_group.tsv").write_text(
            "cluster_id\tgroup\n" + "".join(f"{i}\tgood\n" for i in range(64)))
        rec = read_phy(folder, bin_ms=100, t_start=0.0, t_stop=240.0)[0]
        y = rec.data.T.astype(float)
        out["phy64"] = y[y.sum(axis=1) > 0]
    return out


def real_fit(y: np.ndarray, label: str, sweeps: int, until: bool, temperatures: int = 1,
             temper_min: float = 0.85) -> None:
    """Fit 4 chains with one of the configurations ``before``, ``after``, ``defaults`` (the
    stage's defaults, as pipelines/sample.toml runs it), ``noise`` (the defaults with the
    collapsed noise-covariance moves), ``after_no_noise`` (``after`` without them),
    ``tempered`` (``after`` with
    ``temperatures`` replicas per chain) or ``matched`` (``after`` with ``temperatures`` times
    the sweeps: the same number of replica sweeps as ``tempered``) and print diagnostics."""
    from itertools import combinations

    from neurodyn.bicluster.fit import fit
    from neurodyn.bicluster.model import Until

    before = dict(scale_moves=0, state_moves=0, init_latents=False, state_split_merge=0,
                  noise_moves=0)
    after = dict(scale_moves=2, init_latents=True, noise_moves=1)  # opt-in: see SamplerConfig
    kw = {"before": before, "defaults": {}, "after": after, "matched": after,
          "noise": dict(noise_moves=1), "after_no_noise": after | dict(noise_moves=0),
          "tempered": after | dict(temperatures=temperatures, temper_min=temper_min)}[label]
    if label == "matched":
        sweeps *= temperatures
    cfg = SamplerConfig(iters=sweeps if not until else 20 * sweeps, burn_in=sweeps // 4, thin=1,
                        **kw)
    t0 = time.perf_counter()
    res = fit(y, cfg, Priors(), seed=0, chains=4, jobs=2, desc=label,
              until=Until(seconds=600.0) if until else None)
    wall = time.perf_counter() - t0
    d = res["diagnostics"]
    zs = res["chain_final_clusters"]
    pairs = list(combinations(range(len(zs)), 2))
    ari_z = min(ari(zs[a], zs[b]) for a, b in pairs)
    rh = ", ".join(f"{n} {d['rhat_' + n]:.3f}" for n in ("loglik", "n_clusters", "n_states"))
    tr = res["traces"]
    per_chain = "; ".join(f"{n} " + "/".join(f"{v:.{p}f}" for v in tr[n].mean(axis=1))
                          for n, p in (("loglik", 0), ("n_states", 2)))
    print(f"  {label + (' --until-converged' if until else ''):28s} R-hat {rh}; bulk ESS/s loglik "
          f"{d['ess_bulk_loglik'] / wall:.2f} (ESS {d['ess_bulk_loglik']:.0f}); min pairwise ARI "
          f"of final neuron partitions {ari_z:.2f}; sweeps/chain {d['sweeps_per_chain']}; "
          f"wall {wall:.0f} s" + (f"; stopped by {d['stopped_by']}" if until else "")
          + (f"; exchange acceptance {d['swap_acceptance']:.2f}" if label == "tempered" else "")
          + f"\n    chain means: {per_chain}")


def real(a) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = real_datasets(a.datasets.split(","), Path(tmp))
    for name, y in data.items():
        print(f"{name}: {y.shape[0]} units x {y.shape[1]} bins, 4 chains x {a.real_sweeps} sweeps "
              f"(burn-in {a.real_sweeps // 4}), 2 processes; {load()}")
        for label in a.configs.split(","):
            real_fit(y, label, a.real_sweeps, until=False, temperatures=a.temperatures,
                     temper_min=a.temper_min)
        if not a.skip_until:
            real_fit(y, "after", a.real_sweeps, until=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--real", action="store_true", help="real recordings, before vs after")
    ap.add_argument("--real-sweeps", type=int, default=400)
    ap.add_argument("--datasets", default="rat16,phy64")
    ap.add_argument("--skip-until", action="store_true")
    ap.add_argument("--configs", default="before,after",
                    help="with --real: comma-separated before, after, defaults, noise, after_no_noise, "
                    "tempered, matched (see real_fit)")
    ap.add_argument("--temperatures", type=int, default=4, help="replicas of 'tempered'")
    ap.add_argument("--temper-min", type=float, default=0.85, help="its smallest b")
    ap.add_argument("--sweeps", type=int, default=300)
    ap.add_argument("--scaled-sweeps", type=int, default=3)
    ap.add_argument("--skip-scaled", action="store_true")
    ap.add_argument("--quick", action="store_true", help="published setting only: one timed run")
    a = ap.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    if a.real:
        real(a)
        return
    print(load())
    kernel_ratio()
    marginal_ratio()
    run(30, 3, 500, 100, 5, 2)  # compile
    if a.quick:
        sweeps = min(a.sweeps, 150)
        show(f"published setting, {sweeps} sweeps", run(30, 3, 500, 100, sweeps, sweeps // 3))
        print(load())
        return
    full = run(30, 3, 500, 100, a.sweeps, a.sweeps // 3)
    show(f"published setting, {a.sweeps} sweeps", full)
    m_short = run(30, 3, 500, 100, a.sweeps // 6, a.sweeps // 12, trace=True)
    m_full = run(30, 3, 500, 100, a.sweeps // 2, a.sweeps // 6, trace=True)
    print(f"peak traced memory: {m_short['peak_mb']:.1f} MiB ({a.sweeps // 6} sweeps), "
          f"{m_full['peak_mb']:.1f} MiB ({a.sweeps // 2} sweeps): growth "
          f"{m_full['peak_mb'] / m_short['peak_mb']:.2f}x for 3x the sweeps (flat = 1)")
    if not a.skip_scaled:
        big = run(300, 10, 5000, 500, a.scaled_sweeps, a.scaled_sweeps // 2)
        show(f"scaled 300 neurons x 5000 bins, {a.scaled_sweeps} sweeps", big)
    print(load())


if __name__ == "__main__":
    main()
