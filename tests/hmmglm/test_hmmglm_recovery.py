"""HMM-GLM recovers ground truth from its own simulator."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from neurodyn.hmmglm.basis import exp_basis, filter_history
from neurodyn.hmmglm.fit import fit_hmmglm, posterior_and_path
from neurodyn.hmmglm.model import ModelSpec
from neurodyn.hmmglm.select import heldout_bits, holdout_split
from neurodyn.hmmglm.simulate import simulate_hmmglm


def match_states(true: np.ndarray, fitted: np.ndarray, K: int) -> tuple[float, np.ndarray]:
    """Hungarian matching: accuracy and ``perm`` with fitted state ``perm[k]`` ~ true ``k``."""
    C = np.zeros((K, K))
    np.add.at(C, (true, fitted), 1)
    r, c = linear_sum_assignment(-C)
    return C[r, c].sum() / true.size, c


def _scores(y, h, tr, res, K, spec=ModelSpec()):
    _, path, _ = posterior_and_path(y, h, res.params, spec, tr["starts"], tr["stops"])
    acc, perm = match_states(tr["states"], path, K)
    corr = np.corrcoef(res.params.W[perm].ravel(), tr["weights"].ravel())[0, 1]
    return acc, corr, perm


def test_small_model_recovers_states_and_weights():
    K = 3
    y, tr = simulate_hmmglm(K, 10, 10, 1000, seed=11, strength=(0.5, 0.9))
    h = filter_history(y, tr["basis"], tr["starts"], tr["stops"])
    res = fit_hmmglm(y, h, K, starts=tr["starts"], stops=tr["stops"], restarts=1, seed=0)
    acc, corr, perm = _scores(y, h, tr, res, K)
    assert acc >= 0.95 and corr >= 0.85, (acc, corr)
    # objective trace never decreases by more than round-off
    assert np.all(np.diff(res.loglik_trace) > -1e-6 * np.abs(res.loglik_trace[1:]))
    np.testing.assert_allclose(res.params.P[perm][:, perm].diagonal(), 0.99, atol=0.02)
    # same seed, same result
    res2 = fit_hmmglm(y, h, K, starts=tr["starts"], stops=tr["stops"], restarts=1, seed=0)
    np.testing.assert_array_equal(res.params.W, res2.params.W)


N_TRIALS = 16


@pytest.mark.slow
def test_published_setting_all_priors():
    """K=5, N=20, classes 0.1/0.8/0.1 (shared connectome); 16 of the 50 trials to stay fast."""
    K = 5
    y, tr = simulate_hmmglm(K, 20, N_TRIALS, 2000, seed=5)
    starts, stops = tr["starts"], tr["stops"]
    h = filter_history(y, tr["basis"], starts, stops)
    train, test = holdout_split(starts, stops, 0.2)
    spec = ModelSpec()
    none = fit_hmmglm(y, h, K, starts=train[0], stops=train[1], restarts=3, seed=0)
    fits = {"none": none}
    for prior in ("gaussian", "onehot"):
        fits[prior] = fit_hmmglm(y, h, K, starts=train[0], stops=train[1], prior=prior,
                                 init=none)
    bits = {}
    for prior, res in fits.items():
        acc, corr, perm = _scores(y, h, tr, res, K)
        bits[prior] = heldout_bits(y, h, res.params, spec, train, test)
        print(f"{prior}: state accuracy {acc:.3f}, W correlation {corr:.3f}, "
              f"held-out {bits[prior]:.4f} bits/spike")
        assert acc >= 0.95, (prior, acc)
        assert corr >= 0.9, (prior, corr)
        if prior == "onehot":
            A = res.prior.adjacency[perm]
            adj_acc = np.mean(A == tr["adjacency"])
            baseline = np.mean(tr["adjacency"] == 0)
            print(f"onehot adjacency accuracy {adj_acc:.3f} vs all-none baseline {baseline:.3f}")
            assert adj_acc >= baseline + 0.5 * (1 - baseline), (adj_acc, baseline)
    # held-out log-likelihood gain over `none`, in nats over the whole test set: a margin of
    # 10 nats is a likelihood ratio of e^10 in favour of the prior
    n_spikes = sum(float(y[a:b].sum()) for a, b in zip(*test))
    for prior in ("gaussian", "onehot"):
        gain = (bits[prior] - bits["none"]) * n_spikes * np.log(2)
        print(f"{prior}: held-out gain over none {gain:.1f} nats")
        assert gain >= 10.0, (prior, bits)


@pytest.mark.parametrize("start", [2.0, 0.5])
def test_learned_basis_recovers_tau(start):
    """Data simulated with tau = 2 bins; EM started from 2x (or 0.5x) the true tau learns it
    back, and predicts held-out bins better than the same fit with the wrong tau kept fixed."""
    from neurodyn.hmmglm.basis import HistorySpec

    tau_true, L, K = 2.0, 8, 3
    y, tr = simulate_hmmglm(K, 10, 8, 1000, n_lags=L, tau=tau_true, seed=1, strength=(0.5, 0.9))
    starts, stops = tr["starts"], tr["stops"]
    train, test = holdout_split(starts, stops, 0.25)
    fits = {}
    for learn in (True, False):
        hist = HistorySpec(L, start * tau_true, starts, stops, learn=learn)
        fits[learn] = fit_hmmglm(y, None, K, starts=train[0], stops=train[1], restarts=1,
                                 seed=0, history=hist)
    res = fits[True]
    assert abs(res.tau - tau_true) <= 0.3 * tau_true, res.tau_trace
    np.testing.assert_allclose(res.basis, exp_basis(L, res.tau))
    assert res.tau_trace[0] == start * tau_true and res.tau_trace.size == res.loglik_trace.size
    assert np.all(np.diff(res.loglik_trace) > -1e-6 * np.abs(res.loglik_trace[1:]))
    acc, _, _ = _scores(y, res.h, tr, res, K)
    assert acc >= 0.95, acc
    bits = {k: heldout_bits(y, r.h, r.params, ModelSpec(), train, test) for k, r in fits.items()}
    n_spikes = sum(float(y[a:b].sum()) for a, b in zip(*test))
    gain = (bits[True] - bits[False]) * n_spikes * np.log(2)
    # 5 nats: a likelihood ratio of e^5 for the learned basis over the fixed wrong one
    assert gain >= 5.0, (gain, bits)
