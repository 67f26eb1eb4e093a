"""Moves with every trajectory integrated out: each state's noise covariance, and the
boundaries between states.

Given the Polya-Gamma variables the trajectories are linear-Gaussian, so the joint density of
(Q, s, X) with the rest held is ``p(Q) p(s | pi) Z(Q, s) smooth(X | Q, s)``, ``Z`` the product
of every cluster's Kalman normaliser (:meth:`~.target.Model.info_filter`). A proposal of Q or s
with every trajectory drawn afresh from ``smooth(X | Q', s')`` is accepted with probability
``min(1, p(Q') p(s' | pi) Z(Q', s') / (p(Q) p(s | pi) Z(Q, s)))`` times the proposal ratio and
the indicator that the new trajectories stay in the box (:func:`~.model.in_box`); the current
trajectories do not enter.

* :class:`NoiseScale`: ``Q_l -> c Q_l`` (``log c ~ N(0, sd^2)``) per used state; ``p(Q)`` is the
  inverse-Wishart prior of ``Q_l`` times the matrix-normal prior of every cluster's ``[A b]``
  in state l given ``Q_l`` (A and b held); the Jacobian is ``c^{q(q+1)/2}``.
* :class:`StateBoundaries`: a boundary between two runs of states (uniform among the
  boundaries) moves by ``d`` bins (``|d|`` uniform on 1..max, either way), the bins it passes
  taking the state of the run that grows; shifts that would remove a run are not proposed, so
  the number of boundaries, and the proposal probability, stay the same both ways and the
  ratio is ``p(s' | pi) Z(s') / (p(s | pi) Z(s))``. (Moving a window inside a run to another
  state was tried first: it creates two switches, which the sticky prior penalises, and was
  accepted 0-0.3% of the time on the rat sample.)

Why: given the trajectories, each ``Q_l`` and each bin's state are pinned down by the latent
transitions, and given those the trajectories are; the chain then drifts for hundreds of sweeps
(rat sample: the log-likelihood climbed for about 1,500 sweeps with the trajectories' roughness
and ``tr Q``). Integrating the trajectories out removes that coupling.
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


def log_window_ratio(pi: np.ndarray, s: np.ndarray, t0: int, t1: int, new: int) -> float:
    """log p(s' | pi) - log p(s | pi) when bins ``t0 .. t1 - 1`` (all in one state) move to
    state ``new`` (s[0] has a uniform initial distribution)."""
    old = s[t0]
    lp = np.log(pi)
    out = (t1 - t0 - 1) * (lp[new, new] - lp[old, old])
    if t0 > 0:
        out += lp[s[t0 - 1], new] - lp[s[t0 - 1], old]
    if t1 < s.size:
        out += lp[new, s[t1]] - lp[old, s[t1]]
    return float(out)


class _Collapsed:
    """The shared step: propose (Q', s'), score with the clusters' Kalman normalisers, draw
    the trajectories from their smoothing distributions when accepted."""

    key = ""

    def __init__(self, model: Model, rounds: int = 1) -> None:
        self.m, self.rounds = model, int(rounds)

    def step(self, st: ChainState, kap: np.ndarray, om: np.ndarray, rng: np.random.Generator) -> None:
        m = self.m
        K = len(st.xs)
        self.infos = [obs_info(kap, om, m.off, st.theta, np.flatnonzero(st.z == k))
                      for k in range(K)]
        self.cur = [m.info_filter(self.infos[k], st.dyn[k], st.Q, st.s) for k in range(K)]
        for _ in range(self.rounds):
            self.proposals(st, rng)

    def proposals(self, st: ChainState, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def attempt(self, st: ChainState, Q: np.ndarray, s: np.ndarray, log_prior: float,
                rng: np.random.Generator) -> bool:
        """Accept (Q, s) with the trajectories integrated out (``log_prior``: the log ratio of
        everything but the normalisers, proposal included); updates ``st`` when accepted."""
        m = self.m
        K = len(st.xs)
        new = [m.info_filter(self.infos[k], st.dyn[k], Q, s) for k in range(K)]
        log_r = log_prior + sum(n[2] - o[2] for n, o in zip(new, self.cur))
        st.stats[f"{self.key}_prop"] = st.stats.get(f"{self.key}_prop", 0) + 1
        if np.log(rng.random()) >= log_r:
            return False
        xs = [m.filter_draw(new[k], st.dyn[k], Q, s, rng) for k in range(K)]
        if not all(in_box(x) for x in xs):
            return False
        st.Q, st.s, st.xs, self.cur = Q, s, xs, new
        st.stats[f"{self.key}_acc"] = st.stats.get(f"{self.key}_acc", 0) + 1
        return True


class NoiseScale(_Collapsed):
    """``rounds`` scale proposals of each used state's ``Q_l`` per sweep (module docstring)."""

    key = "noise_scale"

    def __init__(self, model: Model, sd: float = 0.3, rounds: int = 1) -> None:
        super().__init__(model, rounds)
        self.sd = float(sd)

    def proposals(self, st: ChainState, rng: np.random.Generator) -> None:
        m = self.m
        for l in np.unique(st.s[1:]):  # Q of state s[t] drives x[t] for t >= 1
            c = float(np.exp(self.sd * rng.standard_normal()))
            Q = st.Q.copy()
            Q[l] = c * st.Q[l]
            ws = [np.column_stack([A[l], b[l]]) for A, b in st.dyn]
            self.attempt(st, Q, st.s, log_scale_ratio(st.Q[l], ws, c, m.psi0, m.nu0, m.pri.k0),
                         rng)


class StateBoundaries(_Collapsed):
    """``rounds`` proposals per sweep that shift a state boundary (module docstring)."""

    key = "state_boundary"

    def __init__(self, model: Model, max_shift: int = 20, rounds: int = 1) -> None:
        super().__init__(model, rounds)
        self.max_shift = int(max_shift)

    def proposals(self, st: ChainState, rng: np.random.Generator) -> None:
        switches = np.flatnonzero(st.s[1:] != st.s[:-1]) + 1  # s[t - 1] != s[t]
        if switches.size == 0:
            return
        tau = int(switches[rng.integers(switches.size)])
        shift = int(rng.integers(1, self.max_shift + 1)) * (1 if rng.random() < 0.5 else -1)
        lo, hi = (tau, tau + shift) if shift > 0 else (tau + shift, tau)
        new = st.s[tau - 1] if shift > 0 else st.s[tau]
        run = st.s[lo:hi + 1] if shift > 0 else st.s[max(lo - 1, 0):hi]
        if lo < 1 or hi >= self.m.T or np.any(run != run[0]):
            return  # the shift would remove a run (or leave the recording): not proposed
        s = st.s.copy()
        s[lo:hi] = new
        self.attempt(st, st.Q, s, log_window_ratio(st.pi, st.s, lo, hi, new), rng)
