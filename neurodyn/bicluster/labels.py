"""Moves of the neuron labels: collapsed Gibbs with one auxiliary cluster (:class:`LabelGibbs`)
and the trajectory-collapsed Metropolis-Hastings move of one neuron (:class:`SingleMove`)."""

from __future__ import annotations

import numpy as np

from neurodyn.bicluster.clusters import marginal_loglik, obs_info, shift_info, theta_gaussian
from neurodyn.bicluster.ffbs import ffbs, slds_sample
from neurodyn.bicluster.linalg import chol, mvn_logpdf_chol
from neurodyn.bicluster.model import in_box
from neurodyn.bicluster.states import sample_ab_prior
from neurodyn.bicluster.target import ChainState, Model


class LabelGibbs:
    """(z_i, theta_i) | rest: collapsed Gibbs on each neuron, algorithm 8 with one auxiliary
    cluster (:mod:`.clusters`)."""

    def __init__(self, model: Model) -> None:
        self.m = model

    def step(self, st: ChainState, kap: np.ndarray, om: np.ndarray, rng: np.random.Generator) -> None:
        m = self.m
        M = marginal_loglik(kap, om, m.off, np.stack(st.xs), m.m0, m.prec)
        used = np.unique(st.s)
        for i in rng.permutation(m.N):
            k_old = st.z[i]
            sizes = np.bincount(st.z, minlength=len(st.xs)).astype(float)
            sizes[k_old] -= 1
            if sizes[k_old] == 0:  # singleton: its own cluster is the auxiliary one
                x_aux, dyn_aux, m_aux = st.xs[k_old], st.dyn[k_old], M[i, k_old]
                M = m.remove_cluster(st, k_old, M)
                sizes = np.delete(sizes, k_old)
                st.z[i] = -1
            else:
                A, b = sample_ab_prior(st.Q, m.pri.k0, rng, states=used)
                x_aux = slds_sample(A, b, st.Q, st.s, m.x_m0, m.x_V0,
                                    rng.standard_normal((m.T, m.q)))
                dyn_aux = (A, b)
                m_aux = (marginal_loglik(kap[i:i + 1], om[i:i + 1], m.off[i:i + 1], x_aux[None],
                                         m.m0[i:i + 1], m.prec)[0, 0]
                         if in_box(x_aux) else -np.inf)
            logw = np.append(m.prior.existing(sizes) + M[i], m.prior.new(sizes.size) + m_aux)
            w = np.exp(logw - logw.max())
            k = int(rng.choice(w.size, p=w / w.sum()))
            if k == sizes.size:  # open the auxiliary cluster
                st.xs.append(x_aux)
                st.dyn.append(m.fill_unused(dyn_aux, st.Q, rng))
                col = marginal_loglik(kap, om, m.off, x_aux[None], m.m0, m.prec)
                M = np.concatenate([M, col], axis=1)
            st.z[i] = k
            m.draw_theta(st, i, kap, om, rng)


