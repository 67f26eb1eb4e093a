"""Replica exchange (parallel tempering) inside one chain.

A chain runs K replicas of the sampler at inverse temperatures 1 = b_0 > b_1 > ... > b_{K-1}
(geometric, down to ``SamplerConfig.temper_min``). Replica k targets

    f_k ∝ prior(everything) x p(y | psi, r)^b_k,

the likelihood of the counts tempered and every prior (partition, states, dynamics, loadings,
dispersions) not. Every block of the sweep takes b (:class:`~.target.Model` ``beta``): the
Polya-Gamma draws use shapes b (y + r) and kappa = b (y - r) / 2 (:mod:`.pg`), so the Gibbs
and trajectory-collapsed label moves given omega are exact for f_k; the scale moves use
b x the exact likelihood; r is updated at b < 1 by a random-walk Metropolis step
(:func:`~.dispersion.dispersion_mh`; the CRT draw is exact only at b = 1); the annealed
split-merge runs in the b = 1 replica only (leaving a block out keeps a kernel invariant).

After every sweep of all replicas, adjacent pairs (k, k + 1) propose to exchange their whole
states; the pairs alternate between even and odd k from sweep to sweep (the deterministic
even-odd scheme of Okabe et al. 2001, Syed et al. 2022). With l(x) = log p(y | psi(x), r(x))
the untempered log-likelihood, the exchange of x_i (at b_i) and x_j (at b_j) is accepted with
probability min(1, exp((b_i - b_j) (l(x_j) - l(x_i)))): the ratio f_i(x_j) f_j(x_i) /
(f_i(x_i) f_j(x_j)), in which the priors cancel. The product of the f_k is invariant, so the
b = 1 replica, the only one recorded, samples the posterior.
"""

from __future__ import annotations

import time

import numpy as np

from neurodyn.bicluster.target import ChainState, Model


def temperature_ladder(replicas: int, beta_min: float) -> np.ndarray:
    """Inverse temperatures b_0 = 1 > ... > b_{K-1} = ``beta_min``, geometric (K = ``replicas``;
    one replica: [1.0])."""
    if replicas == 1:
        return np.ones(1)
    return np.geomspace(1.0, beta_min, replicas)


def swap_log_ratio(beta_i: float, beta_j: float, ll_i: float, ll_j: float) -> float:
    """Log acceptance ratio of exchanging the states of replicas at b_i and b_j whose
    untempered log-likelihoods are ``ll_i`` and ``ll_j``: (b_i - b_j) (l_j - l_i)."""
    return (beta_i - beta_j) * (ll_j - ll_i)


class Replicas:
    """The K tempered states of one chain, their linear predictors, and the exchanges between
    them (see the module docstring). ``states[0]`` is the b = 1 replica."""

    def __init__(self, model: Model, betas: np.ndarray, init: str, rng: np.random.Generator) -> None:
        self.m = model
        self.betas = np.asarray(betas, dtype=float)
        self.states: list[ChainState] = [model.init_state(init, rng) for _ in self.betas]  # own
        # starts (the
        # factor start is random)
        self.psis = [model.psi(st) for st in self.states]
        K = self.betas.size
        self.swap_prop = np.zeros(max(K - 1, 0), dtype=np.int64)
        self.swap_acc = np.zeros(max(K - 1, 0), dtype=np.int64)

    def sweep(self, kernel, rng: np.random.Generator, it: int, timing: dict | None = None,
              **kw) -> None:
        """One sweep of every replica at its b (``kw`` as for :meth:`~.sampler.Kernel.sweep`;
        ``anneal`` applies to the b = 1 replica only), then the exchanges of sweep ``it``."""
        anneal = kw.pop("anneal", False)
        for k, b in enumerate(self.betas):
            self.m.beta = float(b)
            self.psis[k] = kernel.sweep(self.states[k], self.psis[k], rng, timing,
                                        anneal=anneal and k == 0, **kw)
        self.m.beta = 1.0
        tic = time.perf_counter()
        self.exchange(it % 2, rng)
        if timing is not None:
            timing["exchange"] = timing.get("exchange", 0.0) + time.perf_counter() - tic

    def exchange(self, parity: int, rng: np.random.Generator) -> None:
        """Propose exchanges of the pairs (k, k + 1) with k = parity, parity + 2, ...; each
        replica's move statistics stay with its temperature."""
        K = self.betas.size
        if K < 2:
            return
        ll = [self.m.loglik(st, psi) for st, psi in zip(self.states, self.psis)]
        for k in range(parity, K - 1, 2):
            self.swap_prop[k] += 1
            log_r = swap_log_ratio(self.betas[k], self.betas[k + 1], ll[k], ll[k + 1])
            if np.log(rng.random()) < log_r:
                self.swap_acc[k] += 1
                a, b = self.states[k], self.states[k + 1]
                a.stats, b.stats = b.stats, a.stats
                self.states[k], self.states[k + 1] = b, a
                self.psis[k], self.psis[k + 1] = self.psis[k + 1], self.psis[k]
        cold = self.states[0].stats
        cold["swap_prop"] = int(self.swap_prop.sum())
        cold["swap_acc"] = int(self.swap_acc.sum())

    def acceptance(self) -> np.ndarray:
        """Exchange acceptance rate of each adjacent pair (K - 1,)."""
        return self.swap_acc / np.maximum(self.swap_prop, 1)
