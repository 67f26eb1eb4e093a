"""Model definition: priors and sampler settings of the bi-clustering model.

Counts y[i, t] of neuron i in bin t (i < N, t < T):

    y[i, t] ~ NB(r_i, sigmoid(psi[i, t]))     (mean r_i exp(psi); Poisson option below)
    psi[i, t] = o_i + d_i + mu_k[t] + c_i . x_k[t],   k = z_i

The cluster latent is stored as one vector per bin, ``X_k[t] = (mu_k[t], x_k[t])`` of size
q = p + 1, so that the loading of neuron i is ``(1, c_i)`` and ``theta_i = (d_i, c_i)``.
``o_i`` is a fixed offset: 0 for NB; ``-log r_fix`` for the Poisson option, which is the
NB limit with a fixed, large dispersion ``r_fix`` (mean exp(d + mu + c.x), variance inflated
by a factor 1 + mean / r_fix).

Dynamics: the stacked latent of all clusters follows ``X[t] = b_s + A_s X[t-1] + N(0, Q_s)``
with s = s_t shared by all neurons. A_s, b_s, Q_s are block-diagonal over clusters: each
cluster has its own (A, b) per state and all share the state's noise covariance Q_s. This lets
clusters be created and removed while keeping every update exact; cross-cluster coupling of
the dynamics is not modelled.

Priors
------
theta_i = (d_i, c_i) ~ N((dbar_i, 0), diag(var_d, var_c..)), dbar_i = log(mean y_i / r0)
r_i ~ Gamma(r_shape, rate=r_rate)
Q_l ~ IW(q_mean nu0_extra I, q + 1 + nu0_extra) per state, shared by clusters (prior mean q_mean I)
[A b]_kl | Q_l ~ MN(0, Q_l, I / k0)                                    (per cluster and state)
X_k[0] ~ N(0, v0 I); every trajectory is restricted to |X_k[t, j]| <= 25 (:data:`X_MAX`; the
    joint density times an indicator; it excludes explosive, overflowing draws of prior dynamics)
states: sticky HDP-HMM, weak limit L: beta ~ Dir(gamma/L), pi_l ~ Dir(alpha beta + kappa e_l)
clusters: MFM, K ~ Geometric(geom_p) on {1, 2, ...}, weights ~ Dir(mfm_gamma); or DP(dp_alpha)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodyn.params import ParamError, StageParams, param


@dataclass(frozen=True)
class Priors(StageParams):
    """Hyper-parameters (see the module docstring for the model); pipeline keys of the stage."""

    var_d: float = param(1.0, "Prior variance of each neuron's baseline offset d_i.", gt=0, cli=False)
    var_c: float = param(1.0, "Prior variance of each loading c_i.", gt=0, cli=False)
    r_shape: float = param(2.0, "Gamma shape of the NB dispersion r_i.", gt=0, cli=False)
    r_rate: float = param(0.2, "Gamma rate of the NB dispersion r_i.", gt=0, cli=False)
    k0: float = param(1.0, "Precision scale of the matrix-normal prior on [A b].", gt=0, cli=False)
    q_mean: float = param(0.01, "Prior mean of each state's noise covariance (times I).", gt=0,
                          cli=False)
    nu0_extra: float = param(10.0, "Inverse-Wishart degrees of freedom beyond q + 1.", gt=0,
                             cli=False)
    v0: float = param(1.0, "Prior variance of the first latent X_k[0].", gt=0, cli=False)
    hdp_alpha: float = param(1.0, "HDP-HMM concentration alpha.", gt=0, cli=False)
    hdp_gamma: float = param(1.0, "HDP-HMM top-level concentration gamma.", gt=0, cli=False)
    kappa: float = param(50.0, "Stickiness of the HDP-HMM.", ge=0)
    cluster_prior: str = param("mfm", "mfm (geometric prior on #clusters) or dp.",
                               choices=("mfm", "dp"))
    geom_p: float = param(0.2, "MFM: K ~ Geometric(geom_p).", gt=0, le=1, cli=False)
    mfm_gamma: float = param(1.0, "MFM: Dirichlet weight of each cluster.", gt=0, cli=False)
    dp_alpha: float = param(1.0, "DP concentration.", gt=0, cli=False)


INIT_HELP = ("Starting partition: factor (varimax factor loadings), one (all together), separate "
             "(every neuron alone: chains from it stall in many small clusters unless "
             "--anneal-every is on; use it to check convergence) or random.")


@dataclass(frozen=True)
class SamplerConfig(StageParams):
    """Sampler settings; every field is a stage parameter of the same name."""

    iters: int = param(2000, "MCMC sweeps per chain.", ge=1)
    burn_in: int = param(500, "Sweeps discarded before summarising.", ge=0)
    thin: int = param(5, "Keep every n-th post-burn-in sweep.", ge=1)
    latent_dim: int = param(2, "Latent dimension p per cluster.", ge=1)
    likelihood: str = param("nb", "nb (negative binomial) or poisson.", choices=("nb", "poisson"))
    poisson_r: float = param(1000.0, "Fixed dispersion of the Poisson option (the NB limit).",
                             gt=0, cli=False)
    max_states: int = param(10, "Weak-limit truncation of the HDP-HMM.", ge=1)
    split_merge: int = param(5, "Split-merge proposals per sweep (0: off).", ge=0)
    state_moves: int = param(
        0, "Collapsed relabellings of state runs and of single bins per sweep (0: off): a run of "
        "bins takes another (or an unused) state with the dynamics integrated out. Exact, but no "
        "gain measured on the rat sample yet, so off by default.", ge=0, cli=False)
    state_split_merge: int = param(
        0, "Collapsed split-merge proposals of whole states per sweep (0: off): a state's bins "
        "are shared with an unused state by their dynamics evidence, or two states merged, with "
        "the transition matrix and the dynamics integrated out. Exact, but no reliable gain on "
        "the rat sample yet (acceptance ~0.3%), so off by default.", ge=0, cli=False)
    scale_moves: int = param(
        0, "Rounds of scale and location moves of the trajectories per sweep, with the dynamics "
        "integrated out (0: off). On real recordings they speed the climb out of the start "
        "(rat sample: log-likelihood R-hat 1.54 -> 1.23 at 300 sweeps), but on the published "
        "simulation they cost planted-partition recovery, so they are opt-in (try 2).", ge=0)
    noise_moves: int = param(
        0, "Rounds per sweep of collapsed scale moves of each state's noise covariance Q, the "
        "trajectories integrated out (Kalman normalisers) and redrawn (0: off). On the rat "
        "sample the log-likelihood's climb out of the start took a median of ~255 sweeps with "
        "them and --scale-moves 2 against ~420 without them (4 chains; ~565 against ~920 with "
        "the other defaults). Opt-in (try 1 with --scale-moves 2): from --init separate on the "
        "published simulation the annealed merges then took 1.5x longer (300 sweeps: ARI 0.95 "
        "against 1.00).", ge=0)
    noise_sd: float = param(0.3, "Proposal sd (log) of the noise-covariance scale move.", gt=0,
                            cli=False)
    scale_sd: float = param(0.2, "Proposal sd of the scale (log) and location moves.", gt=0,
                            cli=False)
    dispersion_sd: float = param(0.5, "Proposal sd (log) of the mean-preserving dispersion "
                                 "move.", gt=0, cli=False)
    anneal_every: int = param(
        0, "One annealed split-merge proposal every N sweeps (0: off). It merges clusters that "
        "the one-step moves cannot (each a piece of one true cluster, e.g. from --init separate "
        "or when chains end in different partitions), at a cost of about rungs x 10 FFBS passes "
        "over the two clusters per proposal (~1-3 s on 30 neurons x 500 bins).", ge=0)
    anneal_rungs: int = param(200, "Rungs of the annealed move's ladder: more rungs, higher "
                              "acceptance of good merges (the move is exact for any number).", ge=2)
    anneal_sharpness: float = param(
        4.0, "Annealed split-merge: how the ladder's rungs crowd at both ends, g_k = (1 + "
        "tanh(s (2k / K - 1)) / tanh(s)) / 2 (exact for any s > 0; larger s, finer steps near "
        "g = 0 and 1 where the likelihood changes fastest).", gt=0, cli=False)
    temperatures: int = param(
        1, "Replicas per chain for replica exchange (1: off): replica k samples prior x "
        "likelihood^b_k, b_k geometric from 1 down to --temper-min, and adjacent replicas "
        "exchange states each sweep (exact; only b = 1 is kept). Each replica costs a sweep. "
        "On the rat sample it did not pay: 4 replicas (b >= 0.8) mixed worse than 4 times the "
        "sweeps of one chain, and exchanges need b steps of ~0.05, so a ladder down to b = 0.3 "
        "needs ~20 replicas; off by default.", ge=1)
    temper_min: float = param(0.8, "Smallest inverse temperature b of the replica-exchange "
                              "ladder (exchange acceptance ~0.36 with 4 replicas on the rat "
                              "sample).", gt=0, lt=1)
    warmup: int = param(25, "Initial sweeps (within burn-in) with neuron labels held fixed.", ge=0,
                        cli=False)
    init: str = param("factor", INIT_HELP, choices=("factor", "one", "separate", "random"))
    init_latents: bool = param(False, "Start trajectories and loadings from the data (principal "
                               "components of smoothed log counts per cluster), not from zero; "
                               "opt-in with scale_moves (see there).", cli=False)
    loss: str = param("binder", "Point-estimate loss: binder or vi.", choices=("binder", "vi"))
    max_similarity_bins: int = param(
        2000, "Longer recordings get the time-bin similarity matrix (and the state point "
        "estimate) on a block-downsampled grid of at most this many bins (memory ~ 4 B x n^2).",
        ge=2)
    # tuning of the label moves (pipeline keys only; none changes the target, only how fast it
    # is explored)
    new_prob: float = param(0.1, "Single-neuron moves: probability of proposing a new cluster.",
                            gt=0, lt=1, cli=False)
    theta_scale: float = param(2.0, "Single-neuron moves: the loadings' proposal sd, in units of "
                               "their conditional sd.", gt=0, cli=False)
    prop_ar: float = param(0.95, "Single-neuron moves: AR(1) coefficient of the auxiliary "
                           "trajectory of a proposed new cluster.", gt=0, lt=1, cli=False)
    prop_var_mu: float = param(0.1, "... its stationary variance of mu.", gt=0, cli=False)
    prop_var_x: float = param(1.0, "... its stationary variance of each latent axis.", gt=0,
                              cli=False)
    alloc_tau: float = param(12.0, "Split-merge: logit slope of the allocation in the difference "
                             "of mean |correlation| with either side.", gt=0, cli=False)
    pair_tau: float = param(12.0, "Annealed split-merge: the anchor pair's j is drawn with "
                            "weight exp(pair_tau |correlation|(i, j)).", ge=0, cli=False)
    anneal_split_prob: float = param(0.1, "Annealed split-merge: probability of a split "
                                     "proposal (splits are left mostly to split-merge).", gt=0,
                                     lt=1, cli=False)
    anneal_screen: float = param(4.0, "Annealed split-merge: scale of the delayed-acceptance "
                                 "screen.", ge=0, cli=False)
    anneal_inner: int = param(10, "Annealed split-merge: Gibbs cycles per Polya-Gamma draw at "
                              "each rung.", ge=1, cli=False)

    def check(self) -> None:
        if self.burn_in >= self.iters:
            raise ParamError("burn_in", f"must be < iters ({self.iters}), got {self.burn_in}")


# Latent trajectories are constrained to the box |X_k[t, j]| <= X_MAX (log-rate units): the
# target is the model's joint density times this indicator (see :func:`in_box`).
X_MAX = 25.0


def in_box(x: np.ndarray) -> bool:
    """True if a trajectory is finite and inside the box |x| <= X_MAX.

    The sampler targets the model's joint density times prod_k 1[X_k in box]. Every block
    that proposes a trajectory stays exact for this target with one extra rule: a proposal
    outside the box is rejected. For an FFBS draw (an independence Metropolis-Hastings proposal
    from the unrestricted conditional) the acceptance probability is then exactly the
    indicator; in the trajectory-collapsed moves the current state's indicator is 1, so the
    ratio gains the proposal's indicator; the auxiliary cluster of the collapsed Gibbs step gets
    weight zero. No block integrates the restricted density over trajectories in closed form.
    Posterior trajectories of well-posed data lie far inside the box; it removes explosive
    draws of prior dynamics (e.g. an auxiliary cluster whose prior A has spectral radius > 1
    over thousands of bins), which otherwise overflow to inf and kill the chain.
    """
    return bool(np.all(np.abs(x) <= X_MAX))


@dataclass(frozen=True)
class Until:
    """When an adaptive run stops (``--until-converged``): every R-hat below ``rhat`` and every
    bulk ESS at least ``ess`` (log-likelihood, numbers of clusters and states; undefined ones,
    e.g. of a constant trace, are skipped), or ``seconds`` of wall time, whichever comes first;
    ``SamplerConfig.iters`` stays the maximum. Checked every ``every`` seconds, once every chain
    has 20 kept draws."""

    rhat: float = 1.05
    ess: float = 400.0
    seconds: float = 600.0
    every: float = 2.0