class SingleMove:
    """Trajectory-collapsed Metropolis-Hastings move of each neuron to another (or a new) cluster.

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

    def __init__(self, model: Model) -> None:
        self.m = model
        cfg, q, T = model.cfg, model.q, model.T
        # auxiliary trajectory u of a proposed new cluster: AR(1) per latent coordinate
        # (cfg.prop_*); neuron j observes coordinate 1 (or 0 when p = 0)
        v = np.array([cfg.prop_var_mu] + [cfg.prop_var_x] * cfg.latent_dim)
        self.prop_A = (cfg.prop_ar * np.eye(q))[None]
        self.prop_b = np.zeros((1, q))
        self.prop_Q = np.diag(v * (1 - cfg.prop_ar**2))[None]
        self.prop_V0 = np.diag(v)
        self.prop_s = np.zeros(T, dtype=np.int64)
        self.prop_dim = 1 if q > 1 else 0

    def step(self, st: ChainState, kap: np.ndarray, om: np.ndarray, rng: np.random.Generator) -> None:
        """One proposal per neuron, in random order."""
        m = self.m
        # pseudo-observations (J, h, const) of each cluster, updated in O(T q^2) when a neuron
        # moves (:func:`shift_info`), and the clusters' log normalisers
        info = [obs_info(kap, om, m.off, st.theta, np.flatnonzero(st.z == k))
                for k in range(len(st.xs))]
        zcache = [m.info_pass(info[k], st.dyn[k], st.Q, st.s, rng, False)[1]
                  for k in range(len(st.xs))]
        for i in rng.permutation(m.N):
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
                mean_u, cov_u = theta_gaussian(kap[i], om[i], m.off[i], u_aux, m.m0[i], m.prec)
                cov_u = cov_u * m.cfg.theta_scale**2
            if new:
                b = K
                log_q_fwd += np.log(p_new)
                dyn_b = sample_ab_prior(st.Q, m.pri.k0, rng)
                if rng.random() < 0.5:
                    th_new = gauss_draw(mean_u, cov_u, rng)
                else:
                    th_new = m.m0[i] + rng.standard_normal(m.q) / np.sqrt(m.prec)
                log_q_fwd += self._new_theta_logq(th_new, i, mean_u, cov_u)
            else:
                b = int(rng.choice(K, p=e / e.sum()))
                log_q_fwd += np.log(e[b])
                dyn_b = st.dyn[b]
                mean, cov = theta_gaussian(kap[i], om[i], m.off[i], st.xs[b], m.m0[i], m.prec)
                cov = cov * m.cfg.theta_scale**2
                th_new = gauss_draw(mean, cov, rng)
                log_q_fwd += gauss_logpdf(th_new, mean, cov)
            za_old = zcache[a]
            zb_old = 0.0 if new else zcache[b]
            info_b = (obs_info(kap[i:i + 1], om[i:i + 1], m.off[i:i + 1], th_new[None],
                               np.zeros(1, dtype=np.int64)) if new
                      else shift_info(*info[b], kap[i], om[i], m.off[i], th_new, 1.0))
            # X_b's path enters the ratio only through its box indicator: it is drawn below, after
            # the uniform, and only if the move would otherwise be accepted (same law)
            filt_b = m.info_filter(info_b, dyn_b, st.Q, st.s)
            zb_new = filt_b[2]
            if single_a:
                xa_new, za_new = None, 0.0
            else:
                info_a = shift_info(*info[a], kap[i], om[i], m.off[i], st.theta[i], -1.0)
                xa_new, za_new = m.info_pass(info_a, st.dyn[a], st.Q, st.s, rng, True)
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
                mean_r, cov_r = theta_gaussian(kap[i], om[i], m.off[i], xa_new, m.m0[i], m.prec)
                log_q_rev += gauss_logpdf(st.theta[i], mean_r, cov_r * m.cfg.theta_scale**2)
                sizes_new = new_sizes
            log_target = (m.prior.log_prob(sizes_new) - m.prior.log_prob(sizes)
                          + m.theta_logprior(th_new, i) - m.theta_logprior(st.theta[i], i)
                          + za_new + zb_new - za_old - zb_old)
            log_alpha = log_target + log_q_rev - log_q_fwd
            if not (xa_new is None or in_box(xa_new)):
                log_alpha = -np.inf
            st.stats["move_prop"] = st.stats.get("move_prop", 0) + 1
            if np.log(rng.random()) < log_alpha:
                xb_new = m.filter_draw(filt_b, dyn_b, st.Q, st.s, rng)
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
                    m.remove_cluster(st, a, None)
                    del zcache[a]
                    del info[a]
                else:
                    st.xs[a] = xa_new
                    zcache[a] = za_new
                    info[a] = info_a

    def _new_theta_logq(self, th: np.ndarray, i: int, mean_u: np.ndarray, cov_u: np.ndarray) -> float:
        """log density of the theta proposal for a new cluster: an equal mixture of the Gaussian
        given the auxiliary trajectory u and the prior (the prior part keeps the reverse of a
        move out of a singleton plausible whatever the rotation of its latent axes)."""
        return float(np.logaddexp(gauss_logpdf(th, mean_u, cov_u), self.m.theta_logprior(th, i))
                     + np.log(0.5))

    def _move_weights(self, K: int, own: int, singleton: bool) -> tuple[np.ndarray, float]:
        """Proposal over the K target clusters (uniform over existing != own) and P(new)."""
        p_new = 0.0 if singleton else (self.m.cfg.new_prob if K > 1 else 1.0)
        e = np.zeros(K)
        if K > 1:
            e[np.arange(K) != own] = (1 - p_new) / (K - 1)
        return e, p_new

    def _propose_xb(self, j: int, kap, om, rng, x_eval: np.ndarray | None):
        """FFBS draw of the auxiliary trajectory u given neuron j alone (``x_eval``: score it)."""
        m, e = self.m, self.prop_dim
        J = np.zeros((m.T, m.q, m.q))
        h = np.zeros((m.T, m.q))
        J[:, e, e] = om[j]
        h[:, e] = kap[j] - om[j] * (m.off[j] + m.m0[j, 0])
        sample = x_eval is None
        xin = np.zeros((m.T, m.q)) if sample else x_eval
        return ffbs(J, h, self.prop_A, self.prop_b, self.prop_Q, self.prop_s, np.zeros(m.q),
                    self.prop_V0, rng.standard_normal((m.T, m.q)), xin, sample)


def gauss_logpdf(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> float:
    """log N(x; mean, cov)."""
    return float(mvn_logpdf_chol(x, mean, chol(cov)))


def gauss_draw(mean: np.ndarray, cov: np.ndarray, rng) -> np.ndarray:
    """One draw of N(mean, cov) through the (numba) Cholesky factor of cov."""
    return mean + chol(cov) @ rng.standard_normal(mean.size)
