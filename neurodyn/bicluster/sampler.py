"""The Gibbs sweep of the bi-clustering model and the multi-chain driver.

One sweep, in this order (every block is an exact conditional draw or an MH move that leaves
the joint posterior invariant; their composition is a valid MCMC kernel):

1. r_i | y, psi (omega integrated out): CRT augmentation (:mod:`.dispersion`; NB only).
2. omega | y, r, psi: Polya-Gamma draws (:mod:`.pg`). Blocks 3-7 condition on omega.
3. X_k | theta, omega, s, dynamics: FFBS per cluster (:mod:`.ffbs`).
4. s | X, dynamics, pi: discrete FFBS; then beta, pi | s: sticky HDP-HMM (:mod:`.states`).
5. Q per state | X, s (A, b integrated), then (A, b) per cluster and state | Q, X, s: MNIW.
6. (z_i, theta_i) | rest: collapsed Gibbs with one auxiliary cluster (:mod:`.clusters`).
7. split-merge MH proposals (``split_merge`` per sweep), then theta of moved neurons redrawn.

Nothing is restarted or reset during sampling. Thinned post-burn-in samples feed an
:class:`~.summaries.Accumulator`, so memory does not grow with the number of iterations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammaln

from neurodyn.bicluster.clusters import PartitionPrior, marginal_loglik, obs_info, theta_conditional
from neurodyn.bicluster.dispersion import draw_dispersion
from neurodyn.bicluster.ffbs import ffbs, slds_sample, state_loglik
from neurodyn.bicluster.linalg import chol, mvn_logpdf_chol
from neurodyn.bicluster.model import Priors, SamplerConfig
from neurodyn.bicluster.pg import draw_omega, kappa
from neurodyn.bicluster.states import (
    ab_log_evidence,
    sample_ab,
    sample_ab_prior,
    sample_hdp,
    sample_noise_cov,
    sample_q_prior,
    sample_states,
)
from neurodyn.bicluster.summaries import Accumulator

BLOCKS = ("dispersion", "polya_gamma", "trajectories", "states", "dynamics", "labels", "split_merge")
# Split proposals: AR(1) per latent coordinate, coefficient PROP_AR, stationary variance
# PROP_VAR_MU for mu and PROP_VAR_X for x; neuron j observes coordinate 1 (or 0 when p = 0).
PROP_AR, PROP_VAR_MU, PROP_VAR_X = 0.95, 0.1, 1.0


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


class Model:
    """Data and fixed quantities shared by the blocks of one chain."""

    def __init__(self, y: np.ndarray, cfg: SamplerConfig, pri: Priors) -> None:
        self.y = np.asarray(y, dtype=float)
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
        # split-merge proposal model
        v = np.array([PROP_VAR_MU] + [PROP_VAR_X] * cfg.latent_dim)
        self.prop_A = (PROP_AR * np.eye(self.q))[None]
        self.prop_b = np.zeros((1, self.q))
        self.prop_Q = np.diag(v * (1 - PROP_AR**2))[None]
        self.prop_V0 = np.diag(v)
        self.prop_s = np.zeros(self.T, dtype=np.int64)
        self.prop_dim = 1 if self.q > 1 else 0

    # -- helpers -----------------------------------------------------------------------
    def psi(self, st: ChainState) -> np.ndarray:
        """Linear predictor (N, T)."""
        X = np.stack(st.xs)[st.z]  # (N, T, q)
        return (self.off + st.theta[:, 0])[:, None] + X[:, :, 0] + np.einsum("ntj,nj->nt", X[:, :, 1:], st.theta[:, 1:])

    def loglik(self, st: ChainState, psi: np.ndarray) -> float:
        """Count log-likelihood sum_{i,t} log NB(y | r_i, sigmoid(psi))."""
        r = st.r[:, None]
        return float(np.sum(gammaln(self.y + r) - gammaln(r) - self.const
                            - r * np.logaddexp(0, psi) - self.y * np.logaddexp(0, -psi)))

    def x_log_evidence(self, x: np.ndarray, s: np.ndarray, Q: np.ndarray) -> float:
        """log p(x | s, Q) with the cluster's (A, b) integrated out."""
        return mvn_logpdf_chol(x[0], self.x_m0, chol(self.x_V0)) + ab_log_evidence(x, s, Q, self.pri.k0)

    def init_state(self, init: str, rng: np.random.Generator) -> ChainState:
        N, T, q, L = self.N, self.T, self.q, self.L
        if init == "one":
            z = np.zeros(N, dtype=np.int64)
        elif init == "separate":
            z = np.arange(N, dtype=np.int64)
        else:
            k0 = min(N, 5)
            z = np.concatenate([np.arange(k0), rng.integers(0, k0, N - k0)]).astype(np.int64)
            rng.shuffle(z)
        K = int(z.max()) + 1
        s = np.zeros(T, dtype=np.int64)
        Q = sample_q_prior(q, L, self.psi0, self.nu0, rng)
        xs, dyn = [], []
        for _ in range(K):
            xs.append(np.zeros((T, q)))
            dyn.append(sample_ab_prior(Q, self.pri.k0, rng))
        beta = np.full(L, 1.0 / L)
        beta, pi = sample_hdp(s, beta, L, self.pri.hdp_alpha, self.pri.hdp_gamma, self.pri.kappa, rng)
        return ChainState(z=z, theta=self.m0.copy(), r=self.r_init.copy(), xs=xs, dyn=dyn, Q=Q, s=s,
                          beta=beta, pi=pi)

    # -- blocks ------------------------------------------------------------------------
    def update_trajectories(self, st: ChainState, kap, om, rng) -> None:
        for k in range(len(st.xs)):
            mem = np.flatnonzero(st.z == k)
            J, h = obs_info(kap, om, self.off, st.theta, mem)
            A, b = st.dyn[k]
            st.xs[k], _ = ffbs(J, h, A, b, st.Q, st.s, self.x_m0, self.x_V0,
                               rng.standard_normal((self.T, self.q)), st.xs[k], True)

    def update_states(self, st: ChainState, rng) -> None:
        X = np.stack(st.xs)
        A = np.stack([d[0] for d in st.dyn])
        b = np.stack([d[1] for d in st.dyn])
        Q = np.ascontiguousarray(np.broadcast_to(st.Q, (len(st.xs),) + st.Q.shape))
        E = state_loglik(X, A, b, Q)
        st.s = sample_states(E, st.pi, rng.random(self.T))
        p = self.pri
        st.beta, st.pi = sample_hdp(st.s, st.beta, self.L, p.hdp_alpha, p.hdp_gamma, p.kappa, rng)

    def update_dynamics(self, st: ChainState, rng) -> None:
        st.Q = sample_noise_cov(st.xs, st.s, self.L, self.pri.k0, self.psi0, self.nu0, rng)
        st.dyn = [sample_ab(x, st.s, st.Q, self.pri.k0, rng) for x in st.xs]

    def _draw_theta(self, st: ChainState, i: int, kap, om, rng) -> None:
        st.theta[i] = theta_conditional(kap[i], om[i], self.off[i], st.xs[st.z[i]], self.m0[i],
                                        self.prec, rng.standard_normal(self.q))

    def _remove_cluster(self, st: ChainState, k: int, M: np.ndarray | None) -> np.ndarray | None:
        del st.xs[k]
        del st.dyn[k]
        st.z[st.z > k] -= 1
        return None if M is None else np.delete(M, k, axis=1)

    def update_labels(self, st: ChainState, kap, om, rng) -> None:
        """Collapsed Gibbs on (z_i, theta_i), algorithm 8 with one auxiliary cluster."""
        M = marginal_loglik(kap, om, self.off, np.stack(st.xs), self.m0, self.prec)
        used = np.unique(st.s)
        for i in rng.permutation(self.N):
            k_old = st.z[i]
            sizes = np.bincount(st.z, minlength=len(st.xs)).astype(float)
            sizes[k_old] -= 1
            if sizes[k_old] == 0:  # singleton: its own cluster is the auxiliary one
                x_aux, dyn_aux, m_aux = st.xs[k_old], st.dyn[k_old], M[i, k_old]
                M = self._remove_cluster(st, k_old, M)
                sizes = np.delete(sizes, k_old)
                st.z[i] = -1
            else:
                A, b = sample_ab_prior(st.Q, self.pri.k0, rng, states=used)
                x_aux = slds_sample(A, b, st.Q, st.s, self.x_m0, self.x_V0,
                                    rng.standard_normal((self.T, self.q)))
                dyn_aux = (A, b)
                m_aux = marginal_loglik(kap[i:i + 1], om[i:i + 1], self.off[i:i + 1], x_aux[None],
                                        self.m0[i:i + 1], self.prec)[0, 0]
            logw = np.append(self.prior.existing(sizes) + M[i], self.prior.new(sizes.size) + m_aux)
            w = np.exp(logw - logw.max())
            k = int(rng.choice(w.size, p=w / w.sum()))
            if k == sizes.size:  # open the auxiliary cluster
                st.xs.append(x_aux)
                st.dyn.append(self._fill_unused(dyn_aux, st.Q, rng))
                col = marginal_loglik(kap, om, self.off, x_aux[None], self.m0, self.prec)
                M = np.concatenate([M, col], axis=1)
            st.z[i] = k
            self._draw_theta(st, i, kap, om, rng)

    def _fill_unused(self, dyn, Q, rng):
        """Draw from the prior the (A, b) of states an auxiliary cluster did not need yet."""
        A, b = dyn[0].copy(), dyn[1].copy()
        todo = np.flatnonzero(np.isnan(b).any(axis=1))
        if todo.size:
            fa, fb = sample_ab_prior(Q, self.pri.k0, rng, states=todo)
            A[todo], b[todo] = fa[todo], fb[todo]
        return A, b

    def _propose_xb(self, j: int, kap, om, rng, x_eval: np.ndarray | None):
        e = self.prop_dim
        J = np.zeros((self.T, self.q, self.q))
        h = np.zeros((self.T, self.q))
        J[:, e, e] = om[j]
        h[:, e] = kap[j] - om[j] * (self.off[j] + self.m0[j, 0])
        sample = x_eval is None
        xin = np.zeros((self.T, self.q)) if sample else x_eval
        return ffbs(J, h, self.prop_A, self.prop_b, self.prop_Q, self.prop_s, np.zeros(self.q),
                    self.prop_V0, rng.standard_normal((self.T, self.q)), xin, sample)

    def split_merge(self, st: ChainState, kap, om, rng) -> None:
        """One sequentially-allocated split-merge Metropolis-Hastings proposal."""
        if self.N < 2:
            return
        i, j = rng.choice(self.N, 2, replace=False)
        a, b = st.z[i], st.z[j]
        split = a == b
        mem = np.flatnonzero((st.z == a) | (st.z == b))
        rest = rng.permutation(mem[(mem != i) & (mem != j)])
        sizes = np.bincount(st.z, minlength=len(st.xs)).astype(float)
        if split:
            st.stats["split_prop"] += 1
            xb, logq_x = self._propose_xb(j, kap, om, rng, None)
        else:
            st.stats["merge_prop"] += 1
            xb = st.xs[b]
            _, logq_x = self._propose_xb(j, kap, om, rng, xb)
        idx = np.concatenate([[i, j], rest])
        m = marginal_loglik(kap[idx], om[idx], self.off[idx], np.stack([st.xs[a], xb]), self.m0[idx],
                            self.prec)
        na, nb, logq_alloc = 1.0, 1.0, 0.0
        side = np.zeros(idx.size, dtype=np.int64)
        side[1] = 1
        for pos in range(2, idx.size):
            lw = np.array([self.prior.existing(np.array([na]))[0] + m[pos, 0],
                           self.prior.existing(np.array([nb]))[0] + m[pos, 1]])
            p = np.exp(lw - np.logaddexp(lw[0], lw[1]))
            if split:
                side[pos] = int(rng.random() < p[1])
            else:
                side[pos] = int(st.z[idx[pos]] == b)
            logq_alloc += np.log(max(p[side[pos]], 1e-300))
            if side[pos]:
                nb += 1
            else:
                na += 1
        others = np.delete(sizes, [a] if split else [a, b])
        prior_split = self.prior.log_prob(np.append(others, [na, nb]))
        prior_merged = self.prior.log_prob(np.append(others, na + nb))
        lik_split = m[side == 0, 0].sum() + m[side == 1, 1].sum()
        lik_merged = m[:, 0].sum()
        log_ratio = prior_split - prior_merged + lik_split - lik_merged + self.x_log_evidence(xb, st.s, st.Q) \
            - logq_alloc - logq_x
        if split:
            if np.log(rng.random()) < log_ratio:
                st.stats["split_acc"] += 1
                st.xs.append(xb)
                st.dyn.append(sample_ab(xb, st.s, st.Q, self.pri.k0, rng))
                st.z[idx[side == 1]] = len(st.xs) - 1
                for n in idx:
                    self._draw_theta(st, n, kap, om, rng)
        elif np.log(rng.random()) < -log_ratio:
            st.stats["merge_acc"] += 1
            st.z[idx] = a
            self._remove_cluster(st, b, None)
            for n in idx:
                self._draw_theta(st, n, kap, om, rng)

    def sweep(self, st: ChainState, psi: np.ndarray, rng, timing: dict | None = None) -> np.ndarray:
        """One full Gibbs sweep (see the module docstring); returns the new psi."""
        tic = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal tic
            if timing is not None:
                now = time.perf_counter()
                timing[name] = timing.get(name, 0.0) + now - tic
                tic = now

        if self.nb:
            st.r = draw_dispersion(self.y, st.r, psi, self.pri.r_shape, self.pri.r_rate, rng)
        lap("dispersion")
        om = draw_omega(self.y, st.r, psi, rng)
        kap = kappa(self.y, st.r)
        lap("polya_gamma")
        self.update_trajectories(st, kap, om, rng)
        lap("trajectories")
        self.update_states(st, rng)
        lap("states")
        self.update_dynamics(st, rng)
        lap("dynamics")
        self.update_labels(st, kap, om, rng)
        lap("labels")
        for _ in range(self.cfg.split_merge):
            self.split_merge(st, kap, om, rng)
        lap("split_merge")
        return self.psi(st)


