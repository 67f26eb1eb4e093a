"""The Gibbs blocks of the sweep that are exact conditional draws: trajectories, states,
dynamics, and the loadings given fixed labels; one class per block, each a
:class:`~.target.Move`."""

from __future__ import annotations

import numpy as np

from neurodyn.bicluster.clusters import obs_info
from neurodyn.bicluster.ffbs import ffbs, state_loglik
from neurodyn.bicluster.model import in_box
from neurodyn.bicluster.relabel import relabel_runs, split_merge_states
from neurodyn.bicluster.states import sample_ab, sample_hdp, sample_noise_cov, sample_states
from neurodyn.bicluster.target import ChainState, Model


class Trajectories:
    """X_k | theta, omega, s, dynamics: FFBS per cluster (a draw outside the box keeps the
    current path; see :func:`~.model.in_box`)."""

    def __init__(self, model: Model) -> None:
        self.m = model

    def step(self, st: ChainState, kap: np.ndarray, om: np.ndarray, rng: np.random.Generator) -> None:
        m = self.m
        for k in range(len(st.xs)):
            mem = np.flatnonzero(st.z == k)
            J, h, _ = obs_info(kap, om, m.off, st.theta, mem)
            A, b = st.dyn[k]
            x, _, _ = ffbs(J, h, A, b, st.Q, st.s, m.x_m0, m.x_V0,
                           rng.standard_normal((m.T, m.q)), st.xs[k], True)
            if in_box(x):  # else keep the current path (MH step; see in_box)
                st.xs[k] = x


class States:
    """s | X, dynamics, pi by discrete FFBS; then ``cfg.state_moves`` collapsed relabellings of
    state runs and of single bins and ``cfg.state_split_merge`` split-merge proposals of whole
    states (pi and the dynamics integrated out; :mod:`.relabel`); then beta, pi | s (sticky
    HDP-HMM)."""

    def __init__(self, model: Model) -> None:
        self.m = model

    def step(self, st: ChainState, kap: np.ndarray, om: np.ndarray, rng: np.random.Generator) -> None:
        m = self.m
        X = np.stack(st.xs)
        A = np.stack([d[0] for d in st.dyn])
        b = np.stack([d[1] for d in st.dyn])
        Q = np.ascontiguousarray(np.broadcast_to(st.Q, (len(st.xs),) + st.Q.shape))
        E = state_loglik(X, A, b, Q)
        st.s = sample_states(E, st.pi, rng.random(m.T))
        p = m.pri
        n = m.cfg.state_moves
        if n:  # collapsed relabelling of runs, then of single bins (pi and dynamics integrated
            # out; both are redrawn below)
            for runs in (True, False):
                key = "relabel" if runs else "relabel_bin"
                st.stats[f"{key}_prop"] = st.stats.get(f"{key}_prop", 0) + n
                st.stats[f"{key}_acc"] = st.stats.get(f"{key}_acc", 0) + relabel_runs(
                    X, st.s, st.beta, p.hdp_alpha, p.kappa, p.k0, m.psi0, m.nu0,
                    rng.integers(0, m.T, n), rng.random(n), runs)
        for _ in range(m.cfg.state_split_merge):  # collapsed split-merge of whole states
            split, ok = split_merge_states(X, st.s, st.beta, p.hdp_alpha, p.kappa, p.k0, m.psi0,
                                           m.nu0, rng)
            key = "state_split" if split else "state_merge"
            st.stats[f"{key}_prop"] = st.stats.get(f"{key}_prop", 0) + 1
            st.stats[f"{key}_acc"] = st.stats.get(f"{key}_acc", 0) + int(ok)
        st.beta, st.pi = sample_hdp(st.s, st.beta, m.L, p.hdp_alpha, p.hdp_gamma, p.kappa, rng)


class Dynamics:
    """Q per state | X, s (A, b integrated out), then (A, b) per cluster and state | Q, X, s."""

    def __init__(self, model: Model) -> None:
        self.m = model

    def step(self, st: ChainState, kap: np.ndarray, om: np.ndarray, rng: np.random.Generator) -> None:
        m = self.m
        st.Q = sample_noise_cov(st.xs, st.s, m.L, m.pri.k0, m.psi0, m.nu0, rng)
        st.dyn = [sample_ab(x, st.s, st.Q, m.pri.k0, rng) for x in st.xs]


class Loadings:
    """theta_i | X_{z_i}, omega for every neuron, labels fixed (the warm-up sweeps, and the
    sweep when the collapsed label update is left out)."""

    def __init__(self, model: Model) -> None:
        self.m = model

    def step(self, st: ChainState, kap: np.ndarray, om: np.ndarray, rng: np.random.Generator) -> None:
        for i in range(self.m.N):
            self.m.draw_theta(st, i, kap, om, rng)
