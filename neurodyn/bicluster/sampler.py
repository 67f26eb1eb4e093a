"""The Gibbs sweep of the bi-clustering model and the multi-chain driver.

One sweep, in this order (every block is an exact conditional draw or an MH move that leaves
the joint posterior invariant; their composition is a valid MCMC kernel):

1. r_i | y, psi (omega integrated out): CRT augmentation (:mod:`.dispersion`; NB only).
2. omega | y, r, psi: Polya-Gamma draws (:mod:`.pg`). Blocks 3-7 condition on omega.
3. X_k | theta, omega, s, dynamics: FFBS per cluster (:mod:`.ffbs`).
4. s | X, dynamics, pi: discrete FFBS; then (``state_moves`` each) collapsed relabellings of
   state runs and of single bins with pi and the dynamics integrated out (:mod:`.relabel`);
   then beta, pi | s: sticky HDP-HMM (:mod:`.states`).
5. Q per state | X, s (A, b integrated), then (A, b) per cluster and state | Q, X, s: MNIW.
6. (z_i, theta_i) | rest: collapsed Gibbs with one auxiliary cluster (:mod:`.clusters`).
7. (z_i, theta_i, X_old, X_new): Metropolis-Hastings move of one neuron to another (or a new)
   cluster with both trajectories redrawn by FFBS, so that the acceptance ratio involves the
   trajectory-marginal likelihoods (Kalman normalisers) rather than trajectories already
   fitted to the neuron's own data (see :meth:`Model.move_labels`). This is what lets neurons
   leave small clusters whose trajectory absorbed their noise.
8. split-merge MH proposals (``split_merge`` per sweep) with every trajectory involved redrawn
   by FFBS, so that the ratio involves Kalman normalisers (see :meth:`Model.split_merge`);
   theta is unchanged, a new cluster's (A, b) come from their conditional given the
   trajectory being split; allocation by data similarity.
9. (every ``anneal_every`` sweeps; off by default) an annealed split-merge proposal
   (:mod:`.anneal`): it anneals between the split and the merged partition over a ladder of
   ``anneal_rungs`` tempered targets, redrawing loadings, both trajectories and both clusters'
   dynamics at every rung, and is accepted with the annealed importance weight. Exact for the
   model without the Polya-Gamma variables, it comes last, so the next sweep redraws omega
   before any block uses it.
10. (``scale_moves`` rounds) scale, location and shear moves of each trajectory and the
   mean-preserving dispersion move of each neuron, with omega and the dynamics integrated out
   (:mod:`.scale`); then the dynamics again (block 5), which those moves left stale.

Why block 9 exists: starting from all neurons in separate clusters, blocks 6-8 merge the
published setting down to 15-20 pure clusters (each holds neurons of one planted cluster) and
stall there. That partition is not a competing mode: by thermodynamic integration
(:mod:`.evidence`; ``benchmarks/bicluster_modes.py``) its log evidence is about 360 nats below
the planted one. The barrier is collective: every cluster's trajectory, loadings and (A, b)
have adapted to its few members, so each one-step move loses (moving one neuron between two
pieces of a planted cluster: -3 to -183 nats of Kalman normaliser; merging two pieces with the
loadings realigned: -17 to -490 nats, median -65), although the merges raise the marginal
evidence. Block 9 lets the merged cluster's variables adapt along the way; with
``anneal_every=1`` the separate start reaches the planted partition (see the README for the
figures). The state sequence of such a chain stays wrong until the partition is right.

Cost at scale (N neurons, T bins, K clusters): blocks 1-2 are O(N T) (the Polya-Gamma draws
dominate: ~0.9 us each); block 6 computes all N x K marginals by two matrix products
(:func:`~.clusters.marginal_loglik`); block 7 keeps each cluster's pseudo-observations and
updates them in O(T q^2) when a neuron moves (:func:`~.clusters.shift_info`); its cost is
two FFBS passes per neuron (the target's path is drawn only for accepted moves).

Support: the target is the model's joint density restricted to latent trajectories inside the
box |X| <= X_MAX (:func:`in_box`); every block rejects proposals outside it, which keeps each
block exact for the restricted target and keeps chains finite on real data, where prior draws of
explosive dynamics over thousands of bins otherwise overflow.

Nothing is restarted or reset during sampling. Thinned post-burn-in samples feed an
:class:`~.summaries.Accumulator`, so memory does not grow with the number of iterations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammaln

from neurodyn.bicluster.anneal import Annealer, nb_loglik_rows
from neurodyn.bicluster.clusters import (
    PartitionPrior,
    linear_predictor,
    marginal_loglik,
    obs_info,
    shift_info,
    theta_conditional,
    theta_gaussian,
)
from neurodyn.bicluster.dispersion import draw_dispersion
from neurodyn.bicluster.ffbs import ffbs, ffbs_filter, ffbs_sample, slds_sample, state_loglik
from neurodyn.bicluster.init import init_factor, init_latents, init_states, similarity
from neurodyn.bicluster.linalg import chol, mvn_logpdf_chol
from neurodyn.bicluster.model import X_MAX, Priors, SamplerConfig, in_box
from neurodyn.bicluster.pg import draw_omega, kappa
from neurodyn.bicluster.relabel import relabel_runs
from neurodyn.bicluster.scale import ScaleMoves
from neurodyn.bicluster.states import (
    ab_log_ratio_prior_cond,
    sample_ab,
    sample_ab_prior,
    sample_hdp,
    sample_noise_cov,
    sample_q_prior,
    sample_states,
)
from neurodyn.bicluster.summaries import Accumulator

BLOCKS = ("dispersion", "polya_gamma", "trajectories", "states", "dynamics", "labels", "split_merge",
          "anneal", "scale")


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
        # split-merge proposal model
        # auxiliary trajectory u of move_labels: AR(1) per latent coordinate (cfg.prop_*); neuron
        # j observes coordinate 1 (or 0 when p = 0)
        v = np.array([cfg.prop_var_mu] + [cfg.prop_var_x] * cfg.latent_dim)
        self.prop_A = (cfg.prop_ar * np.eye(self.q))[None]
        self.prop_b = np.zeros((1, self.q))
        self.prop_Q = np.diag(v * (1 - cfg.prop_ar**2))[None]
        self.prop_V0 = np.diag(v)
        self.prop_s = np.zeros(self.T, dtype=np.int64)
        self.prop_dim = 1 if self.q > 1 else 0
        self.sim = similarity(self.y)  # (N, N) |correlation| of smoothed counts (split allocation)
        self.annealer = Annealer(self, cfg.anneal_rungs, cfg.anneal_inner)
        self.scaler = ScaleMoves(self, cfg.scale_sd, cfg.scale_moves, cfg.dispersion_sd)

    # -- helpers -----------------------------------------------------------------------
    def psi(self, st: ChainState) -> np.ndarray:
        """Linear predictor (N, T)."""
        return linear_predictor(np.stack(st.xs), st.z, st.theta, self.off)

    def loglik(self, st: ChainState, psi: np.ndarray) -> float:
        """Count log-likelihood sum_{i,t} log NB(y | r_i, sigmoid(psi))."""
        r = st.r[:, None]
        return float(np.sum(gammaln(self.y + r) - gammaln(r) - self.const)) + nb_loglik_rows(self.y, st.r, psi)

    def init_state(self, init: str, rng: np.random.Generator) -> ChainState:
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

    # -- blocks ------------------------------------------------------------------------
    def update_trajectories(self, st: ChainState, kap, om, rng) -> None:
        for k in range(len(st.xs)):
            mem = np.flatnonzero(st.z == k)
            J, h, _ = obs_info(kap, om, self.off, st.theta, mem)
            A, b = st.dyn[k]
            x, _, _ = ffbs(J, h, A, b, st.Q, st.s, self.x_m0, self.x_V0,
                           rng.standard_normal((self.T, self.q)), st.xs[k], True)
            if in_box(x):  # else keep the current path (MH step; see in_box)
                st.xs[k] = x

    def update_states(self, st: ChainState, rng) -> None:
        X = np.stack(st.xs)
        A = np.stack([d[0] for d in st.dyn])
        b = np.stack([d[1] for d in st.dyn])
        Q = np.ascontiguousarray(np.broadcast_to(st.Q, (len(st.xs),) + st.Q.shape))
        E = state_loglik(X, A, b, Q)
        st.s = sample_states(E, st.pi, rng.random(self.T))
        p = self.pri
        n = self.cfg.state_moves
        if n:  # collapsed relabelling of runs, then of single bins (pi and dynamics integrated
            # out; both are redrawn below)
            for runs in (True, False):
                key = "relabel" if runs else "relabel_bin"
                st.stats[f"{key}_prop"] = st.stats.get(f"{key}_prop", 0) + n
                st.stats[f"{key}_acc"] = st.stats.get(f"{key}_acc", 0) + relabel_runs(
                    X, st.s, st.beta, p.hdp_alpha, p.kappa, p.k0, self.psi0, self.nu0,
                    rng.integers(0, self.T, n), rng.random(n), runs)
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
                m_aux = (marginal_loglik(kap[i:i + 1], om[i:i + 1], self.off[i:i + 1], x_aux[None],
                                         self.m0[i:i + 1], self.prec)[0, 0]
                         if in_box(x_aux) else -np.inf)
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

    def _cluster_pass(self, kap, om, theta, members, dyn, Q, s, rng, sample: bool, x_in=None):
        """FFBS over one cluster's members: returns (x, log normaliser incl. x-free terms)."""
        return self._info_pass(obs_info(kap, om, self.off, theta, members), dyn, Q, s, rng, sample,
                               x_in)

    def _info_pass(self, info, dyn, Q, s, rng, sample: bool, x_in=None):
        """:meth:`_cluster_pass` from the members' pseudo-observations ``info`` = (J, h, const)."""
        J, h, const = info
        noise = rng.standard_normal((self.T, self.q)) if sample else np.zeros((self.T, self.q))
        xin = np.zeros((0 if not sample else self.T, self.q)) if x_in is None else x_in
        x, _, logz = ffbs(J, h, dyn[0], dyn[1], Q, s, self.x_m0, self.x_V0, noise, xin, sample)
        return x, logz + const

    def _info_filter(self, info, dyn, Q, s):
        """Forward filter only: (lamf, etaf, log normaliser incl. x-free terms); draw the path
        later with :meth:`_filter_draw`."""
        J, h, const = info
        lamf, etaf, logz = ffbs_filter(J, h, dyn[0], dyn[1], Q, s, self.x_m0, self.x_V0)
        return lamf, etaf, logz + const

    def _filter_draw(self, filt, dyn, Q, s, rng) -> np.ndarray:
        """Backward-sampling pass of FFBS from the output of :meth:`_info_filter`."""
        noise = rng.standard_normal((self.T, self.q))
        return ffbs_sample(filt[0], filt[1], dyn[0], dyn[1], Q, s, noise, noise[:0], True)[0]

    def _theta_logprior(self, th: np.ndarray, i: int) -> float:
        d = th - self.m0[i]
        return float(-0.5 * np.sum(self.prec * d * d) + 0.5 * np.sum(np.log(self.prec)) - 0.5 * self.q * np.log(2 * np.pi))

    @staticmethod
    def _gauss_logpdf(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> float:
        return float(mvn_logpdf_chol(x, mean, chol(cov)))

    @staticmethod
    def _gauss_draw(mean: np.ndarray, cov: np.ndarray, rng) -> np.ndarray:
        """One draw of N(mean, cov) through the (numba) Cholesky factor of cov."""
        return mean + chol(cov) @ rng.standard_normal(mean.size)

    def _new_theta_logq(self, th: np.ndarray, i: int, mean_u: np.ndarray, cov_u: np.ndarray) -> float:
        """log density of the theta proposal for a new cluster: an equal mixture of the Gaussian
        given the auxiliary trajectory u and the prior (the prior part keeps the reverse of a
        move out of a singleton plausible whatever the rotation of its latent axes)."""
        return float(np.logaddexp(self._gauss_logpdf(th, mean_u, cov_u), self._theta_logprior(th, i))
                     + np.log(0.5))

    def _move_weights(self, K: int, own: int, singleton: bool) -> tuple[np.ndarray, float]:
        """Proposal over the K target clusters (uniform over existing != own) and P(new)."""
        p_new = 0.0 if singleton else (self.cfg.new_prob if K > 1 else 1.0)
        e = np.zeros(K)
        if K > 1:
            e[np.arange(K) != own] = (1 - p_new) / (K - 1)
        return e, p_new

    def move_labels(self, st: ChainState, kap, om, rng) -> None:
        """Trajectory-collapsed Metropolis-Hastings move of each neuron (block 7).

        For neuron i in cluster a, propose a target b (an existing cluster, uniformly, or a new
        cluster with probability ``cfg.new_prob``) and theta_i' (from its Gaussian conditional given X_b
        with sd inflated by ``cfg.theta_scale``; for a new cluster, whose (A, b) come from their prior,
        an equal mixture of the prior and the same Gaussian given an auxiliary trajectory u drawn
        by FFBS from a fixed AR model observing neuron i alone: u's law depends only on
        (y_i, omega_i), so it is an auxiliary variable shared by the move and its reverse); then redraw X_a without i and X_b with i by FFBS. Because each FFBS
        draw is the exact conditional of its trajectory, the acceptance ratio reduces to
        Z_a(-i) Z_b(+i) / (Z_a Z_b) times prior and proposal ratios, where Z are the Kalman
        normalisers (marginal augmented likelihoods of the members with the trajectory
        integrated out). The reverse move is scored with the same rules from the new state.
        """
        # pseudo-observations (J, h, const) of each cluster, updated in O(T q^2) when a neuron
        # moves (:func:`shift_info`), and the clusters' log normalisers
        info = [obs_info(kap, om, self.off, st.theta, np.flatnonzero(st.z == k))
                for k in range(len(st.xs))]
        zcache = [self._info_pass(info[k], st.dyn[k], st.Q, st.s, rng, False)[1]
                  for k in range(len(st.xs))]
        for i in rng.permutation(self.N):
            a = int(st.z[i])
            K = len(st.xs)
            sizes = np.bincount(st.z, minlength=K).astype(float)
            single_a = sizes[a] == 1
            e, p_new = self._move_weights(K, a, single_a)
            if e.sum() + p_new <= 0:
                continue
            u = rng.random()
            new = u < p_new
            log_q_fwd = 0.0
            # auxiliary proposal trajectory u ~ g(u | y_i, omega_i): its law does not depend on the
            # state, so it is an independent auxiliary variable shared by the move and its reverse
            # (drawn only when a move of this kind, or its reverse, needs it)
            if new or single_a:
                u_aux, _, _ = self._propose_xb(i, kap, om, rng, None)
                mean_u, cov_u = theta_gaussian(kap[i], om[i], self.off[i], u_aux, self.m0[i], self.prec)
                cov_u = cov_u * self.cfg.theta_scale**2
            if new:
                b = K
                log_q_fwd += np.log(p_new)
                dyn_b = sample_ab_prior(st.Q, self.pri.k0, rng)
                if rng.random() < 0.5:
                    th_new = self._gauss_draw(mean_u, cov_u, rng)
                else:
                    th_new = self.m0[i] + rng.standard_normal(self.q) / np.sqrt(self.prec)
                log_q_fwd += self._new_theta_logq(th_new, i, mean_u, cov_u)
            else:
                b = int(rng.choice(K, p=e / e.sum()))
                log_q_fwd += np.log(e[b])
                dyn_b = st.dyn[b]
                mean, cov = theta_gaussian(kap[i], om[i], self.off[i], st.xs[b], self.m0[i], self.prec)
                cov = cov * self.cfg.theta_scale**2
                th_new = self._gauss_draw(mean, cov, rng)
                log_q_fwd += self._gauss_logpdf(th_new, mean, cov)
            za_old = zcache[a]
            zb_old = 0.0 if new else zcache[b]
            info_b = (obs_info(kap[i:i + 1], om[i:i + 1], self.off[i:i + 1], th_new[None],
                               np.zeros(1, dtype=np.int64)) if new
                      else shift_info(*info[b], kap[i], om[i], self.off[i], th_new, 1.0))
            # X_b's path enters the ratio only through its box indicator: it is drawn below, after
            # the uniform, and only if the move would otherwise be accepted (same law)
            filt_b = self._info_filter(info_b, dyn_b, st.Q, st.s)
            zb_new = filt_b[2]
            if single_a:
                xa_new, za_new = None, 0.0
            else:
                info_a = shift_info(*info[a], kap[i], om[i], self.off[i], st.theta[i], -1.0)
                xa_new, za_new = self._info_pass(info_a, st.dyn[a], st.Q, st.s, rng, True)
            # reverse proposal, scored in the proposed state
            new_sizes = sizes.copy()
            new_sizes[a] -= 1
            if new:
                new_sizes = np.append(new_sizes, 1.0)
            else:  # i joins b
                new_sizes[b] += 1
            if single_a:  # a disappears: the reverse is a "new" move, theta from the prior
                own_rev = b - 1 if b > a else b
                e_r, p_new_r = self._move_weights(K - 1, own_rev, new_sizes[b] == 1)
                log_q_rev = (np.log(p_new_r) + self._new_theta_logq(st.theta[i], i, mean_u, cov_u)
                             if p_new_r > 0 else -np.inf)
                # (A, b) of the vanished cluster are redrawn from their prior in the reverse move:
                # that density cancels the prior term of the target, so neither is written.
                sizes_new = new_sizes[new_sizes > 0]
            else:
                e_r, _ = self._move_weights(K + int(new), b, new_sizes[b] == 1)
                log_q_rev = np.log(e_r[a]) if e_r[a] > 0 else -np.inf
                mean_r, cov_r = theta_gaussian(kap[i], om[i], self.off[i], xa_new, self.m0[i], self.prec)
                log_q_rev += self._gauss_logpdf(st.theta[i], mean_r, cov_r * self.cfg.theta_scale**2)
                sizes_new = new_sizes
            log_target = (self.prior.log_prob(sizes_new) - self.prior.log_prob(sizes)
                          + self._theta_logprior(th_new, i) - self._theta_logprior(st.theta[i], i)
                          + za_new + zb_new - za_old - zb_old)
            log_alpha = log_target + log_q_rev - log_q_fwd
            if not (xa_new is None or in_box(xa_new)):
                log_alpha = -np.inf
            st.stats["move_prop"] = st.stats.get("move_prop", 0) + 1
            if np.log(rng.random()) < log_alpha:
                xb_new = self._filter_draw(filt_b, dyn_b, st.Q, st.s, rng)
                if not in_box(xb_new):
                    continue
                st.stats["move_acc"] = st.stats.get("move_acc", 0) + 1
                st.theta[i] = th_new
                if new:
                    st.xs.append(xb_new)
                    st.dyn.append(dyn_b)
                    zcache.append(zb_new)
                    info.append(info_b)
                else:
                    st.xs[b] = xb_new
                    zcache[b] = zb_new
                    info[b] = info_b
                st.z[i] = b
                if single_a:
                    self._remove_cluster(st, a, None)
                    del zcache[a]
                    del info[a]
                else:
                    st.xs[a] = xa_new
                    zcache[a] = za_new
                    info[a] = info_a

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

    def _allocate(self, i: int, j: int, rest: np.ndarray, side_given: np.ndarray | None, rng):
        """Sequential allocation of ``rest`` to i's side (0) or j's side (1) by data similarity.

        Neuron k goes to side 1 with probability sigmoid(cfg.alloc_tau * (s1 - s0)), s_x the mean
        |correlation| (:attr:`Model.sim`, data only) of k with the neurons already on side x.
        With ``side_given`` the sides are scored instead of drawn. Returns (sides, log q)."""
        sim = self.sim
        side = np.empty(rest.size, dtype=np.int64)
        tot = np.array([sim[rest, i], sim[rest, j]])  # running sums of similarities per side
        cnt = np.array([1.0, 1.0])
        logq = 0.0
        for pos in range(rest.size):
            diff = self.cfg.alloc_tau * (tot[1, pos] / cnt[1] - tot[0, pos] / cnt[0])
            lp1, lp0 = -np.logaddexp(0.0, -diff), -np.logaddexp(0.0, diff)
            sd = int(rng.random() < np.exp(lp1)) if side_given is None else int(side_given[pos])
            side[pos] = sd
            logq += lp1 if sd else lp0
            tot[sd] += sim[rest, rest[pos]]
            cnt[sd] += 1.0
        return side, logq

    def proposal_sides(self, st: ChainState, i: int, j: int, rng):
        """Split-merge proposal anchored at neurons (i, j): the other members of their clusters
        in random order, allocated by :meth:`_allocate` (drawn for a split, scored for a merge).

        Returns (side_i, side_j, log q_alloc, log p(z_S), log p(z_M)): i's and j's sides, the
        allocation's log probability and the partition prior of the split and merged states."""
        a, b = int(st.z[i]), int(st.z[j])
        split = a == b
        mem = np.flatnonzero((st.z == a) | (st.z == b))
        rest = rng.permutation(mem[(mem != i) & (mem != j)])
        side, logq_alloc = self._allocate(i, j, rest, None if split else (st.z[rest] == b).astype(np.int64), rng)
        side_i = np.append(rest[side == 0], i)
        side_j = np.append(rest[side == 1], j)
        sizes = np.bincount(st.z, minlength=len(st.xs)).astype(float)
        others = np.delete(sizes, [a] if split else [a, b])
        prior_split = self.prior.log_prob(np.append(others, [side_i.size, side_j.size]))
        prior_merged = self.prior.log_prob(np.append(others, side_i.size + side_j.size))
        return side_i, side_j, logq_alloc, prior_split, prior_merged

    def split_merge(self, st: ChainState, kap, om, rng) -> None:
        """One trajectory-collapsed split-merge Metropolis-Hastings proposal.

        Pick an ordered pair (i, j), i != j, uniformly; a = z_i, b = z_j. Every trajectory of
        the clusters involved is redrawn by FFBS from its exact conditional, so the ratio
        involves Kalman normalisers Z(members | theta, (A, b)) (trajectories integrated out)
        instead of the density of a proposed trajectory; theta is unchanged.

        Split (a == b): the others of a go to i's side or j's side by :meth:`_allocate`
        (probability q_alloc). i's side keeps (A, b)_a; j's side gets a new cluster whose
        (A, b) are drawn, for the states used by s, from their matrix-normal conditional given
        the current X_a (density q_D; prior for the other states, which cancels). Both
        trajectories are then drawn by FFBS. Merge (a != b): j's cluster joins a, which keeps
        (A, b)_a; the merged trajectory X_m is drawn by FFBS; the reverse split is scored with
        q_alloc and q_D given X_m. With S the split state, M the merged one, I = i's side,
        B = j's side and theta fixed,

            log r = log p(z_S) - log p(z_M) + log Z_I(D_a) + log Z_B(D_b) - log Z_{I+B}(D_a)
                    + log p(D_b) - log q_D(D_b | X_M) - log q_alloc,

        accepted with probability min(1, r) for a split, min(1, 1 / r) for a merge (FFBS
        densities of the new trajectories cancel against the target, leaving the Z; the
        trajectory discarded by the move is the one the reverse move would draw by FFBS).
        A proposed trajectory outside the box is rejected (see :func:`in_box`).
        """
        if self.N < 2:
            return
        i, j = rng.choice(self.N, 2, replace=False)
        a, b = int(st.z[i]), int(st.z[j])
        split = a == b
        used = np.unique(st.s[1:])
        st.stats["split_prop" if split else "merge_prop"] += 1
        side_i, side_j, logq_alloc, prior_split, prior_merged = self.proposal_sides(st, i, j, rng)
        both = np.concatenate([side_i, side_j])
        if split:
            x_m = st.xs[a]
            z_m = self._cluster_pass(kap, om, st.theta, both, st.dyn[a], st.Q, st.s, rng, False)[1]
            dyn_b = self._fill_unused(sample_ab(x_m, st.s, st.Q, self.pri.k0, rng, states=used), st.Q, rng)
            x_i, z_i = self._cluster_pass(kap, om, st.theta, side_i, st.dyn[a], st.Q, st.s, rng, True)
            x_j, z_j = self._cluster_pass(kap, om, st.theta, side_j, dyn_b, st.Q, st.s, rng, True)
            ok = in_box(x_i) and in_box(x_j)
        else:
            dyn_b = st.dyn[b]
            x_m, z_m = self._cluster_pass(kap, om, st.theta, both, st.dyn[a], st.Q, st.s, rng, True)
            z_i = self._cluster_pass(kap, om, st.theta, side_i, st.dyn[a], st.Q, st.s, rng, False)[1]
            z_j = self._cluster_pass(kap, om, st.theta, side_j, dyn_b, st.Q, st.s, rng, False)[1]
            ok = in_box(x_m)
        log_d = ab_log_ratio_prior_cond(dyn_b[0], dyn_b[1], x_m, st.s, st.Q, self.pri.k0, used)
        log_ratio = prior_split - prior_merged + z_i + z_j - z_m + log_d - logq_alloc
        if not ok:
            return
        if split:
            if np.log(rng.random()) < log_ratio:
                st.stats["split_acc"] += 1
                st.xs[a] = x_i
                st.xs.append(x_j)
                st.dyn.append(dyn_b)
                st.z[side_j] = len(st.xs) - 1
        elif np.log(rng.random()) < -log_ratio:
            st.stats["merge_acc"] += 1
            st.xs[a] = x_m
            st.z[side_j] = a
            self._remove_cluster(st, b, None)

    def sweep(self, st: ChainState, psi: np.ndarray, rng, timing: dict | None = None,
              labels: bool = True, label_gibbs: bool = True, single_moves: bool = True,
              split_merge: int | None = None, anneal: bool = False) -> np.ndarray:
        """One full Gibbs sweep (see the module docstring); returns the new psi.

        ``labels=False`` (used for the first ``warmup`` sweeps, part of the initialisation)
        keeps the neuron labels fixed and only redraws theta. ``label_gibbs=False`` and
        ``single_moves=False`` leave out block 6 and block 7 (without block 6, theta is redrawn
        given the labels), ``split_merge`` overrides ``cfg.split_merge`` (tests compare the label
        kernels this way). ``anneal`` adds one annealed split-merge proposal (block 9)."""
        tic = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal tic
            if timing is not None:
                now = time.perf_counter()
                timing[name] = timing.get(name, 0.0) + now - tic
                tic = now

        if self.nb and self.beta == 1.0:
            st.r = draw_dispersion(self.y, st.r, psi, self.pri.r_shape, self.pri.r_rate, rng)
        lap("dispersion")
        om = draw_omega(self.y, st.r, psi, rng, self.beta)
        kap = kappa(self.y, st.r, self.beta)
        lap("polya_gamma")
        self.update_trajectories(st, kap, om, rng)
        lap("trajectories")
        self.update_states(st, rng)
        lap("states")
        self.update_dynamics(st, rng)
        lap("dynamics")
        if labels and label_gibbs:
            self.update_labels(st, kap, om, rng)
        else:
            for i in range(self.N):
                self._draw_theta(st, i, kap, om, rng)
        if labels and single_moves:
            self.move_labels(st, kap, om, rng)
        lap("labels")
        n_sm = self.cfg.split_merge if split_merge is None else split_merge
        for _ in range(n_sm if labels else 0):
            self.split_merge(st, kap, om, rng)
        lap("split_merge")
        if labels and anneal:  # last: it leaves omega stale, and the next sweep redraws omega first
            self.annealer.propose(st, rng)
        lap("anneal")
        if self.cfg.scale_moves:  # exact likelihood, dynamics integrated out: redraw them after
            self.scaler.propose(st, rng)
            self.update_dynamics(st, rng)
        lap("scale")
        return self.psi(st)


class Chain:
    """One chain that advances sweep by sweep (so that a driver can stop it when the chains
    agree): its model, state, random stream, accumulator and traces."""

    def __init__(self, y: np.ndarray, cfg: SamplerConfig, pri: Priors, seed,
                 init: str | None = None) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        self.model = Model(y, cfg, pri)
        self.st = self.model.init_state(init or cfg.init, self.rng)
        self.psi = self.model.psi(self.st)
        m = self.model
        self.acc = Accumulator(m.N, m.T, m.q, m.L, cfg.max_similarity_bins)
        self.all_k: list[int] = []
        self.all_s: list[int] = []
        self.it = 0

    def step(self, timing: dict | None = None) -> tuple[float, float, float] | None:
        """One sweep; returns (n_clusters, n_states, log-likelihood) when the sweep is a kept
        (post-burn-in, thinned) draw, else None."""
        cfg, m, st, it = self.cfg, self.model, self.st, self.it
        anneal = cfg.anneal_every > 0 and (it + 1) % cfg.anneal_every == 0
        self.psi = m.sweep(st, self.psi, self.rng, timing, labels=it >= cfg.warmup, anneal=anneal)
        n_states = int(np.unique(st.s).size)
        self.all_k.append(len(st.xs))
        self.all_s.append(n_states)
        self.it += 1
        if it >= cfg.burn_in and (it - cfg.burn_in) % cfg.thin == 0:
            ll = m.loglik(st, self.psi)
            self.acc.add(st.z, st.s, np.stack(st.xs), st.theta, st.r, ll, m.L)
            return float(len(st.xs)), float(n_states), ll
        return None

    def result(self) -> dict:
        st = self.st
        return {"acc": self.acc, "n_clusters_all": np.array(self.all_k),
                "n_states_all": np.array(self.all_s), "stats": dict(st.stats),
                "final_z": st.z.copy(), "final_s": st.s.copy(), "sweeps": self.it}


def run_chain(
    y: np.ndarray, cfg: SamplerConfig, pri: Priors, seed, init: str | None = None,
    callback: Callable[[int, int, int, tuple | None], None] | None = None,
    timing: dict | None = None, stop_at: Callable[[], int] | None = None,
) -> dict:
    """Run one chain; returns its :class:`Accumulator` and small traces.

    Parameters
    ----------
    y : (N, T) counts.   seed : int or SeedSequence.   init : overrides ``cfg.init``.
    callback : called as ``callback(iteration, n_clusters, n_states, draw)`` after each sweep,
        ``draw`` as returned by :meth:`Chain.step`.
    timing : dict to which per-block seconds are added.
    stop_at : returns the number of sweeps after which to stop (read every sweep; the chain
        stops at ``cfg.iters`` in any case).
    """
    chain = Chain(y, cfg, pri, seed, init)
    while chain.it < cfg.iters and (stop_at is None or chain.it < stop_at()):
        draw = chain.step(timing)
        if callback is not None:
            callback(chain.it - 1, len(chain.st.xs), chain.all_s[-1], draw)
    return chain.result()
