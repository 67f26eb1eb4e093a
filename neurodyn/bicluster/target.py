"""Target of one chain: the data and fixed quantities (:class:`Model`) and the current values of
every unknown (:class:`ChainState`).

:class:`Model` holds no move: it gives the moves (one class each, in :mod:`.blocks`,
:mod:`.labels`, :mod:`.splitmerge`, :mod:`.anneal`, :mod:`.scale`; composed by
:class:`~.sampler.Kernel`) what they share: the linear predictor and log-likelihood, the start,
and the FFBS passes that return a cluster's trajectory with its Kalman normaliser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.special import gammaln

from neurodyn.bicluster.clusters import (
    PartitionPrior,
    linear_predictor,
    nb_loglik_rows,
    obs_info,
    theta_conditional,
)
from neurodyn.bicluster.ffbs import ffbs, ffbs_filter, ffbs_sample
from neurodyn.bicluster.init import init_factor, init_latents, init_states, similarity
from neurodyn.bicluster.model import X_MAX, Priors, SamplerConfig
from neurodyn.bicluster.states import (
    sample_ab,
    sample_ab_prior,
    sample_hdp,
    sample_noise_cov,
    sample_q_prior,
)


@dataclass
class ChainState:
    """Current values of every unknown of one chain (clusters are kept compact: 0..K-1)."""

    z: np.ndarray  # (N,) int
    theta: np.ndarray  # (N, q): d_i, c_i
    r: np.ndarray  # (N,)
    xs: list  # K arrays (T, q)
    dyn: list  # K tuples (A (L,q,q), b (L,q))
    Q: np.ndarray  # (L, q, q) noise covariance per state, shared by clusters
    s: np.ndarray  # (T,) int
    beta: np.ndarray  # (L,)
    pi: np.ndarray  # (L, L)
    stats: dict = field(default_factory=lambda: {"split_prop": 0, "split_acc": 0, "merge_prop": 0,
                                                 "merge_acc": 0})


class Move(Protocol):
    """One block of the sweep: ``step`` updates ``st`` in place, leaving the target invariant.

    ``kap``, ``om`` are the sweep's Polya-Gamma augmentation (kappa and omega, (N, T)); moves
    that use the exact likelihood ignore them."""

    def step(self, st: ChainState, kap: np.ndarray, om: np.ndarray,
             rng: np.random.Generator) -> None: ...


class Model:
    """Data and fixed quantities shared by the moves of one chain."""

    def __init__(self, y: np.ndarray, cfg: SamplerConfig, pri: Priors, beta: float = 1.0) -> None:
        """``beta`` < 1 samples the tempered posterior prior x likelihood^beta with the
        dispersions r held at their current values (see :mod:`.evidence`)."""
        self.y = np.asarray(y, dtype=float)
        self.beta = float(beta)
        self.N, self.T = self.y.shape
        self.cfg, self.pri = cfg, pri
        self.q = cfg.latent_dim + 1
        self.L = cfg.max_states
        self.nb = cfg.likelihood == "nb"
        self.nu0 = self.q + 1.0 + pri.nu0_extra
        self.psi0 = pri.q_mean * pri.nu0_extra
        self.off = np.zeros(self.N) if self.nb else np.full(self.N, -np.log(cfg.poisson_r))
        r0 = pri.r_shape / pri.r_rate if self.nb else cfg.poisson_r
        mean = np.maximum(self.y.mean(axis=1), 0.1 / self.T)
        self.r_init = np.full(self.N, r0)
        self.m0 = np.zeros((self.N, self.q))
        self.m0[:, 0] = np.log(mean) - np.log(r0) - self.off
        self.prec = 1.0 / np.array([pri.var_d] + [pri.var_c] * cfg.latent_dim)
        self.x_m0 = np.zeros(self.q)
        self.x_V0 = pri.v0 * np.eye(self.q)
        self.prior = PartitionPrior(self.N, pri.cluster_prior, pri.mfm_gamma, pri.geom_p, pri.dp_alpha)
        self.const = gammaln(self.y + 1.0)
        self.sim = similarity(self.y)  # (N, N) |correlation| of smoothed counts (split allocation)

    # -- predictor, likelihood, start -----------------------------------------------------------------------
    def psi(self, st: ChainState) -> np.ndarray:
        """Linear predictor (N, T)."""
        return linear_predictor(np.stack(st.xs), st.z, st.theta, self.off)

    def loglik(self, st: ChainState, psi: np.ndarray) -> float:
        """Count log-likelihood sum_{i,t} log NB(y | r_i, sigmoid(psi))."""
        r = st.r[:, None]
        return float(np.sum(gammaln(self.y + r) - gammaln(r) - self.const)) + nb_loglik_rows(self.y, st.r, psi)

    def init_state(self, init: str, rng: np.random.Generator) -> ChainState:
        """Starting values; ``init`` names the starting partition (see ``SamplerConfig.init``)."""
        N, T, q, L = self.N, self.T, self.q, self.L
        if init == "one":
            z = np.zeros(N, dtype=np.int64)
        elif init == "factor":
            z = init_factor(self.y, int(rng.integers(2**31)), self.cfg.latent_dim)
        elif init == "separate":
            z = np.arange(N, dtype=np.int64)
        else:
            k0 = min(N, 5)
            z = np.concatenate([np.arange(k0), rng.integers(0, k0, N - k0)]).astype(np.int64)
            rng.shuffle(z)
        K = int(z.max()) + 1
        # states start from k-means of smoothed activity (starting values only)
        s = init_states(self.y, L, int(rng.integers(2**31)))
        Q = sample_q_prior(q, L, self.psi0, self.nu0, rng)
        if self.cfg.init_latents:
            xs, theta = init_latents(self.y, z, self.cfg.latent_dim, self.m0[:, 0])
            xs = [np.clip(x, -X_MAX / 2, X_MAX / 2) for x in xs]
            Q = sample_noise_cov(xs, s, L, self.pri.k0, self.psi0, self.nu0, rng)
            dyn = [sample_ab(x, s, Q, self.pri.k0, rng) for x in xs]
        else:
            xs = [np.zeros((T, q)) for _ in range(K)]
            theta = self.m0.copy()
            dyn = [sample_ab_prior(Q, self.pri.k0, rng) for _ in range(K)]
        beta = np.full(L, 1.0 / L)
        beta, pi = sample_hdp(s, beta, L, self.pri.hdp_alpha, self.pri.hdp_gamma, self.pri.kappa, rng)
        return ChainState(z=z, theta=theta, r=self.r_init.copy(), xs=xs, dyn=dyn, Q=Q, s=s,
                          beta=beta, pi=pi)

    # -- shared by the moves -------------------------------------------------------------
    def draw_theta(self, st: ChainState, i: int, kap, om, rng) -> None:
        """Exact conditional draw of theta_i given its cluster's trajectory."""
        st.theta[i] = theta_conditional(kap[i], om[i], self.off[i], st.xs[st.z[i]], self.m0[i],
                                        self.prec, rng.standard_normal(self.q))

    def remove_cluster(self, st: ChainState, k: int, M: np.ndarray | None) -> np.ndarray | None:
        """Delete empty cluster k (and column k of ``M``), keeping labels compact."""
        del st.xs[k]
        del st.dyn[k]
        st.z[st.z > k] -= 1
        return None if M is None else np.delete(M, k, axis=1)

    def cluster_pass(self, kap, om, theta, members, dyn, Q, s, rng, sample: bool, x_in=None):
        """FFBS over one cluster's members: returns (x, log normaliser incl. x-free terms)."""
        return self.info_pass(obs_info(kap, om, self.off, theta, members), dyn, Q, s, rng, sample,
                               x_in)

    def info_pass(self, info, dyn, Q, s, rng, sample: bool, x_in=None):
        """:meth:`cluster_pass` from the members' pseudo-observations ``info`` = (J, h, const)."""
        J, h, const = info
        noise = rng.standard_normal((self.T, self.q)) if sample else np.zeros((self.T, self.q))
        xin = np.zeros((0 if not sample else self.T, self.q)) if x_in is None else x_in
        x, _, logz = ffbs(J, h, dyn[0], dyn[1], Q, s, self.x_m0, self.x_V0, noise, xin, sample)
        return x, logz + const

    def info_filter(self, info, dyn, Q, s):
        """Forward filter only: (lamf, etaf, log normaliser incl. x-free terms); draw the path
        later with :meth:`filter_draw`."""
        J, h, const = info
        lamf, etaf, logz = ffbs_filter(J, h, dyn[0], dyn[1], Q, s, self.x_m0, self.x_V0)
        return lamf, etaf, logz + const

    def filter_draw(self, filt, dyn, Q, s, rng) -> np.ndarray:
        """Backward-sampling pass of FFBS from the output of :meth:`info_filter`."""
        noise = rng.standard_normal((self.T, self.q))
        return ffbs_sample(filt[0], filt[1], dyn[0], dyn[1], Q, s, noise, noise[:0], True)[0]

    def theta_logprior(self, th: np.ndarray, i: int) -> float:
        """log N(theta_i; m0_i, diag(1 / prec))."""
        d = th - self.m0[i]
        return float(-0.5 * np.sum(self.prec * d * d) + 0.5 * np.sum(np.log(self.prec)) - 0.5 * self.q * np.log(2 * np.pi))

    def fill_unused(self, dyn, Q, rng):
        """Draw from the prior the (A, b) of states an auxiliary cluster did not need yet."""
        A, b = dyn[0].copy(), dyn[1].copy()
        todo = np.flatnonzero(np.isnan(b).any(axis=1))
        if todo.size:
            fa, fb = sample_ab_prior(Q, self.pri.k0, rng, states=todo)
            A[todo], b[todo] = fa[todo], fb[todo]
        return A, b
