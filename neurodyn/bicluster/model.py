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
X_k[0] ~ N(0, v0 I); every trajectory is restricted to |X_k[t, j]| <= 25 (sampler.X_MAX; the
    joint density times an indicator; it excludes explosive, overflowing draws of prior dynamics)
states: sticky HDP-HMM, weak limit L: beta ~ Dir(gamma/L), pi_l ~ Dir(alpha beta + kappa e_l)
clusters: MFM, K ~ Geometric(geom_p) on {1, 2, ...}, weights ~ Dir(mfm_gamma); or DP(dp_alpha)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Priors:
    """Hyper-parameters (see the module docstring for the model)."""

    var_d: float = 1.0
    var_c: float = 1.0
    r_shape: float = 2.0
    r_rate: float = 0.2
    k0: float = 1.0
    q_mean: float = 0.01  # prior mean of each state's noise covariance (times I)
    nu0_extra: float = 10.0  # nu0 = q + 1 + nu0_extra
    v0: float = 1.0
    hdp_alpha: float = 1.0
    hdp_gamma: float = 1.0
    kappa: float = 50.0
    cluster_prior: str = "mfm"  # or "dp"
    geom_p: float = 0.2
    mfm_gamma: float = 1.0
    dp_alpha: float = 1.0


@dataclass(frozen=True)
class SamplerConfig:
    """Sampler settings; every field is a stage parameter of the same name."""

    iters: int = 2000
    burn_in: int = 500
    thin: int = 5
    latent_dim: int = 2
    likelihood: str = "nb"  # or "poisson"
    poisson_r: float = 1000.0
    max_states: int = 10
    split_merge: int = 5  # split-merge proposals per sweep (0: off)
    anneal_every: int = 0  # one annealed split-merge proposal every this many sweeps (0: off)
    anneal_rungs: int = 200  # rungs of its annealing ladder
    warmup: int = 25  # initial sweeps (within burn-in) with neuron labels held fixed
    init: str = "factor"  # "factor" | "one" | "separate" | "random"
    loss: str = "binder"  # "binder" | "vi"
    max_similarity_bins: int = 2000  # state similarity on a grid of at most this many bins

    def validate(self) -> None:
        from neurodyn.errors import InputError

        if self.iters < 1 or self.burn_in < 0 or self.burn_in >= self.iters:
            raise InputError("--burn-in", f"need 0 <= burn-in < iters (got {self.burn_in}, {self.iters})")
        if self.thin < 1:
            raise InputError("--thin", "must be >= 1")
        if self.latent_dim < 1:
            raise InputError("--latent-dim", "must be >= 1")
        if self.likelihood not in ("nb", "poisson"):
            raise InputError("--likelihood", f"must be nb or poisson, got {self.likelihood!r}")
        if self.max_states < 1:
            raise InputError("--max-states", "must be >= 1")
        if self.init not in ("factor", "separate", "one", "random"):
            raise InputError("--init", f"must be factor, one, separate or random, got {self.init!r}")
        if self.anneal_every < 0:
            raise InputError("--anneal-every", "must be >= 0 (0 turns annealed split-merge off)")
        if self.anneal_rungs < 2:
            raise InputError("--anneal-rungs", "must be >= 2")
        if self.max_similarity_bins < 2:
            raise InputError("--max-similarity-bins", "must be >= 2")
        if self.loss not in ("binder", "vi"):
            raise InputError("--loss", f"must be binder or vi, got {self.loss!r}")


def split_params(params: dict[str, Any]) -> tuple[SamplerConfig, Priors, dict[str, Any]]:
    """Split a flat parameter dict into (SamplerConfig, Priors, rest)."""
    cf = {f.name for f in fields(SamplerConfig)}
    pf = {f.name for f in fields(Priors)}
    cfg = SamplerConfig(**{k: v for k, v in params.items() if k in cf})
    pri = Priors(**{k: v for k, v in params.items() if k in pf})
    rest = {k: v for k, v in params.items() if k not in cf and k not in pf}
    return cfg, pri, rest


def all_params(cfg: SamplerConfig, pri: Priors) -> dict[str, Any]:
    """Flat dict of every parameter (for provenance)."""
    return {**asdict(cfg), **asdict(pri)}
