"""Parameters of the ``bicluster`` stage: the sampler settings, the priors and how to run chains.

One flat class for the CLI, pipelines and provenance; :class:`~.model.SamplerConfig` and
:class:`~.model.Priors` are its two halves as the sampler uses them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from neurodyn.bicluster.model import Priors, SamplerConfig
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

    def sampler(self) -> SamplerConfig:
        return SamplerConfig(**{f.name: getattr(self, f.name) for f in fields(SamplerConfig)})

    def priors(self) -> Priors:
        return Priors(**{f.name: getattr(self, f.name) for f in fields(Priors)})


__all__ = ["BiclusterParams", "StageParams"]
