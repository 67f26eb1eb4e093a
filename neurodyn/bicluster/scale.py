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
  Jacobian 1);
* shear along latent axis j: mu_k -> mu_k + e x_k[:, j], c_ij -> c_ij - e for the members
  (likelihood unchanged; Jacobian 1): mu and an axis that every member loads on equally are
  interchangeable;
* dispersion, per neuron (negative binomial only): r_i -> a r_i, d_i -> d_i - e, which keeps
  the mean r_i exp(psi_it) of every count and changes only its variance; Jacobian a. Gibbs
  draws of r given psi cannot do this: r scales the mean too, so r and d_i follow each other
  in small steps (on the rat sample r climbed from 3 to 9 over 400 sweeps).

Each is a Metropolis-Hastings step for the joint density with omega, (A, b, Q) integrated out:
prior of theta, X_k[0] ~ N(0, v0 I), dynamics evidence, likelihood, and the Jacobian. The moves
end a sweep (they use the exact likelihood; the next sweep redraws omega before anything uses
it) and the dynamics are redrawn after them.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from neurodyn.bicluster.clusters import linear_predictor, nb_loglik_rows
from neurodyn.bicluster.model import in_box
from neurodyn.bicluster.relabel import dynamics_log_evidence


class ScaleMoves:
    """Scale and location moves of one chain (see the module docstring)."""

    def __init__(self, model, sd: float, tries: int, dispersion_sd: float) -> None:
        self.m = model
        self.sd = sd
        self.tries = tries
        self.dispersion_sd = dispersion_sd

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

    def kinds(self) -> list:
        """The moves of one cluster: mu scale, mu shift, then per latent axis j its scale
        (``j``) and the shear of mu along it (``("shear", j)``)."""
        return (["mu_scale", "mu_shift"] + list(range(1, self.m.q))
                + [("shear", j) for j in range(1, self.m.q)])

    def step(self, st, kap, om, rng) -> None:
        """``tries`` rounds of every move on every cluster; updates st in place (``kap``,
        ``om`` unused: the moves use the exact likelihood)."""
        m = self.m
        X = np.stack(st.xs)
        ev = self._evidence(X, st)
        for _ in range(self.tries):
            for k in range(X.shape[0]):
                mem = np.flatnonzero(st.z == k)
                for kind in self.kinds():
                    e = self.sd * rng.standard_normal()
                    log_r, x_new, th_new, ev_new = self.log_ratio(X, k, mem, kind, e, st, ev)
                    key = f"scale_{kind if isinstance(kind, str) else 'latent'}"
                    st.stats[f"{key}_prop"] = st.stats.get(f"{key}_prop", 0) + 1
                    if np.log(rng.random()) < log_r:
                        st.stats[f"{key}_acc"] = st.stats.get(f"{key}_acc", 0) + 1
                        X[k], st.theta, ev = x_new, th_new, ev_new
            if m.nb and m.beta == 1.0:
                e = self.dispersion_sd * rng.standard_normal(m.N)
                log_r = self.dispersion_log_ratio(X, st, e)
                acc = np.log(rng.random(m.N)) < log_r
                st.r = np.where(acc, st.r * np.exp(e), st.r)
                st.theta[acc, 0] -= e[acc]
                st.stats["scale_dispersion_prop"] = st.stats.get("scale_dispersion_prop", 0) + m.N
                st.stats["scale_dispersion_acc"] = (st.stats.get("scale_dispersion_acc", 0)
                                                    + int(acc.sum()))
        st.xs = list(X)

    def dispersion_log_ratio(self, X: np.ndarray, st, e: np.ndarray) -> np.ndarray:
        """Per neuron i, the log acceptance ratio of r_i -> exp(e_i) r_i, d_i -> d_i - e_i
        (neurons are independent given X, so all are proposed at once)."""
        m, p = self.m, self.m.pri
        psi = linear_predictor(X, st.z, st.theta, m.off)

        def row_logpost(r: np.ndarray, shift: np.ndarray) -> np.ndarray:
            ps = psi - shift[:, None]
            ll = (gammaln(m.y + r[:, None]) - gammaln(r)[:, None]
                  - r[:, None] * np.logaddexp(0.0, ps) - m.y * np.logaddexp(0.0, -ps)).sum(axis=1)
            d = st.theta[:, 0] - shift - m.m0[:, 0]
            return ll + (p.r_shape - 1.0) * np.log(r) - p.r_rate * r - 0.5 * m.prec[0] * d * d

        return row_logpost(st.r * np.exp(e), e) - row_logpost(st.r, np.zeros(m.N)) + e

    def log_ratio(self, X: np.ndarray, k: int, mem: np.ndarray, kind, e: float, st, ev: float):
        """Log acceptance ratio of one move of cluster k by e (see :meth:`kinds`); returns it
        with the proposed X_k, theta and dynamics evidence. X is left unchanged."""
        m = self.m
        a = np.exp(e)
        x_old = X[k].copy()
        x_new, th_new = x_old.copy(), st.theta.copy()
        loglik = False
        if kind == "mu_scale":
            mean = x_old[:, 0].mean()
            x_new[:, 0] = mean + a * (x_old[:, 0] - mean)
            log_jac, loglik = e * (m.T - 1), True
        elif kind == "mu_shift":
            x_new[:, 0] += e
            th_new[mem, 0] -= e
            log_jac = 0.0
        elif isinstance(kind, tuple):  # shear: mu += e x_j, c_ij -= e
            j = kind[1]
            x_new[:, 0] += e * x_old[:, j]
            th_new[mem, j] -= e
            log_jac = 0.0
        else:
            x_new[:, kind] *= a
            th_new[mem, kind] /= a
            log_jac = e * (m.T - mem.size)
        if not in_box(x_new):  # outside the support
            return -np.inf, x_new, th_new, ev
        X[k] = x_new
        ev_new = self._evidence(X, st)
        X[k] = x_old
        log_r = (ev_new - ev + self._log_prior(x_new[0], th_new, mem)
                 - self._log_prior(x_old[0], st.theta, mem) + log_jac)
        if loglik:
            log_r += self._loglik(x_new, st, th_new, mem) - self._loglik(x_old, st, st.theta, mem)
        return log_r, x_new, th_new, ev_new
