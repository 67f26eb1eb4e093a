"""Scale and location moves of the cluster trajectories with the dynamics integrated out.

Why: the Gibbs blocks draw a trajectory X_k given its noise covariance Q, and Q given X_k. On
real recordings both start small and climb together, a little per sweep (over 300 sweeps on
the rat sample the latent scale grew 0.2 -> 1.6 and the log-likelihood rose 150 nats), so
chains are still in their transient when burn-in ends and disagree (R-hat 1.4-1.7). The moves
here change the scale and location of X_k in one step, with (A, b, Q) integrated out (their
matrix-normal inverse-Wishart evidence, :func:`~.relabel.dynamics_log_evidence`), so Q does not
hold X back; the sweep redraws (Q, A, b) from their conditional right after them.

For cluster k, with a = exp(e), e ~ N(0, sd^2) (symmetric; each map's inverse is the map of -e):

* latent axis j >= 1: x_k[:, j] -> a x_k[:, j] and c_ij -> c_ij / a for the members, so the
  likelihood is unchanged; Jacobian a^(T - n_k);
* mu scale: mu_k -> m + a (mu_k - m), m the time mean of mu_k (unchanged by the map); the
  likelihood changes and is computed exactly (negative binomial, omega integrated out);
  Jacobian a^(T - 1);
* mu location: mu_k -> mu_k + e, d_i -> d_i - e for the members (likelihood unchanged;
  Jacobian 1).

Each is a Metropolis-Hastings step for the joint density with omega, (A, b, Q) integrated out:
prior of theta, X_k[0] ~ N(0, v0 I), dynamics evidence, likelihood, and the Jacobian. The moves
end a sweep (they use the exact likelihood; the next sweep redraws omega before anything uses
it) and the dynamics are redrawn after them.
"""

from __future__ import annotations

import numpy as np

from neurodyn.bicluster.anneal import nb_loglik_rows
from neurodyn.bicluster.clusters import linear_predictor
from neurodyn.bicluster.model import in_box
from neurodyn.bicluster.relabel import dynamics_log_evidence


class ScaleMoves:
    """Scale and location moves of one chain (see the module docstring)."""

    def __init__(self, model, sd: float, tries: int) -> None:
        self.m = model
        self.sd = sd
        self.tries = tries

    def _log_prior(self, x0: np.ndarray, theta: np.ndarray, mem: np.ndarray) -> float:
        """Prior terms of cluster k that the moves change: its members' theta and X_k[0]."""
        m = self.m
        d = theta[mem] - m.m0[mem]
        return -0.5 * float(np.sum(m.prec * d * d)) - 0.5 * float(np.sum(x0**2)) / m.pri.v0

    def _evidence(self, X: np.ndarray, st) -> float:
        m = self.m
        return dynamics_log_evidence(X, st.s, m.L, m.pri.k0, m.psi0, m.nu0)

    def _loglik(self, X: np.ndarray, st, theta: np.ndarray, mem: np.ndarray) -> float:
        m = self.m
        psi = linear_predictor(X[None], np.zeros(mem.size, dtype=np.int64), theta[mem], m.off[mem])
        return m.beta * nb_loglik_rows(m.y[mem], st.r[mem], psi)

    def propose(self, st, rng) -> None:
        """``tries`` rounds of every move on every cluster; updates st in place."""
        m = self.m
        X = np.stack(st.xs)
        ev = self._evidence(X, st)
        for _ in range(self.tries):
            for k in range(X.shape[0]):
                mem = np.flatnonzero(st.z == k)
                for kind in ["mu_scale", "mu_shift"] + list(range(1, m.q)):
                    ev = self._step(X, k, mem, kind, st, ev, rng)
        st.xs = list(X)

    def _step(self, X, k, mem, kind, st, ev: float, rng) -> float:
        """One move; returns the dynamics evidence of the (new or kept) X."""
        m = self.m
        e = self.sd * rng.standard_normal()
        a = np.exp(e)
        x_old, th_old = X[k].copy(), st.theta.copy()
        x_new, th_new = x_old.copy(), th_old.copy()
        if kind == "mu_scale":
            mean = x_old[:, 0].mean()
            x_new[:, 0] = mean + a * (x_old[:, 0] - mean)
            log_jac = e * (m.T - 1)
        elif kind == "mu_shift":
            x_new[:, 0] += e
            th_new[mem, 0] -= e
            log_jac = 0.0
        else:
            x_new[:, kind] *= a
            th_new[mem, kind] /= a
            log_jac = e * (m.T - mem.size)
        if not in_box(x_new):  # outside the support
            return ev
        X[k] = x_new
        ev_new = self._evidence(X, st)
        log_r = (ev_new - ev + self._log_prior(x_new[0], th_new, mem)
                 - self._log_prior(x_old[0], th_old, mem) + log_jac)
        if kind == "mu_scale":
            log_r += self._loglik(x_new, st, th_new, mem) - self._loglik(x_old, st, th_old, mem)
        key = f"scale_{'latent' if isinstance(kind, int) else kind}"
        st.stats[f"{key}_prop"] = st.stats.get(f"{key}_prop", 0) + 1
        if np.log(rng.random()) < log_r:
            st.stats[f"{key}_acc"] = st.stats.get(f"{key}_acc", 0) + 1
            st.theta[:] = th_new
            return ev_new
        X[k] = x_old
        return ev