def run_chain(
    y: np.ndarray, cfg: SamplerConfig, pri: Priors, seed, init: str | None = None,
    callback: Callable[[int, int, int], None] | None = None, timing: dict | None = None,
) -> dict:
    """Run one chain; returns its :class:`Accumulator` and small traces.

    Parameters
    ----------
    y : (N, T) counts.   seed : int or SeedSequence.   init : overrides ``cfg.init``.
    callback : called as ``callback(iteration, n_clusters, n_states)`` after each sweep.
    timing : dict to which per-block seconds are added.
    """
    rng = np.random.default_rng(seed)
    model = Model(y, cfg, pri)
    st = model.init_state(init or cfg.init, rng)
    psi = model.psi(st)
    acc = Accumulator(model.N, model.T, model.q, model.L)
    all_k, all_s = [], []
    for it in range(cfg.iters):
        psi = model.sweep(st, psi, rng, timing)
        n_states = int(np.unique(st.s).size)
        all_k.append(len(st.xs))
        all_s.append(n_states)
        if it >= cfg.burn_in and (it - cfg.burn_in) % cfg.thin == 0:
            acc.add(st.z, st.s, np.stack(st.xs), st.theta, st.r, model.loglik(st, psi), model.L)
        if callback is not None:
            callback(it, len(st.xs), n_states)
    return {"acc": acc, "n_clusters_all": np.array(all_k), "n_states_all": np.array(all_s),
            "stats": dict(st.stats), "final_z": st.z.copy(), "final_s": st.s.copy()}
