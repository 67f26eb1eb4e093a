"""Restricted-Gibbs split-merge move for neuron clusters (Jain & Neal 2004, 2007).

The move acts on the clusters of a random pair of neurons (i, j), with every trajectory of the
clusters involved integrated out (Kalman normalisers Z, as in the one-step move of
:meth:`~.sampler.Model.split_merge`). Its state is the collapsed target, conditional on omega,
kappa, the state sequence s and the noise covariances Q (all unchanged by the move):

    pi~(z, theta_S, D) = p(z) prod_{k in S} p(theta_k) prod_c prod_{l in used} p(D_cl | Q_l)
                         * prod_c Z_c(theta, D_c)

with S the members of the clusters involved, c those clusters, D_cl = [A_cl b_cl] the dynamics
of cluster c in state l and ``used`` the states occurring in s[1:]. The dynamics of unused
states do not enter Z: a cluster created by the move draws them from their prior and a cluster
removed by it drops them, so their prior density cancels against the proposal and neither is
written. After an accepted move each new trajectory is drawn by FFBS from its exact
conditional; as that draw is the exact conditional of the joint target, the ratio of the joint
move reduces to the collapsed ratio above (the discarded trajectory is what the reverse move
would draw by FFBS). A drawn trajectory outside the box |X| <= X_MAX is rejected (see
:func:`~.sampler.in_box`).

Launch states (auxiliary variables whose law depends only on S, i, j, the data and the fixed
quantities above, never on the current theta, D or X of S, so the same law serves the move and
its reverse):

* merge launch: a trajectory X_m^L for all of S, started from the data (mean and leading
  principal components of the members' smoothed log counts, :func:`launch_trajectory`), then
  ``JN_SCANS`` restricted Gibbs scans: theta_S | X, D | X (matrix normal), X | theta, D (FFBS).
* split launch: i on side 1, j on side 2, the others of S allocated by data similarity
  (:meth:`~.sampler.Model._allocate`); one data-driven trajectory per side, then ``JN_SCANS``
  scans of: labels of S \\ {i, j} | X_1, X_2 (theta integrated out), then per side
  theta | X, D | X, X | theta, D (FFBS).

Final scan (its density enters the ratio), from a launch (labels z^L, trajectories X^L):

* split: in a fixed random order, each k in S \\ {i, j} goes to side c with probability
  ∝ w(n_{-k,c}) exp m(k | X_c^L) (w the partition prior's weight of joining a cluster of n
  others, n counted over the current scan labels, m the marginal likelihood with theta_k
  integrated out); then theta_k ~ N(mu_k, JN_THETA_SCALE^2 Sigma_k), the Gaussian conditional
  given X^L of its side with inflated covariance; then D_cl ~ MN(M_cl, Q_l, JN_DYN_SCALE^2
  K_cl^-1), the regression conditional given X_c^L (inflated column covariance), l in used.
  q_split = sum_k log P(z_k) + sum_k log N(theta_k) + sum_{c,l} log MN(D_cl).
* merge: theta_k and D_ml drawn in the same way given X_m^L; q_merge = sum_k log N(theta_k)
  + sum_l log MN(D_ml).

Acceptance, with split state (z_split, theta, D_1, D_2) and merged state (z_merge, theta',
D_m), term by term:

    log r = [log p(z_split) - log p(z_merge)]                          partition prior
          + sum_{k in S} [log p(theta_k) - log p(theta'_k)]           theta prior
          + sum_{l in used} [log p(D_1l) + log p(D_2l) - log p(D_ml)]  dynamics prior
          + log Z_1(theta, D_1) + log Z_2(theta, D_2) - log Z_m(theta', D_m)
          + q_merge(theta', D_m | X_m^L) - q_split(z_split, theta, D_1, D_2 | z^L, X^L)

A split (current = merged, proposed = split) is accepted with probability min(1, r); a merge
(current = split, proposed = merged) with min(1, 1 / r). In a split the reverse merge density
q_merge is evaluated at the current (theta', D_m) from a merge launch drawn for the purpose; in
a merge q_split is evaluated at the current labels and parameters from a split launch. Choosing
(i, j) uniformly among ordered pairs is symmetric, and i's side keeps cluster index z_i (the
index is bookkeeping: the partition prior is exchangeable).

Status: the kernel is exact (tests compare its partition frequencies with those of the label
Gibbs moves on a 3-neuron problem, and a ratio without the q terms fails by TV ~ 0.7), but on
the published setting (30 neurons x 500 bins) it was never accepted in our runs (0 of ~1,100
merges in 500 sweeps from all-separate starts; 0 of 77 splits and 98 merges in 60 sweeps from
one cluster): the current (A, b) of singleton clusters lie thousands of nats below the final
scan's conditional given a launch trajectory (see the module docstring of :mod:`.sampler`).
It costs 4-6 ms per proposal there (about 1 ms for the one-step move) and is off by default
(``sampler.JN_FRACTION = 0``).
"""

