"""Benchmark: affinity kernel and NTF solver against baselines measured in the same run.

Usage: ``python benchmarks/bench_connectome.py [--small] [--ntf-iters K] [--rank R]``

Default size: 180 neurons x 3,000 frames (4 Hz) x 20 animals from the connectome simulator
(no missing neurons, so every NTF solver sees the same fully observed tensor).

Affinity: the numba kernel runs on every pair of every animal. The vectorised numpy version and
the per-pair Python loop are timed on a subset of pairs of one animal and scaled linearly to
the full problem (stated in the output). Peak memory is the growth of the process's max RSS
during the numba run, compared with the size of a full float64 pair x time x animal array.

NTF: ours (masked HALS, two GEMMs per sweep) vs tensorly's ``non_negative_parafac_hals`` and
``non_negative_parafac`` (multiplicative updates) from the same random initial factors, each for
K sweeps (tol 0). Errors are recomputed exactly from the returned factors. "ours to match" is
ours' iteration count to reach tensorly HALS's final error (from ours' per-sweep error trace,
computed from Gram matrices) times ours' mean time per sweep; ours runs 3K sweeps for this.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import time
from pathlib import Path

import numpy as np


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_affinity(recs, params) -> np.ndarray:
    from neurodyn.affinity.kernels import KINDS, windowed_affinity
    from neurodyn.affinity.reference import affinity_loop, affinity_vectorised
    from neurodyn.affinity.signals import prepare
    from neurodyn.affinity.tensor import build_affinity_tensor, upper_pairs
    from neurodyn.affinity.windows import make_windows, window_samples

    # warm-up (numba compile or cache load) on a tiny problem
    build_affinity_tensor([r.crop(0, 60) for r in recs[:2]], **params)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    tens = build_affinity_tensor(recs, **params)
    t_numba = time.perf_counter() - t0
    rss_peak = _rss_mb() - rss0
    P, W, A = tens.affinity.shape
    T = recs[0].n_samples
    full_gb = P * T * A * 8 / 1e9
    out_gb = (tens.affinity.nbytes + tens.mask.nbytes) / 1e9

    # one animal, kernel only, for like-for-like comparison with the baselines
    rec = recs[0]
    x = rec.data.astype(np.float64)
    obs = np.ones_like(x, dtype=bool)
    s = prepare(x, obs, rec.fs, params["kernel"], params["smooth_s"])
    obsT = np.ascontiguousarray(obs.T)
    pairs = upper_pairs(rec.n_channels)
    win = make_windows(0.0, rec.duration, params["window_s"], params["step_s"])
    start, stop = window_samples(rec.times, win)
    mc = np.maximum(np.ceil(0.5 * (stop - start)), 1).astype(np.int64)
    kind = KINDS[params["kernel"]]
    args = (start, stop, mc, kind, params["sigma"])
    out = np.zeros((len(pairs), len(win)), np.float32)
    ok = np.zeros(out.shape, bool)
    t0 = time.perf_counter()
    windowed_affinity(s, obsT, pairs[:, 0].copy(), pairs[:, 1].copy(), *args, out, ok)
    t_kernel_one = time.perf_counter() - t0
    n_vec = min(len(pairs), 2000)
    t0 = time.perf_counter()
    vec, _ = affinity_vectorised(s, obsT, pairs[:n_vec, 0], pairs[:n_vec, 1], *args)
    t_vec = (time.perf_counter() - t0) * len(pairs) / n_vec
    n_loop = min(len(pairs), 40)
    t0 = time.perf_counter()
    ref, _ = affinity_loop(s, obsT, pairs[:n_loop, 0], pairs[:n_loop, 1], *args)
    t_loop = (time.perf_counter() - t0) * len(pairs) / n_loop
    assert np.max(np.abs(out[:n_loop] - ref)) < 1e-5 and np.max(np.abs(out[:n_vec] - vec)) < 1e-5

    print(f"\n== affinity ({params['kernel']}): N={len(tens.labels)} neurons, P={P} pairs, "
          f"T={T} frames, W={W} windows, A={A} animals ==")
    print(f"numba, whole tensor (signals + kernel, all animals): {t_numba:8.2f} s")
    print(f"one animal, kernel only: numba {t_kernel_one:.3f} s | vectorised numpy "
          f"{t_vec:.3f} s (timed on {n_vec} pairs, scaled) | per-pair loop {t_loop:.1f} s "
          f"(timed on {n_loop} pairs, scaled)")
    print(f"ratio numpy/numba: {t_vec / t_kernel_one:6.1f}x   ratio loop/numba: "
          f"{t_loop / t_kernel_one:8.1f}x")
    print(f"peak RSS growth {rss_peak / 1e3:.2f} GB; output tensor+mask {out_gb:.2f} GB; a full "
          f"float64 pair x time x animal array would be {full_gb:.2f} GB "
          f"(ratio {full_gb / max(rss_peak / 1e3, 1e-9):.1f}x)")
    return tens


def bench_ntf(x: np.ndarray, rank: int, iters: int, seed: int = 0) -> None:
    import tensorly as tl
    from tensorly.cp_tensor import CPTensor
    from tensorly.decomposition import non_negative_parafac, non_negative_parafac_hals

    from neurodyn.tensor.ntf import fit_ntf, masked_relative_error, normalise, random_init

    norm = float(np.linalg.norm(x.astype(np.float64)))
    init = random_init(x.shape, rank, seed, norm)
    rows = []

    t0 = time.perf_counter()
    ours = fit_ntf(x, rank, None, init=[f.copy() for f in init], n_iter_max=3 * iters, tol=0.0)
    t_ours = time.perf_counter() - t0
    rows.append((f"ours (masked HALS, {3 * iters} sweeps)", t_ours, ours.n_iter, ours.relative_error))

    xt = tl.tensor(x)
    results = {}
    for name, fn in (("tensorly non_negative_parafac_hals", non_negative_parafac_hals),
                     ("tensorly non_negative_parafac (MU)", non_negative_parafac)):
        cp = CPTensor((np.ones(rank), [f.copy() for f in init]))
        t0 = time.perf_counter()
        res = fn(xt, rank, n_iter_max=iters, init=cp, tol=0.0)
        dt = time.perf_counter() - t0
        w, fac = normalise([np.asarray(f, dtype=np.float64) for f in res.factors])
        w = w * 1.0  # tensorly's weights are ones unless normalize_factors=True
        err = masked_relative_error(x, None, w, fac)
        results[name] = (dt, err)
        rows.append((name, dt, iters, err))

    print(f"\n== NTF: tensor {x.shape} float32 ({x.nbytes / 1e9:.2f} GB), rank {rank}, "
          f"{iters} sweeps each, same initial factors (seed {seed}) ==")
    print(f"{'method':38s} {'time (s)':>9s} {'s/iter':>8s} {'final rel. error':>17s}")
    for name, dt, n, err in rows:
        print(f"{name:38s} {dt:9.2f} {dt / n:8.3f} {err:17.6f}")
    print(f"ours after {iters} sweeps (per-sweep error trace): {ours.errors[iters - 1]:.6f}")
    t_hals, e_hals = results["tensorly non_negative_parafac_hals"]
    t_mu, e_mu = results["tensorly non_negative_parafac (MU)"]
    per = t_ours / ours.n_iter
    reach = np.flatnonzero(ours.errors <= e_hals + 1e-6)
    print(f"time per sweep: tensorly HALS / ours = {t_hals / iters / per:5.2f}x ; "
          f"tensorly MU / ours = {t_mu / iters / per:5.2f}x")
    if reach.size:
        t_match = (reach[0] + 1) * per
        print(f"ours reaches tensorly HALS's final error {e_hals:.6f} after {reach[0] + 1} sweeps "
              f"= {t_match:.2f} s -> time ratio tensorly HALS / ours = {t_hals / t_match:.2f}x")
    else:
        print(f"ours did not reach tensorly HALS's error {e_hals:.6f} in {iters} sweeps "
              f"(ours {ours.relative_error:.6f})")
    reach = np.flatnonzero(ours.errors <= e_mu + 1e-6)
    if reach.size:
        t_match = (reach[0] + 1) * per
        print(f"ours reaches tensorly MU's final error {e_mu:.6f} after {reach[0] + 1} sweeps "
              f"= {t_match:.2f} s -> time ratio tensorly MU / ours = {t_mu / t_match:.2f}x")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="60 neurons x 1,000 frames x 5 animals")
    ap.add_argument("--ntf-iters", type=int, default=None, help="sweeps per NTF solver")
    ap.add_argument("--rank", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS and numba threads for every method (default 1: on a loaded shared "
                    "machine multi-threaded OpenBLAS spin-waits and times become meaningless)")
    args = ap.parse_args(argv)
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    with threadpool_limits(args.threads):
        _run(args)


def _run(args) -> None:
    from neurodyn.simulate import simulate_calcium

    N, T, A = (60, 1000, 5) if args.small else (180, 3000, 20)
    iters = args.ntf_iters or (50 if args.small else 25)
    print(f"threads: {args.threads} (BLAS and numba); load average at start: "
          f"{os.getloadavg()} on {os.cpu_count()} CPUs "
          "(shared machine: compare ratios, not absolute times)")
    recs, _ = simulate_calcium(n_animals=A, n_neurons=N, n_frames=T, fs=4.0, n_groups=4,
                               missing_fraction=0.0, seed=0)
    params = dict(kernel="differential", window_s=8.0, step_s=4.0, smooth_s=0.5, sigma=2.0)
    tens = bench_affinity(recs, params)
    x = tens.affinity
    assert tens.mask.all()
    bench_ntf(x, args.rank, iters)
    print(f"load average at end: {os.getloadavg()}")
    other = Path(__file__).with_name("bench_communities.py")
    if other.exists():
        spec = importlib.util.spec_from_file_location("bench_communities", other)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        print("\n== bench_communities ==")
        import sys

        argv = [str(other)] + (["--small"] if args.small and "--small" in other.read_text() else [])
        saved, sys.argv = sys.argv, argv
        try:
            mod.main()
        finally:
            sys.argv = saved


if __name__ == "__main__":
    main()
