"""Parameters of the ``bicluster`` stage: the sampler settings, the priors and how to run chains.

One flat class for the CLI, pipelines and provenance; :class:`~.model.SamplerConfig` and
:class:`~.model.Priors` are its two halves as the sampler uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from neurodyn.bicluster.model import Priors, SamplerConfig, Until
from neurodyn.params import StageParams, param


@dataclass(frozen=True)
class BiclusterParams(Priors, SamplerConfig):
    """Bayesian bi-clustering of spike counts (every field of SamplerConfig and Priors)."""

    stage = "bicluster"

    chains: int = param(2, "Independent chains (R-hat/ESS need >= 2).", ge=1)
    jobs: int = param(0, "Parallel processes for chains (0: one per chain).", ge=0, short="-j")
    recordings: tuple[str, ...] = param((), "Recording ids to fit (repeat or comma-separate; "
                                        "default all).")
    export_draws: str | None = param(
        None, "Also write the draws (log-likelihood, numbers of clusters and states per chain and "
        "draw) to this ArviZ InferenceData netCDF file, for arviz.summary / plot_trace; several "
        "recordings get <name>_<id>.nc.", metavar="<path>")

    until_converged: bool = param(
        False, "Run until the chains agree: every rank-normalised R-hat below --rhat-target and "
        "every bulk ESS at least --ess-target (log-likelihood, numbers of clusters and states), "
        "or until --time-budget; --iters is then the maximum. All chains run at once; "
        "diagnostics/@stopped_by records which ended the run.")
    rhat_target: float = param(1.05, "R-hat target of --until-converged.", gt=1.0)
    ess_target: float = param(400.0, "Bulk ESS target of --until-converged (all chains "
                              "together).", gt=0)
    time_budget: float = param(600.0, "Wall-time budget of --until-converged (per recording).",
                               gt=0, unit="s")

    def until(self) -> Until | None:
        """The stopping rule of ``--until-converged`` (None without it)."""
        if not self.until_converged:
            return None
        return Until(rhat=self.rhat_target, ess=self.ess_target, seconds=self.time_budget)

    def sampler(self) -> SamplerConfig:
        return SamplerConfig(**{f.name: getattr(self, f.name) for f in fields(SamplerConfig)})

    def priors(self) -> Priors:
        return Priors(**{f.name: getattr(self, f.name) for f in fields(Priors)})


__all__ = ["BiclusterParams", "StageParams"]
