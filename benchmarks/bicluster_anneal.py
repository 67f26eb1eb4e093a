"""What the annealed split-merge (block 9) buys, and what it costs (run on demand).

On the published simulation setting, runs chains from every neuron in its own cluster with the
annealed move off and on (one proposal per sweep) and prints, per seed, the number of clusters
and the neuron ARI at the end, the first sweep whose partition is the planted one, and seconds
per sweep. Then it times chains at rest (started from all neurons together, which reach the
planted partition without block 9) with the move off and on, and prints the cost ratio.

    python benchmarks/bicluster_anneal.py [--seeds 0 1 3] [--sweeps 300] [--jobs 2]
        # about 8 minutes with the defaults on 2 cores
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

os.environ.setdefault("NUMBA_NUM_THREADS", "1")


def _chain(args) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from neurodyn.bicluster.model import Priors, SamplerConfig
    from neurodyn.bicluster.sampler import Kernel
    from neurodyn.bicluster.simulate import simulate_bicluster
    from neurodyn.bicluster.target import Model

    seed, init, every, sweeps = args
    rec, truth = simulate_bicluster(seed=seed)
    cfg = SamplerConfig(iters=sweeps, burn_in=sweeps // 2, init=init, anneal_every=every)
    model = Model(rec.data.T.astype(float), cfg, Priors())
    kernel = Kernel(model)
    rng = np.random.default_rng(seed + 100)
    st = model.init_state(init, rng)
    psi = model.psi(st)
    first = None
    tic = time.perf_counter()
    for it in range(sweeps):
        psi = kernel.sweep(st, psi, rng, labels=it >= cfg.warmup, anneal=every > 0 and (it + 1) % every == 0)
        if first is None and adjusted_rand_score(truth["clusters"], st.z) == 1.0:
            first = it + 1
    sec = time.perf_counter() - tic
    return {"seed": seed, "init": init, "every": every, "clusters": len(st.xs),
            "ari": adjusted_rand_score(truth["clusters"], st.z), "first": first, "sec": sec,
            "per_sweep": sec / sweeps, "stats": st.stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 3])
    ap.add_argument("--sweeps", type=int, default=300)
    ap.add_argument("--rest-sweeps", type=int, default=150)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    jobs = [(s, "separate", e, a.sweeps) for s in a.seeds for e in (0, 1)]
    jobs += [(a.seeds[0], "one", e, a.rest_sweeps) for e in (0, 1)]
    with ProcessPoolExecutor(a.jobs) as ex:
        res = list(ex.map(_chain, jobs))
    print(f"published setting, {a.sweeps} sweeps from every neuron alone (block 9 off vs on, every sweep)")
    print(f"{'seed':>4} {'block 9':>7} {'clusters':>8} {'ARI':>6} {'planted at':>10} {'s/sweep':>8}  merges acc/screened/prop")
    for r in res:
        st = r["stats"]
        merges = (f"{st.get('anneal_merge_acc', 0)}/{st.get('anneal_merge_screened', 0)}/"
                  f"{st.get('anneal_merge_prop', 0)}")
        print(f"{r['seed']:>4} {'on' if r['every'] else 'off':>7} {r['clusters']:>8} {r['ari']:6.3f} "
              f"{str(r['first'] or '-'):>10} {r['per_sweep']:8.3f}  {merges if r['every'] else ''}"
              + ("   (from all in one: cost at rest)" if r["init"] == "one" else ""))
    off = next(r for r in res if r["init"] == "one" and not r["every"])
    on = next(r for r in res if r["init"] == "one" and r["every"])
    print(f"at rest (from all in one, {a.rest_sweeps} sweeps): {on['per_sweep']:.3f} s/sweep with block 9 "
          f"every sweep vs {off['per_sweep']:.3f} without: ratio {on['per_sweep'] / off['per_sweep']:.1f}x")


if __name__ == "__main__":
    main()
