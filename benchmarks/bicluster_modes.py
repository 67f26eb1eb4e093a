"""Is the all-separate start stuck, or does the posterior have a second mode? (run on demand)

On the published simulation setting, runs one chain from every neuron in its own cluster and one
from all neurons together, then estimates the log evidence log p(y | z, r = 10) of the planted
partition and of each chain's final partition by thermodynamic integration
(:func:`neurodyn.bicluster.evidence.log_evidence`, several ladder seeds), and adds the
partition prior. A large gap in favour of the planted partition means the sampler, not the
model, is at fault where a chain stops elsewhere.

    python benchmarks/bicluster_modes.py [--seed 3] [--sweeps 150] [--repeats 3] [--rungs 40]
        [--rung-sweeps 40] [--jobs 2]     # about 2 minutes with the defaults on 2 cores
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

os.environ.setdefault("NUMBA_NUM_THREADS", "1")


def _data(seed: int):
    from neurodyn.bicluster.simulate import simulate_bicluster

    rec, truth = simulate_bicluster(seed=seed)
    return rec.data.T.astype(float), truth


def _chain(args):
    from neurodyn.bicluster.model import Priors, SamplerConfig
    from neurodyn.bicluster.sampler import run_chain

    seed, init, sweeps = args
    y, _ = _data(seed)
    out = run_chain(y, SamplerConfig(iters=sweeps, burn_in=sweeps // 2, init=init), Priors(), seed + 100)
    return out["final_z"]


def _evidence(args):
    from neurodyn.bicluster.evidence import log_evidence
    from neurodyn.bicluster.model import Priors, SamplerConfig

    seed, z, rep, rungs, sweeps = args
    y, _ = _data(seed)
    return log_evidence(y, z, SamplerConfig(), Priors(), seed=rep, r=10.0, rungs=rungs,
                        sweeps=sweeps)["log_evidence"]


def main() -> None:
    from sklearn.metrics import adjusted_rand_score as ari

    from neurodyn.bicluster.clusters import PartitionPrior
    from neurodyn.bicluster.model import Priors

    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--sweeps", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rungs", type=int, default=40)
    ap.add_argument("--rung-sweeps", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    tic = time.perf_counter()
    _, truth = _data(a.seed)
    with ProcessPoolExecutor(a.jobs) as pool:
        z_sep, z_one = pool.map(_chain, [(a.seed, "separate", a.sweeps), (a.seed, "one", a.sweeps)])
        parts = {"planted": truth["clusters"], "from separate": z_sep, "from one": z_one}
        jobs = [(a.seed, z, rep, a.rungs, a.rung_sweeps) for z in parts.values() for rep in range(a.repeats)]
        ev = np.array(list(pool.map(_evidence, jobs))).reshape(len(parts), a.repeats)
    pri = Priors()
    prior = PartitionPrior(truth["clusters"].size, pri.cluster_prior, pri.mfm_gamma, pri.geom_p, pri.dp_alpha)
    print(f"published setting, seed {a.seed}; chains of {a.sweeps} sweeps; evidence by thermodynamic "
          f"integration ({a.rungs} rungs x {a.rung_sweeps} sweeps, {a.repeats} ladder seeds), r fixed at 10")
    base = None
    for (name, z), e in zip(parts.items(), ev):
        _, zc = np.unique(z, return_inverse=True)
        lp = prior.log_prob(np.bincount(zc).astype(float))
        total = e.mean() + lp
        base = total if base is None else base
        print(f"  {name:14s} {zc.max() + 1:2d} clusters, ARI {ari(truth['clusters'], zc):.3f}: "
              f"log p(y|z) {e.mean():.1f} (sd {e.std(ddof=1):.1f} over ladders), log p(z) {lp:.1f}, "
              f"sum - planted {total - base:+.1f}")
    print(f"({time.perf_counter() - tic:.0f} s)")


if __name__ == "__main__":
    main()
