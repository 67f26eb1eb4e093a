"""Collapsed scale moves of each state's noise covariance, the trajectories integrated out.

Given the Polya-Gamma variables the trajectories are linear-Gaussian, so the joint density of
(Q, X) factorises as ``p(Q) Z(Q) smooth(X | Q)``, ``Z(Q)`` the Kalman normaliser of every
cluster (:meth:`~.target.Model.info_filter`). A proposal ``Q_l -> c Q_l`` (``log c ~ N(0,
sd^2)``) for one state, with every trajectory drawn afresh from ``smooth(X | Q')``, is accepted
with probability ``min(1, p(Q') Z(Q') c^{q(q+1)/2} / (p(Q) Z(Q)))`` times the indicator that
the new trajectories stay in the box (:func:`~.model.in_box`); the current trajectories do not
enter. ``p(Q)`` is the inverse-Wishart prior of ``Q_l`` times the matrix-normal prior of every
cluster's ``[A b]`` in state l given ``Q_l`` (A and b are held).

Why: the trajectories and their noise covariance otherwise only move each other in small steps
(given the trajectories, each ``Q_l`` is pinned down by hundreds of bins, and given ``Q_l`` the
trajectories' roughness is), so a chain drifts for hundreds of sweeps (rat sample: the
trajectories' scale and ``tr Q`` grew for about 1,500 sweeps). Integrating the trajectories
out removes that coupling.
"""

from __future__ import annotations

import numpy as np

from neurodyn.bicluster.clusters import obs_info
from neurodyn.bicluster.model import in_box
from neurodyn.bicluster.target import ChainState, Model


def log_scale_ratio(Q: np.ndarray, ws: list[np.ndarray], c: float, psi0: float, nu0: float,
                    k0: float) -> float:
    """log p(c Q) - log p(Q) + log Jacobian for one state's ``Q`` (q, q).

    ``p``: inverse-Wishart ``IW(psi0 I, nu0)`` times ``MN(W; 0, Q, I / k0)`` for each cluster's
    ``W = [A b]`` (q, q + 1) in ``ws``; the Jacobian of ``Q -> c Q`` is ``c^{q(q+1)/2}``.
    """
    q = Q.shape[0]
    qinv = np.linalg.inv(Q)
    logc = np.log(c)
    out = -0.5 * (nu0 + q + 1) * q * logc - 0.5 * psi0 * np.trace(qinv) * (1.0 / c - 1.0)
    for W in ws:
        out += -0.5 * (q + 1) * q * logc - 0.5 * k0 * np.sum(qinv * (W @ W.T)) * (1.0 / c - 1.0)
    return float(out + 0.5 * q * (q + 1) * logc)


class NoiseScale:
    """``rounds`` collapsed scale proposals of each used state's ``Q_l`` per sweep (see the
    module docstring); counted as ``noise_scale`` in the chain's acceptance statistics."""

    def __init__(self, model: Model, sd: float = 0.3, rounds: int = 1) -> None:
        self.m, self.sd, self.rounds = model, float(sd), int(rounds)

    def step(self, st: ChainState, kap: np.ndarray, om: np.ndarray, rng: np.random.Generator) -> None:
        m = self.m
        K = len(st.xs)
        infos = [obs_info(kap, om, m.off, st.theta, np.flatnonzero(st.z == k)) for k in range(K)]
        cur = [m.info_filter(infos[k], st.dyn[k], st.Q, st.s) for k in range(K)]
        used = np.unique(st.s[1:])  # Q of state s[t] drives x[t] for t >= 1
        for _ in range(self.rounds):
            for l in used:
                c = float(np.exp(self.sd * rng.standard_normal()))
                Qp = st.Q.copy()
                Qp[l] = c * st.Q[l]
                new = [m.info_filter(infos[k], st.dyn[k], Qp, st.s) for k in range(K)]
                ws = [np.column_stack([A[l], b[l]]) for A, b in st.dyn]
                log_r = sum(n[2] - o[2] for n, o in zip(new, cur))
                log_r += log_scale_ratio(st.Q[l], ws, c, m.psi0, m.nu0, m.pri.k0)
                st.stats["noise_scale_prop"] = st.stats.get("noise_scale_prop", 0) + 1
                if np.log(rng.random()) >= log_r:
                    continue
                xs = [m.filter_draw(new[k], st.dyn[k], Qp, st.s, rng) for k in range(K)]
                if not all(in_box(x) for x in xs):
                    continue
                st.Q, st.xs, cur = Qp, xs, new
                st.stats["noise_scale_acc"] = st.stats.get("noise_scale_acc", 0) + 1
