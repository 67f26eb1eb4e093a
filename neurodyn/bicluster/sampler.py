"""The Gibbs sweep of the bi-clustering model and the multi-chain driver.

One sweep (:class:`Kernel`), in this order; every block is an exact conditional draw or an MH
move that leaves the joint posterior invariant (their composition is a valid MCMC kernel), and
every block after 2 is one class with ``step(state, kappa, omega, rng)`` (:class:`~.target.Move`)
on the chain's :class:`~.target.Model` (data and fixed quantities, no moves):

1. r_i | y, psi (omega integrated out): CRT augmentation (:mod:`.dispersion`; NB only).
2. omega | y, r, psi: Polya-Gamma draws (:mod:`.pg`). Blocks 3-7 condition on omega.
3. X_k | theta, omega, s, dynamics: FFBS per cluster (:mod:`.ffbs`); before it (``noise_moves``
   rounds) collapsed scale moves of each state's noise covariance Q_l with every trajectory
   integrated out and redrawn (:mod:`.noise`).
4. s | X, dynamics, pi: discrete FFBS; then (``state_moves`` each) collapsed relabellings of
   state runs and of single bins, and ``state_split_merge`` collapsed split-merge proposals of
   whole states, with pi and the dynamics integrated out (:mod:`.relabel`); then beta, pi | s:
   sticky HDP-HMM (:mod:`.states`). Both are off by default (no reliable gain measured yet).
5. Q per state | X, s (A, b integrated), then (A, b) per cluster and state | Q, X, s: MNIW.
6. (z_i, theta_i) | rest: collapsed Gibbs with one auxiliary cluster (:mod:`.clusters`).
7. (z_i, theta_i, X_old, X_new): Metropolis-Hastings move of one neuron to another (or a new)
   cluster with both trajectories redrawn by FFBS, so that the acceptance ratio involves the
   trajectory-marginal likelihoods (Kalman normalisers) rather than trajectories already
   fitted to the neuron's own data (:class:`~.labels.SingleMove`). This is what lets neurons
   leave small clusters whose trajectory absorbed their noise.
8. split-merge MH proposals (``split_merge`` per sweep) with every trajectory involved redrawn
   by FFBS, so that the ratio involves Kalman normalisers (:class:`~.splitmerge.SplitMerge`);
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

Replica exchange (``temperatures`` > 1, off by default; :mod:`.tempering`): a chain runs the
sweep on that many replicas, replica k at likelihood^b_k (``Model.beta``; the Polya-Gamma
blocks and the scale moves take b, r moves by a tempered Metropolis step at b < 1, the annealed
move runs at b = 1 only), then adjacent replicas exchange states; only b = 1 is recorded.

Nothing is restarted or reset during sampling. Thinned post-burn-in samples feed an
:class:`~.summaries.Accumulator`, so memory does not grow with the number of iterations.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from neurodyn.bicluster.anneal import Annealer
from neurodyn.bicluster.blocks import Dynamics, Loadings, States, Trajectories
from neurodyn.bicluster.dispersion import dispersion_mh, draw_dispersion
from neurodyn.bicluster.labels import LabelGibbs, SingleMove
from neurodyn.bicluster.model import Priors, SamplerConfig
from neurodyn.bicluster.noise import NoiseScale
from neurodyn.bicluster.pg import draw_omega, kappa
from neurodyn.bicluster.scale import ScaleMoves
from neurodyn.bicluster.splitmerge import SplitMerge
from neurodyn.bicluster.summaries import Accumulator
from neurodyn.bicluster.target import ChainState, Model
from neurodyn.bicluster.tempering import Replicas, temperature_ladder

BLOCKS = ("dispersion", "polya_gamma", "trajectories", "states", "dynamics", "labels", "split_merge",
          "anneal", "scale", "exchange")


class Kernel:
    """The moves of one chain, composed into a sweep (see the module docstring)."""

    def __init__(self, model: Model, tempered_dispersion: bool = False) -> None:
        """``tempered_dispersion``: at ``model.beta`` < 1 update r by a Metropolis step of the
        tempered target (replica exchange); without it r is held fixed there (the thermodynamic
        integration of :mod:`.evidence` conditions on r)."""
        m, cfg = model, model.cfg
        self.model = m
        self.tempered_dispersion = tempered_dispersion
        self.trajectories = Trajectories(m)
        self.states = States(m)
        self.dynamics = Dynamics(m)
        self.label_gibbs = LabelGibbs(m)
        self.loadings = Loadings(m)
        self.single = SingleMove(m)
        self.split_merge = SplitMerge(m)
        self.annealer = Annealer(m, cfg.anneal_rungs, cfg.anneal_inner)
        self.scaler = ScaleMoves(m, cfg.scale_sd, cfg.scale_moves, cfg.dispersion_sd)
        self.noise = NoiseScale(m, cfg.noise_sd, cfg.noise_moves)

    def sweep(self, st: ChainState, psi: np.ndarray, rng: np.random.Generator,
              timing: dict | None = None, labels: bool = True, label_gibbs: bool = True,
              single_moves: bool = True, split_merge: int | None = None,
              anneal: bool = False) -> np.ndarray:
        """One full sweep (see the module docstring); returns the new psi.

        ``labels=False`` (used for the first ``warmup`` sweeps, part of the initialisation)
        keeps the neuron labels fixed and only redraws theta. ``label_gibbs=False`` and
        ``single_moves=False`` leave out block 6 and block 7 (without block 6, theta is redrawn
        given the labels), ``split_merge`` overrides ``cfg.split_merge`` (tests compare the label
        kernels this way). ``anneal`` adds one annealed split-merge proposal (block 9).
        ``timing`` gets the seconds of each block (:data:`BLOCKS`) added."""
        m, cfg = self.model, self.model.cfg
        tic = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal tic
            if timing is not None:
                now = time.perf_counter()
                timing[name] = timing.get(name, 0.0) + now - tic
                tic = now

        if m.nb and m.beta == 1.0:
            st.r = draw_dispersion(m.y, st.r, psi, m.pri.r_shape, m.pri.r_rate, rng)
        elif m.nb and self.tempered_dispersion:
            st.r = dispersion_mh(m.y, st.r, psi, m.pri.r_shape, m.pri.r_rate, m.beta,
                              min(1.0, 0.2 / np.sqrt(m.beta)), rng)
        lap("dispersion")
        om = draw_omega(m.y, st.r, psi, rng, m.beta)
        kap = kappa(m.y, st.r, m.beta)
        lap("polya_gamma")
        n_sm = cfg.split_merge if split_merge is None else split_merge
        scale = int(cfg.scale_moves > 0)
        plan = (  # (timing key, move, times); the annealed move comes last of the label moves:
            # it leaves omega stale, and the next sweep redraws omega first; the scale moves
            # integrate the dynamics out, which are redrawn after them
            ("trajectories", self.noise, int(cfg.noise_moves > 0)),
            ("trajectories", self.trajectories, 1),
            ("states", self.states, 1),
            ("dynamics", self.dynamics, 1),
            ("labels", self.label_gibbs if labels and label_gibbs else self.loadings, 1),
            ("labels", self.single, int(labels and single_moves)),
            ("split_merge", self.split_merge, n_sm if labels else 0),
            ("anneal", self.annealer, int(labels and anneal and m.beta == 1.0)),
            ("scale", self.scaler, scale),
            ("scale", self.dynamics, scale),
        )
        for name, move, times in plan:
            for _ in range(times):
                move.step(st, kap, om, rng)
            lap(name)
        return m.psi(st)


class Chain:
    """One chain that advances sweep by sweep (so that a driver can stop it when the chains
    agree): its model, replicas (one, or ``cfg.temperatures`` with replica exchange; see
    :mod:`.tempering`), random stream, accumulator and traces of the b = 1 replica."""

    def __init__(self, y: np.ndarray, cfg: SamplerConfig, pri: Priors, seed,
                 init: str | None = None) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        self.model = Model(y, cfg, pri)
        self.kernel = Kernel(self.model, tempered_dispersion=True)
        self.replicas = Replicas(self.model, temperature_ladder(cfg.temperatures, cfg.temper_min),
                                 init or cfg.init, self.rng)
        m = self.model
        self.acc = Accumulator(m.N, m.T, m.q, m.L, cfg.max_similarity_bins)
        self.all_k: list[int] = []
        self.all_s: list[int] = []
        self.it = 0

    @property
    def st(self) -> ChainState:
        """State of the b = 1 replica (the one recorded)."""
        return self.replicas.states[0]

    @property
    def psi(self) -> np.ndarray:
        return self.replicas.psis[0]

    def step(self, timing: dict | None = None) -> tuple[float, float, float] | None:
        """One sweep (of every replica); returns (n_clusters, n_states, log-likelihood) of the
        b = 1 replica when the sweep is a kept (post-burn-in, thinned) draw, else None."""
        cfg, m, it = self.cfg, self.model, self.it
        anneal = cfg.anneal_every > 0 and (it + 1) % cfg.anneal_every == 0
        self.replicas.sweep(self.kernel, self.rng, it, timing, labels=it >= cfg.warmup,
                            anneal=anneal)
        st = self.st
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
                "final_z": st.z.copy(), "final_s": st.s.copy(), "sweeps": self.it,
                "swap_acceptance": self.replicas.acceptance()}


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
