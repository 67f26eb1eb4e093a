"""neurodyn's HALS (``factorize --solver hals``) against tensorly's ``non_negative_parafac_hals``
(``--solver tensorly``) on one complete tensor, from the same random start.

Prints seconds per sweep, sweeps, final relative error and the per-sweep ratio, measured in
this run. Default size: 100 neurons (4,950 pairs) x 300 windows x 5 animals, rank 6.

    python benchmarks/bench_ntf_solvers.py [--neurons 100 --windows 300 --animals 5 --rank 6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from neurodyn.tensor.ntf import fit_ntf, fit_tensorly


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=100)
    ap.add_argument("--windows", type=int, default=300)
    ap.add_argument("--animals", type=int, default=5)
    ap.add_argument("--rank", type=int, default=6)
    ap.add_argument("--sweeps", type=int, default=60)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    shape = (a.neurons * (a.neurons - 1) // 2, a.windows, a.animals)
    factors = [rng.gamma(2.0, 1.0, (n, a.rank)) * (rng.random((n, a.rank)) < 0.4 if i == 0 else 1)
               for i, n in enumerate(shape)]
    x = np.einsum("ir,jr,kr->ijk", *factors)
    x = (x * (1 + 0.1 * rng.standard_normal(x.shape)).clip(0)).astype(np.float32)
    print(f"tensor {shape}, rank {a.rank}, {a.sweeps} sweeps (tol 0)")
    fit_ntf(x[:50], a.rank, n_iter_max=2)  # compile numba kernels outside the timing
    per = {}
    for name, fit in (("neurodyn hals", fit_ntf), ("tensorly hals", fit_tensorly)):
        t = time.perf_counter()
        r = fit(x, a.rank, seed=1, n_iter_max=a.sweeps, tol=0.0)
        dt = time.perf_counter() - t
        per[name] = dt / max(r.n_iter, 1)
        print(f"{name:14s} {per[name]:8.4f} s/sweep  {r.n_iter:4d} sweeps  "
              f"relative error {r.relative_error:.5f}")
    print(f"ratio tensorly / neurodyn per sweep: {per['tensorly hals'] / per['neurodyn hals']:.2f}")


if __name__ == "__main__":
    main()