from __future__ import annotations

import numpy as np

from neurodyn.bicluster.clusters import marginal_loglik, theta_gaussian
from neurodyn.bicluster.linalg import chol, mvn_logpdf_chol
from neurodyn.bicluster.states import mn_logpdf, regression_stats

JN_SCANS = 3  # intermediate restricted Gibbs scans building each launch state
JN_THETA_SCALE = 1.5  # final-scan theta proposal: sd of the Gaussian conditional times this
JN_DYN_SCALE = 1.5  # final-scan dynamics proposal: column sd of the MN conditional times this


def launch_trajectory(lograte: np.ndarray, q: int) -> np.ndarray:
    """Data-driven starting trajectory (T, q) for a set of neurons.

    Parameters
    ----------
    lograte : (m, T) smoothed log counts of the members, centred per neuron.
    q : latent size (1 + p): column 0 is the members' mean, columns 1..p the leading principal
        components of the residuals (scaled by singular value / sqrt(m); zero when m <= j).
    """
    m, T = lograte.shape
    x = np.zeros((T, q))
    mu = lograte.mean(axis=0)
    x[:, 0] = mu
    if m > 1 and q > 1:
        _, sv, vt = np.linalg.svd(lograte - mu, full_matrices=False)
        n = min(q - 1, sv.size)
        x[:, 1:1 + n] = (vt[:n] * (sv[:n, None] / np.sqrt(m))).T
    return x


