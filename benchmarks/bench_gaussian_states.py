"""Benchmark of the Gaussian HMM behind ``states --features bandpower|tde`` against hmmlearn.

Run: ``python benchmarks/bench_gaussian_states.py [--iters 30] [--states 5] [--seconds 60]``.

Features come from the real sample EEG (``sample_data/eeg/Subject00_1.edf``, first
``--seconds`` s, 1-40 Hz, 100 Hz, average reference), as the ``eeg-states`` pipeline makes
them: log band power in 0.1 s windows (4 bands x 21 channels) and the time-delay embedding
(+-7 lags, PCA to 42 components).

Both implementations run the same maximum-likelihood EM (no priors: ``sticky=0``, no
covariance floor; hmmlearn with ``covars_prior=0`` and ``startprob_prior=2``, which is
neurodyn's pseudo-count of 1 on the initial state) for exactly ``--iters`` iterations from
the same parameters, so their log-likelihood traces must agree; printed: wall time of each,
the ratio hmmlearn / neurodyn (> 1: neurodyn faster), and the largest difference between
the two log-likelihood traces relative to the log-likelihood. A third column times
neurodyn's default fit (3 k-means restarts, convergence at relative change 1e-5, sticky 10,
covariance floor 1e-3) for scale. Both run with one BLAS thread. Timings depend on machine
load; ratios measured in the same run remain comparable.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import mne
import numpy as np
from hmmlearn.hmm import GaussianHMM as HmmlearnHMM
from threadpoolctl import threadpool_limits

from neurodyn.hmmglm.features import bandpower_features, parse_bands, tde_features
from neurodyn.hmmglm.gaussian_hmm import GaussianHMM, _init, fit_gaussian_hmm

EDF = Path(__file__).resolve().parents[1] / "sample_data" / "eeg" / "Subject00_1.edf"
BANDS = parse_bands("delta=1-4,theta=4-8,alpha=8-13,beta=13-30")


def eeg(seconds: float) -> tuple[np.ndarray, float]:
    raw = mne.io.read_raw_edf(EDF, preload=True, verbose="error")
    raw.crop(0, seconds).set_eeg_reference("average", verbose="error")
    raw.filter(1.0, 40.0, verbose="error").resample(100.0, verbose="error")
    return raw.get_data().T * 1e6, 100.0


def start(X: np.ndarray, K: int, cov: str) -> GaussianHMM:
    rows = np.arange(len(X))
    return _init(X, rows, K, cov, 0.0, 1e-3, 1, np.array([0]), np.random.default_rng(0))


def run_hmmlearn(X: np.ndarray, m0: GaussianHMM, iters: int) -> tuple[float, np.ndarray]:
    h = HmmlearnHMM(n_components=m0.n_states, covariance_type=m0.covariance, n_iter=iters,
                    tol=-np.inf, init_params="", params="stmc", covars_prior=0.0,
                    startprob_prior=2.0, implementation="scaling")
    h.startprob_, h.transmat_, h.means_ = m0.pi0, m0.P, m0.means
    h.covars_ = m0.covs
    t = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):  # neurodyn fits on one BLAS thread too
        h.fit(X)
    return time.perf_counter() - t, np.asarray(h.monitor_.history)


def run_neurodyn(X: np.ndarray, m0: GaussianHMM, iters: int) -> tuple[float, np.ndarray]:
    t = time.perf_counter()
    fit = fit_gaussian_hmm(X, m0.n_states, covariance=m0.covariance, sticky=0.0, reg=0.0,
                           max_iter=iters, tol=0.0, init=m0)
    return time.perf_counter() - t, fit.loglik_trace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--states", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60.0)
    a = ap.parse_args()
    x, fs = eeg(a.seconds)
    cases = [
        ("bandpower 0.1 s", bandpower_features(x, fs, BANDS, 0.1).X, "diag"),
        ("bandpower 0.1 s", bandpower_features(x, fs, BANDS, 0.1).X, "full"),
        ("tde +-7, PCA 42", tde_features(x, fs, 7, 0, BANDS).X, "full"),
    ]
    fit_gaussian_hmm(cases[0][1][:50], 2, max_iter=2)  # compile the numba kernels first
    print(f"K = {a.states}, {a.iters} EM iterations from the same start, "
          f"{a.seconds:g} s of {EDF.name}")
    print(f"{'features':<18}{'cov':<6}{'T x D':>12}{'hmmlearn s':>12}{'neurodyn s':>12}"
          f"{'ratio':>8}{'max |dLL|/|LL|':>16}{'default fit s':>15}")
    for name, X, cov in cases:
        m0 = start(X, a.states, cov)
        th, llh = run_hmmlearn(X, m0, a.iters)
        tn, lln = run_neurodyn(X, m0, a.iters)
        n = min(len(llh), len(lln))
        dev = float(np.max(np.abs(llh[:n] - lln[:n])) / abs(lln[n - 1]))
        t = time.perf_counter()
        fit_gaussian_hmm(X, a.states, covariance=cov)
        td = time.perf_counter() - t
        print(f"{name:<18}{cov:<6}{f'{X.shape[0]} x {X.shape[1]}':>12}{th:>12.3f}{tn:>12.3f}"
              f"{th / tn:>8.2f}{dev:>16.2e}{td:>15.2f}")


if __name__ == "__main__":
    main()
