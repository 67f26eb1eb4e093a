"""neurodyn's HALS (``factorize --solver hals``) against tensorly's ``non_negative_parafac_hals``
(``--solver tensorly``) on one complete tensor, from the same random start.

Prints seconds per sweep, sweeps, final relative error and the per-sweep ratio, measured in
this run. Default size: 100 neurons (4,950 pairs) x 300 windows x 5 animals, rank 6.

``--observed F`` instead observes a fraction F of the pairs in each animal (as a worm
collection does) and compares neurodyn's exact masked HALS with tensorly's only masked
non-negative solver, ``non_negative_parafac(mask=...)`` (multiplicative updates that impute
the missing entries with the model), from the same start: masked relative error and seconds
of each, and how long neurodyn took to reach tensorly's final error.

    python benchmarks/bench_ntf_solvers.py [--neurons 100 --windows 300 --animals 5 --rank 6]
    python benchmarks/bench_ntf_solvers.py --observed 0.05 --neurons 60 --windows 60 --animals 60
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from neurodyn.tensor.ntf import fit_ntf, fit_tensorly, masked_relative_error, random_init


def masked(x: np.ndarray, rank: int, observed: float, sweeps: int) -> None:
    """Exact masked HALS against tensorly's masked multiplicative updates."""
    from tensorly.cp_tensor import CPTensor
    from tensorly.decomposition import non_negative_parafac

    rng = np.random.default_rng(1)
    P, W, A = x.shape
    mask = np.repeat((rng.random((P, A)) < observed)[:, None, :], W, axis=1)
    print(f"tensor {x.shape}, {mask.mean():.1%} observed, rank {rank}")
    norm2 = float(np.sum((x * mask).astype(np.float64) ** 2))
    init = random_init(x.shape, rank, 1, np.sqrt(norm2 / mask.mean()))
    fit_ntf(x[:50], rank, mask[:50], n_iter_max=2)  # compile numba kernels outside the timing
    t = time.perf_counter()
    cp = non_negative_parafac(np.where(mask, x, 0).astype(np.float64), rank, mask=mask,
                              n_iter_max=sweeps, tol=0, init=CPTensor((np.ones(rank), init)))
    t_tl = time.perf_counter() - t
    w = np.asarray(cp.weights, dtype=float)
    err_tl = masked_relative_error(x, mask, w, [np.asarray(f) for f in cp.factors])
    t = time.perf_counter()
    ours = fit_ntf(x, rank, mask, init=init, n_iter_max=sweeps, tol=1e-6)
    t_nd = time.perf_counter() - t
    reach = int(np.argmax(ours.errors <= err_tl)) + 1 if np.any(ours.errors <= err_tl) else None
    print(f"tensorly non_negative_parafac(mask) {sweeps:4d} sweeps {t_tl:7.2f} s  "
          f"relative error {err_tl:.5f}")
    print(f"neurodyn exact masked HALS          {ours.n_iter:4d} sweeps {t_nd:7.2f} s  "
          f"relative error {ours.relative_error:.5f}")
    if reach:
        t_reach = t_nd * reach / ours.n_iter
        print(f"neurodyn reached tensorly's final error after {reach} sweeps, ~{t_reach:.2f} s: "
              f"{t_tl / t_reach:.1f}x faster to the same error")
    else:
        print("neurodyn did not reach tensorly's final error")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=100)
    ap.add_argument("--windows", type=int, default=300)
    ap.add_argument("--animals", type=int, default=5)
    ap.add_argument("--rank", type=int, default=6)
    ap.add_argument("--sweeps", type=int, default=60)
    ap.add_argument("--observed", type=float, default=None,
                    help="fraction of pairs observed per animal: compare masked solvers")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    shape = (a.neurons * (a.neurons - 1) // 2, a.windows, a.animals)
    factors = [rng.gamma(2.0, 1.0, (n, a.rank)) * (rng.random((n, a.rank)) < 0.4 if i == 0 else 1)
               for i, n in enumerate(shape)]
    x = np.einsum("ir,jr,kr->ijk", *factors)
    x = (x * (1 + 0.1 * rng.standard_normal(x.shape)).clip(0)).astype(np.float32)
    if a.observed is not None:
        masked(x, a.rank, a.observed, max(a.sweeps, 300))
        return
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