class DynCond:
    """Matrix-normal conditionals of one cluster's [A_l b_l] given a trajectory, l in ``used``."""

    def __init__(self, x: np.ndarray, s: np.ndarray, Q: np.ndarray, k0: float, used: np.ndarray) -> None:
        self.used, self.Q = used, Q
        self.stats = {int(l): regression_stats(x, s == l, k0)[:2] for l in used}

    def draw(self, L: int, rng, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """(A (L, q, q), b (L, q)); NaN for states not in ``used``."""
        q = self.Q.shape[1]
        A, b = np.full((L, q, q), np.nan), np.full((L, q), np.nan)
        for l, (Mn, Kn) in self.stats.items():
            W = Mn + scale * chol(self.Q[l]) @ rng.standard_normal((q, q + 1)) @ np.linalg.cholesky(np.linalg.inv(Kn)).T
            A[l], b[l] = W[:, :q], W[:, q]
        return A, b

    def logpdf(self, A: np.ndarray, b: np.ndarray, scale: float) -> float:
        return float(sum(mn_logpdf(np.column_stack([A[l], b[l]]), Mn, self.Q[l], Kn / scale**2)
                         for l, (Mn, Kn) in self.stats.items()))


def dyn_logprior(A: np.ndarray, b: np.ndarray, Q: np.ndarray, k0: float, used: np.ndarray) -> float:
    """sum over ``used`` of log MN([A_l b_l]; 0, Q_l, I / k0)."""
    q = Q.shape[1]
    return float(sum(mn_logpdf(np.column_stack([A[l], b[l]]), np.zeros((q, q + 1)), Q[l], k0 * np.eye(q + 1))
                     for l in used))


class RestrictedSplitMerge:
    """One restricted-Gibbs split-merge proposal on a :class:`~.sampler.Model` chain state."""

    def __init__(self, model, st, kap: np.ndarray, om: np.ndarray, rng) -> None:
        self.m, self.st, self.kap, self.om, self.rng = model, st, kap, om, rng
        self.used = np.unique(st.s[1:])

    # -- pieces ------------------------------------------------------------------------
    def _theta_gauss(self, k: int, x: np.ndarray):
        m = self.m
        mean, cov = theta_gaussian(self.kap[k], self.om[k], m.off[k], x, m.m0[k], m.prec)
        return mean, cov * JN_THETA_SCALE**2

    def _draw_theta(self, k: int, x: np.ndarray) -> np.ndarray:
        mean, cov = self._theta_gauss(k, x)
        return mean + chol(cov) @ self.rng.standard_normal(mean.size)

    def _theta_logq(self, k: int, x: np.ndarray, th: np.ndarray) -> float:
        mean, cov = self._theta_gauss(k, x)
        return float(mvn_logpdf_chol(th, mean, chol(cov)))

    def _dyn(self, x: np.ndarray) -> DynCond:
        return DynCond(x, self.st.s, self.st.Q, self.m.pri.k0, self.used)

    def _ffbs(self, theta: np.ndarray, members: np.ndarray, dyn, x_old: np.ndarray) -> np.ndarray:
        """One FFBS draw for a launch (kept at ``x_old`` if it leaves the box)."""
        from neurodyn.bicluster.sampler import in_box

        st = self.st
        x, _ = self.m._cluster_pass(self.kap, self.om, theta, members, dyn, st.Q, st.s, self.rng, True)
        return x if in_box(x) else x_old

    def _scan_params(self, theta: np.ndarray, members: np.ndarray, x: np.ndarray) -> np.ndarray:
        """theta_members | x, D | x, then x | theta, D (one restricted Gibbs scan of a cluster)."""
        for k in members:
            theta[k] = self._draw_theta(k, x)
        dyn = self._dyn(x).draw(self.m.L, self.rng, 1.0)
        return self._ffbs(theta, members, dyn, x)

    def _label_weights(self, rest: np.ndarray, xs: tuple) -> np.ndarray:
        """(len(rest), 2) log m(k | X_c) for the two sides."""
        m = self.m
        return marginal_loglik(self.kap[rest], self.om[rest], m.off[rest], np.stack(xs), m.m0[rest], m.prec)

    def _label_pass(self, side: np.ndarray, M: np.ndarray, given: np.ndarray | None) -> float:
        """Sequential restricted Gibbs update of ``side`` (in place, i and j excluded from it);
        with ``given`` the labels are scored instead of drawn. Returns the log probability."""
        cnt = np.array([1.0 + np.sum(side == 0), 1.0 + np.sum(side == 1)])
        logq = 0.0
        for pos in range(side.size):
            cnt[side[pos]] -= 1.0
            lw = self.m.prior.existing(cnt) + M[pos]
            lp = lw - np.logaddexp(lw[0], lw[1])
            c = int(self.rng.random() < np.exp(lp[1])) if given is None else int(given[pos])
            side[pos] = c
            logq += lp[c]
            cnt[c] += 1.0
        return logq

    # -- launches ----------------------------------------------------------------------
    def merge_launch(self, S: np.ndarray) -> np.ndarray:
        m = self.m
        theta = self.st.theta.copy()
        x = launch_trajectory(m.lograte[S], m.q)
        for _ in range(JN_SCANS):
            x = self._scan_params(theta, S, x)
        return x

    def split_launch(self, i: int, j: int, rest: np.ndarray) -> tuple[np.ndarray, tuple]:
        m = self.m
        side, _ = m._allocate(i, j, rest, None, self.rng)
        theta = self.st.theta.copy()
        xs = [launch_trajectory(m.lograte[np.append(rest[side == c], (i, j)[c])], m.q) for c in (0, 1)]
        for _ in range(JN_SCANS):
            if rest.size:
                self._label_pass(side, self._label_weights(rest, tuple(xs)), None)
            for c in (0, 1):
                mem = np.append(rest[side == c], (i, j)[c])
                xs[c] = self._scan_params(theta, mem, xs[c])
        return side, tuple(xs)

    # -- the move ----------------------------------------------------------------------
    def __call__(self) -> None:
        m, st, rng = self.m, self.st, self.rng
        if m.N < 2:
            return
        i, j = (int(v) for v in rng.choice(m.N, 2, replace=False))
        a, b = int(st.z[i]), int(st.z[j])
        split = a == b
        S = np.flatnonzero((st.z == a) | (st.z == b))
        rest = rng.permutation(S[(S != i) & (S != j)])
        sizes = np.bincount(st.z, minlength=len(st.xs)).astype(float)
        key = "jn_split" if split else "jn_merge"
        st.stats[key + "_prop"] = st.stats.get(key + "_prop", 0) + 1
        side_l, xs_l = self.split_launch(i, j, rest)
        x_ml = self.merge_launch(S)
        Q, k0, used = st.Q, m.pri.k0, self.used
        cond_m = self._dyn(x_ml)
        cond_s = (self._dyn(xs_l[0]), self._dyn(xs_l[1]))
        M = self._label_weights(rest, xs_l) if rest.size else np.zeros((0, 2))
        theta_split = st.theta.copy()
        theta_merge = st.theta.copy()
        if split:  # current = merged (theta, D_a); propose the split by the final scan
            dyn_m = st.dyn[a]
            side = side_l.copy()
            logq_s = self._label_pass(side, M, None)
            sides = np.zeros(m.N, dtype=np.int64)
            sides[rest] = side
            sides[j] = 1
            for k in S:
                theta_split[k] = self._draw_theta(k, xs_l[sides[k]])
            dyn_s = [cond_s[c].draw(m.L, rng, JN_DYN_SCALE) for c in (0, 1)]
            logq_m = cond_m.logpdf(*dyn_m, JN_DYN_SCALE)
        else:  # current = split (theta, D_a, D_b); propose the merge by the final scan
            side = (st.z[rest] == b).astype(np.int64)
            logq_s = self._label_pass(side_l.copy(), M, side)
            sides = np.zeros(m.N, dtype=np.int64)
            sides[rest] = side
            sides[j] = 1
            for k in S:
                theta_merge[k] = self._draw_theta(k, x_ml)
            dyn_s = [st.dyn[a], st.dyn[b]]
            dyn_m = cond_m.draw(m.L, rng, JN_DYN_SCALE)
            logq_m = cond_m.logpdf(*dyn_m, JN_DYN_SCALE)
        for k in S:
            logq_s += self._theta_logq(k, xs_l[sides[k]], theta_split[k])
            logq_m += self._theta_logq(k, x_ml, theta_merge[k])
        logq_s += sum(cond_s[c].logpdf(*dyn_s[c], JN_DYN_SCALE) for c in (0, 1))
        side_i, side_j = S[sides[S] == 0], S[sides[S] == 1]
        others = np.delete(sizes, [a] if split else [a, b])
        log_r = (m.prior.log_prob(np.append(others, [side_i.size, side_j.size]))
                 - m.prior.log_prob(np.append(others, S.size)))
        log_r += sum(m._theta_logprior(theta_split[k], k) - m._theta_logprior(theta_merge[k], k) for k in S)
        log_r += (dyn_logprior(*dyn_s[0], Q, k0, used) + dyn_logprior(*dyn_s[1], Q, k0, used)
                  - dyn_logprior(*dyn_m, Q, k0, used))
        kap, om = self.kap, self.om
        if split:
            x_i, z_i = m._cluster_pass(kap, om, theta_split, side_i, dyn_s[0], Q, st.s, rng, True)
            x_j, z_j = m._cluster_pass(kap, om, theta_split, side_j, dyn_s[1], Q, st.s, rng, True)
            z_m = m._cluster_pass(kap, om, theta_merge, S, dyn_m, Q, st.s, rng, False)[1]
        else:
            x_m, z_m = m._cluster_pass(kap, om, theta_merge, S, dyn_m, Q, st.s, rng, True)
            z_i = m._cluster_pass(kap, om, theta_split, side_i, dyn_s[0], Q, st.s, rng, False)[1]
            z_j = m._cluster_pass(kap, om, theta_split, side_j, dyn_s[1], Q, st.s, rng, False)[1]
        log_r += z_i + z_j - z_m + logq_m - logq_s
        from neurodyn.bicluster.sampler import in_box

        if split:
            if in_box(x_i) and in_box(x_j) and np.log(rng.random()) < log_r:
                st.stats[key + "_acc"] = st.stats.get(key + "_acc", 0) + 1
                st.theta[S] = theta_split[S]
                st.xs[a] = x_i
                st.dyn[a] = m._fill_unused(dyn_s[0], Q, rng)
                st.xs.append(x_j)
                st.dyn.append(m._fill_unused(dyn_s[1], Q, rng))
                st.z[side_j] = len(st.xs) - 1
        elif in_box(x_m) and np.log(rng.random()) < -log_r:
            st.stats[key + "_acc"] = st.stats.get(key + "_acc", 0) + 1
            st.theta[S] = theta_merge[S]
            st.xs[a] = x_m
            st.dyn[a] = m._fill_unused(dyn_m, Q, rng)
            st.z[side_j] = a
            m._remove_cluster(st, b, None)
