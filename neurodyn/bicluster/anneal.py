"""Annealed split-merge move of neuron clusters (block 9 of the sweep).

A merge of cluster b into cluster a must change, together, the loadings of b's members (each
cluster's latent frame is arbitrary), a's trajectory and dynamics, and drop b's trajectory and
dynamics. A one-step proposal cannot do that, so this move anneals between the two partitions
and is accepted with the annealed importance weight (tempered transitions for
trans-dimensional moves: Neal 1996; Karagiannis & Andrieu 2013).

Extended space: labels, the loadings theta_i of a's and b's members on X_a, a second set of
loadings thb_j of b's members on X_b, X_a, (A, b)_a, X_b and (A, b)_b. On the ladder
0 = g_0 < g_1 < ... < g_K = 1 the intermediate targets are

    f_g ∝ p(z_S)^(1-g) p(z_M)^g  prior(everything)  prod_{i in a} p(y_i | theta_i, X_a)
          prod_{j in b} p(y_j | thb_j, X_b)^(1-g) p(y_j | theta_j, X_a)^g,

so f_0 is the posterior of the split state S times the prior of b's loadings on X_a, and f_1
is the posterior of the merged state M times the prior of (thb, X_b, (A, b)_b), which the
merged state no longer uses. Two sets of loadings spare b's members a slow drift from b's
latent frame to a's: their loadings on X_a start from the prior and sharpen as g grows.

A merge draws b's loadings on X_a from their prior, runs x_k = T_k(x_{k-1}) for k = 1..K-1
from the current state x_0 and is accepted with probability

    min(1, q_rev / q_fwd * prod_{k=0}^{K-1} f_{k+1}(x_k) / f_k(x_k)),

where T_k leaves f_k invariant and q_fwd, q_rev are the probabilities of proposing the move and
its reverse (anchor pair and allocation of the other members, as in the one-step split-merge).
The reverse split draws (thb, X_b, (A, b)_b) from their prior, runs the time-reversed
transitions R_{K-1}, ..., R_1 and is accepted with the reciprocal ratio. Each log ratio
log f_{k+1} - log f_k is (g_{k+1} - g_k) times
D = sum_{j in b} [log p(y_j | theta_j, X_a) - log p(y_j | thb_j, X_b)] (plus the partition
prior ratio), with the exact negative-binomial likelihood, so the move is exact for the model
without its Polya-Gamma variables. It therefore ends a sweep: the next sweep draws omega
afresh from its conditional before any block uses it.

T_k at g = g_k: draw Polya-Gamma variables for the (tempered) likelihood factors, then, given
them, ``cfg.anneal_inner`` cycles of: FFBS of X_a, FFBS of X_b, Gaussian draws of every loading, and
matrix-normal draws of (A, b)_a and (A, b)_b. R_k is the same with the draws after the
Polya-Gamma step in reverse order (the time reversal of T_k). States, Q, r and every other
cluster are held fixed.

Cost is the move's weak point (rungs x anneal_inner FFBS passes over the two clusters), so proposals
go through a delayed-acceptance screen (:meth:`Annealer.screen`) that rejects merges of
clusters whose neurons are uncorrelated before any path is run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from polyagamma import random_polyagamma

from neurodyn.bicluster.clusters import (
    linear_predictor,
    nb_loglik_rows,
    obs_info,
    theta_conditional,
)
from neurodyn.bicluster.ffbs import slds_sample
from neurodyn.bicluster.model import in_box
from neurodyn.bicluster.splitmerge import proposal_sides
from neurodyn.bicluster.states import sample_ab, sample_ab_prior

PG_MIN_SHAPE = 5e-4  # smallest Polya-Gamma shape drawn (the polyagamma package needs > 1e-4)


def ladder(rungs: int, sharp: float) -> np.ndarray:
    """g_0 = 0 < ... < g_K = 1 (K = ``rungs``), spaced densely near both ends (tanh; ``sharp``:
    SamplerConfig.anneal_sharpness)."""
    u = np.tanh(sharp * np.linspace(-1.0, 1.0, rungs + 1)) / np.tanh(sharp)
    g = 0.5 * (1.0 + u)
    g[0], g[-1] = 0.0, 1.0
    return g


@dataclass
class Path:
    """State on the extended space of one annealed move (rows of theta follow ``mem``)."""

    mem: np.ndarray  # members of a, then members of b (global indices)
    na: int
    theta: np.ndarray  # (na + nb, q): loadings on X_a
    thb: np.ndarray  # (nb, q): b's members' loadings on X_b
    xa: np.ndarray
    dyn_a: tuple
    xb: np.ndarray
    dyn_b: tuple


class Annealer:
    """Annealed split-merge move of one chain (see the module docstring)."""

    def __init__(self, model, rungs: int, inner: int) -> None:
        self.m = model
        self.g = ladder(rungs, model.cfg.anneal_sharpness)
        self.inner = inner
        self.split_prob = model.cfg.anneal_split_prob  # tests raise it
        self.pair_tau = model.cfg.pair_tau
        self.da_scale = model.cfg.anneal_screen
        self.in_box = in_box
        off = model.sim[~np.eye(model.N, dtype=bool)]
        self.c0 = float(np.median(off)) if off.size else 0.0

    def _predictors(self, p: Path) -> tuple[np.ndarray, np.ndarray]:
        """Linear predictors of every member on X_a and of b's members on X_b."""
        m = self.m
        mem = p.mem
        zeros = np.zeros(mem.size, dtype=np.int64)
        psi_a = linear_predictor(p.xa[None], zeros, p.theta, m.off[mem])
        psi_b = linear_predictor(p.xb[None], zeros[p.na:], p.thb, m.off[mem[p.na:]])
        return psi_a, psi_b

    def gap(self, p: Path, r: np.ndarray, psi: tuple[np.ndarray, np.ndarray]) -> float:
        """D: log-likelihood of b's members under X_a minus under X_b (``psi`` from
        :meth:`_predictors`)."""
        psi_a, psi_b = psi
        yb, rb = self.m.y[p.mem[p.na:]], r[p.mem[p.na:]]
        return nb_loglik_rows(yb, rb, psi_a[p.na:]) - nb_loglik_rows(yb, rb, psi_b)

    def transition(self, p: Path, g: float, st, rng, reverse: bool,
                   psi: tuple[np.ndarray, np.ndarray]) -> None:
        """T_k (or its reversal R_k) at g from the current predictors ``psi``: leaves f_g
        invariant."""
        m = self.m
        mem, na = p.mem, p.na
        n = mem.size
        y, r = m.y[mem], st.r[mem]
        psi_a, psi_b = psi
        w = np.ones(n)
        w[na:] = g
        h = w[:, None] * (y + r[:, None])
        om_a = random_polyagamma(h, psi_a, random_state=rng)
        kap_a = 0.5 * w[:, None] * (y - r[:, None])
        yb, rb = y[na:], r[na:]
        om_b = random_polyagamma((1.0 - g) * (yb + rb[:, None]), psi_b, random_state=rng)
        kap_b = 0.5 * (1.0 - g) * (yb - rb[:, None])
        off = m.off[mem]
        loc = np.arange(n)

        def draw_xa() -> None:
            x, _ = m.info_pass(obs_info(kap_a, om_a, off, p.theta, loc), p.dyn_a, st.Q, st.s, rng, True)
            if self.in_box(x):
                p.xa = x

        def draw_xb() -> None:
            x, _ = m.info_pass(obs_info(kap_b, om_b, off[na:], p.thb, loc[:n - na]), p.dyn_b,
                                st.Q, st.s, rng, True)
            if self.in_box(x):
                p.xb = x

        def draw_theta() -> None:
            for row in range(n):
                i = mem[row]
                p.theta[row] = theta_conditional(kap_a[row], om_a[row], off[row], p.xa, m.m0[i],
                                                 m.prec, rng.standard_normal(m.q))
                if row >= na:
                    p.thb[row - na] = theta_conditional(kap_b[row - na], om_b[row - na], off[row], p.xb,
                                                        m.m0[i], m.prec, rng.standard_normal(m.q))

        def draw_dyn() -> None:
            p.dyn_a = sample_ab(p.xa, st.s, st.Q, m.pri.k0, rng)
            p.dyn_b = sample_ab(p.xb, st.s, st.Q, m.pri.k0, rng)

        steps = [draw_xa, draw_xb, draw_theta, draw_dyn] * self.inner
        for step in (steps[::-1] if reverse else steps):
            step()

    def _ladder(self, r: np.ndarray) -> np.ndarray:
        """The ladder with interior rungs kept where every Polya-Gamma shape g (y + r) and
        (1 - g) (y + r) stays above the sampler's floor (it depends only on r, which the move
        and its reverse share)."""
        gmin = min(PG_MIN_SHAPE / max(float(r.min()), 1e-12), 0.5)
        g = self.g.copy()
        g[1:-1] = np.clip(g[1:-1], gmin, 1.0 - gmin)
        return g

    def merge_weight(self, p: Path, st, rng) -> float:
        """Run the merge path from the split state ``p`` (modified in place); log weight
        without the partition prior."""
        g = self._ladder(st.r[p.mem])
        logw = 0.0
        for k in range(1, g.size):
            psi = self._predictors(p)
            logw += (g[k] - g[k - 1]) * self.gap(p, st.r, psi)
            if k < g.size - 1:
                self.transition(p, g[k], st, rng, False, psi)
        return logw

    def split_weight(self, p: Path, st, rng) -> float:
        """Run the split path from the merged state ``p`` whose (X_b, (A, b)_b, thb) were drawn
        from their prior; log weight without the partition prior."""
        g = self._ladder(st.r[p.mem])
        logw = 0.0
        for k in range(g.size - 2, -1, -1):
            psi = self._predictors(p)
            logw += (g[k] - g[k + 1]) * self.gap(p, st.r, psi)
            if k > 0:
                self.transition(p, g[k], st, rng, True, psi)
        return logw

    def _prior_theta(self, rows: np.ndarray, rng) -> np.ndarray:
        m = self.m
        return m.m0[rows] + rng.standard_normal((rows.size, m.q)) / np.sqrt(m.prec)

    def _pair_weights(self, i: int) -> np.ndarray:
        w = np.exp(self.pair_tau * (self.m.sim[i] - self.m.sim[i].max()))
        w[i] = 0.0
        return w

    def _log_q_pair(self, z: np.ndarray, i: int, j: int) -> float:
        """log P(pick (i, j) | labels z): a split (z_i == z_j) is tried with probability
        ``split_prob`` (``cfg.anneal_split_prob``), else a merge; i uniformly, and j among the neurons in i's cluster (split) or
        outside it (merge) with probability ∝ exp(pair_tau |correlation|(i, j)) (data only)."""
        w = self._pair_weights(i)
        same = z == z[i]
        split = z[j] == z[i]
        pool = w[same] if split else w[~same]
        kind = self.split_prob if split else 1.0 - self.split_prob
        return float(np.log(kind / self.m.N) + np.log(w[j]) - np.log(pool.sum()))

    def pick(self, z: np.ndarray, rng) -> tuple[int, int] | None:
        """Draw (i, j) as in :meth:`_log_q_pair`; None when the drawn kind is impossible."""
        i = int(rng.integers(self.m.N))
        w = self._pair_weights(i)
        split = rng.random() < self.split_prob
        pool = np.where((z == z[i]) == split, w, 0.0)
        if pool.sum() <= 0:
            return None
        return i, int(rng.choice(self.m.N, p=pool / pool.sum()))

    def screen(self, side_i: np.ndarray, side_j: np.ndarray) -> float:
        """Log ratio of the delayed-acceptance screen for merging side_j into side_i (minus it
        for the split): -da_scale times the sum over cross pairs of max(c0 - |correlation|, 0),
        c0 the median similarity of all pairs. It is exp(S(z_M) - S(z_S)) for the partition
        score S(z) = -da_scale sum_{i < j, z_i = z_j} max(c0 - sim_ij, 0), so a merge of unlike
        clusters is rejected before the path is run (Christen & Fox 2005)."""
        pen = np.maximum(self.c0 - self.m.sim[np.ix_(side_i, side_j)], 0.0)
        return -self.da_scale * float(pen.sum())

    def step(self, st, kap, om, rng) -> None:
        """One annealed split or merge proposal (see the module docstring), accepted or not
        (``kap``, ``om`` unused: the move redraws its own Polya-Gamma variables).

        Delayed acceptance: the proposal first passes a screen with probability
        min(1, r_s), r_s from :meth:`screen` (before any path is run), then the annealed
        ratio r with probability min(1, r / r_s); the product satisfies detailed balance
        because r_s of the reverse move is 1 / r_s."""
        m = self.m
        pair = self.pick(st.z, rng)
        if pair is None:
            return
        i, j = pair
        a, b = int(st.z[i]), int(st.z[j])
        split = a == b
        kind = "anneal_split" if split else "anneal_merge"
        st.stats[f"{kind}_prop"] = st.stats.get(f"{kind}_prop", 0) + 1
        side_i, side_j, logq_alloc, log_prior_s, log_prior_m = proposal_sides(m, st, i, j, rng)
        order = np.concatenate([side_i, side_j])
        log_screen = self.screen(side_i, side_j) * (-1.0 if split else 1.0)
        if not np.log(rng.random()) < log_screen:
            return
        st.stats[f"{kind}_screened"] = st.stats.get(f"{kind}_screened", 0) + 1
        theta = st.theta[order].copy()
        if split:
            A, bb = sample_ab_prior(st.Q, m.pri.k0, rng)
            xb = slds_sample(A, bb, st.Q, st.s, m.x_m0, m.x_V0, rng.standard_normal((m.T, m.q)))
            p = Path(order, side_i.size, theta, self._prior_theta(side_j, rng), st.xs[a].copy(),
                     st.dyn[a], xb, (A, bb))
            if not self.in_box(xb):
                return
            z_s = st.z.copy()
            z_s[side_j] = -1
            log_pick = self._log_q_pair(z_s, i, j) - self._log_q_pair(st.z, i, j)
            log_alpha = (self.split_weight(p, st, rng) + log_prior_s - log_prior_m - logq_alloc
                         + log_pick)
        else:
            theta[side_i.size:] = self._prior_theta(side_j, rng)
            p = Path(order, side_i.size, theta, st.theta[side_j].copy(), st.xs[a].copy(), st.dyn[a],
                     st.xs[b].copy(), st.dyn[b])
            z_m = st.z.copy()
            z_m[side_j] = a
            log_pick = self._log_q_pair(z_m, i, j) - self._log_q_pair(st.z, i, j)
            log_alpha = (self.merge_weight(p, st, rng) + log_prior_m - log_prior_s + logq_alloc
                         + log_pick)
        if not np.log(rng.random()) < log_alpha - log_screen:
            return
        st.stats[f"{kind}_acc"] = st.stats.get(f"{kind}_acc", 0) + 1
        st.theta[order] = p.theta
        st.xs[a], st.dyn[a] = p.xa, p.dyn_a
        if split:
            st.theta[side_j] = p.thb
            st.xs.append(p.xb)
            st.dyn.append(p.dyn_b)
            st.z[side_j] = len(st.xs) - 1
        else:
            st.z[side_j] = a
            m.remove_cluster(st, b, None)
