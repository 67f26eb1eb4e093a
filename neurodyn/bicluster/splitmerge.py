"""Trajectory-collapsed split-merge of neuron clusters, and the similarity-driven allocation
that it shares with the annealed split-merge (:mod:`.anneal`)."""

from __future__ import annotations

import numpy as np

from neurodyn.bicluster.model import in_box
from neurodyn.bicluster.states import ab_log_ratio_prior_cond, sample_ab
from neurodyn.bicluster.target import ChainState, Model


def allocate(m: Model, i: int, j: int, rest: np.ndarray, side_given: np.ndarray | None,
             rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Sequential allocation of ``rest`` to i's side (0) or j's side (1) by data similarity.

    Neuron k goes to side 1 with probability sigmoid(cfg.alloc_tau * (s1 - s0)), s_x the mean
    |correlation| (:attr:`Model.sim`, data only) of k with the neurons already on side x.
    With ``side_given`` the sides are scored instead of drawn. Returns (sides, log q)."""
    sim = m.sim
    side = np.empty(rest.size, dtype=np.int64)
    tot = np.array([sim[rest, i], sim[rest, j]])  # running sums of similarities per side
    cnt = np.array([1.0, 1.0])
    logq = 0.0
    for pos in range(rest.size):
        diff = m.cfg.alloc_tau * (tot[1, pos] / cnt[1] - tot[0, pos] / cnt[0])
        lp1, lp0 = -np.logaddexp(0.0, -diff), -np.logaddexp(0.0, diff)
        sd = int(rng.random() < np.exp(lp1)) if side_given is None else int(side_given[pos])
        side[pos] = sd
        logq += lp1 if sd else lp0
        tot[sd] += sim[rest, rest[pos]]
        cnt[sd] += 1.0
    return side, logq

def proposal_sides(m: Model, st: ChainState, i: int, j: int, rng: np.random.Generator):
    """Split-merge proposal anchored at neurons (i, j): the other members of their clusters
    in random order, allocated by :func:`allocate` (drawn for a split, scored for a merge).

    Returns (side_i, side_j, log q_alloc, log p(z_S), log p(z_M)): i's and j's sides, the
    allocation's log probability and the partition prior of the split and merged states."""
    a, b = int(st.z[i]), int(st.z[j])
    split = a == b
    mem = np.flatnonzero((st.z == a) | (st.z == b))
    rest = rng.permutation(mem[(mem != i) & (mem != j)])
    side, logq_alloc = allocate(m, i, j, rest, None if split else (st.z[rest] == b).astype(np.int64), rng)
    side_i = np.append(rest[side == 0], i)
    side_j = np.append(rest[side == 1], j)
    sizes = np.bincount(st.z, minlength=len(st.xs)).astype(float)
    others = np.delete(sizes, [a] if split else [a, b])
    prior_split = m.prior.log_prob(np.append(others, [side_i.size, side_j.size]))
    prior_merged = m.prior.log_prob(np.append(others, side_i.size + side_j.size))
    return side_i, side_j, logq_alloc, prior_split, prior_merged


class SplitMerge:
    """One split-merge Metropolis-Hastings proposal per :meth:`step` (``cfg.split_merge`` per
    sweep); see :meth:`step`."""

    def __init__(self, model: Model) -> None:
        self.m = model

    def step(self, st: ChainState, kap: np.ndarray, om: np.ndarray, rng: np.random.Generator) -> None:
        """One trajectory-collapsed split-merge Metropolis-Hastings proposal.

        Pick an ordered pair (i, j), i != j, uniformly; a = z_i, b = z_j. Every trajectory of
        the clusters involved is redrawn by FFBS from its exact conditional, so the ratio
        involves Kalman normalisers Z(members | theta, (A, b)) (trajectories integrated out)
        instead of the density of a proposed trajectory; theta is unchanged.

        Split (a == b): the others of a go to i's side or j's side by :func:`allocate`
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
        m = self.m
        if m.N < 2:
            return
        i, j = rng.choice(m.N, 2, replace=False)
        a, b = int(st.z[i]), int(st.z[j])
        split = a == b
        used = np.unique(st.s[1:])
        st.stats["split_prop" if split else "merge_prop"] += 1
        side_i, side_j, logq_alloc, prior_split, prior_merged = proposal_sides(m, st, i, j, rng)
        both = np.concatenate([side_i, side_j])
        if split:
            x_m = st.xs[a]
            z_m = m.cluster_pass(kap, om, st.theta, both, st.dyn[a], st.Q, st.s, rng, False)[1]
            dyn_b = m.fill_unused(sample_ab(x_m, st.s, st.Q, m.pri.k0, rng, states=used), st.Q, rng)
            x_i, z_i = m.cluster_pass(kap, om, st.theta, side_i, st.dyn[a], st.Q, st.s, rng, True)
            x_j, z_j = m.cluster_pass(kap, om, st.theta, side_j, dyn_b, st.Q, st.s, rng, True)
            ok = in_box(x_i) and in_box(x_j)
        else:
            dyn_b = st.dyn[b]
            x_m, z_m = m.cluster_pass(kap, om, st.theta, both, st.dyn[a], st.Q, st.s, rng, True)
            z_i = m.cluster_pass(kap, om, st.theta, side_i, st.dyn[a], st.Q, st.s, rng, False)[1]
            z_j = m.cluster_pass(kap, om, st.theta, side_j, dyn_b, st.Q, st.s, rng, False)[1]
            ok = in_box(x_m)
        log_d = ab_log_ratio_prior_cond(dyn_b[0], dyn_b[1], x_m, st.s, st.Q, m.pri.k0, used)
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
            m.remove_cluster(st, b, None)
