"""Bayesian bi-clustering of spike counts: neuron clusters by shared latent trajectories, time
bins by switching linear dynamics (after Wei, Stevenson & Wang). See :mod:`.sampler`."""

from importlib import import_module
from typing import Any

_WHERE = {"Priors": "model", "SamplerConfig": "model", "run_chain": "sampler",
          "simulate_bicluster": "simulate"}
__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    # lazy: `neurodyn.bicluster.params` is read by the CLI and pipelines without numba
    if name in _WHERE:
        return getattr(import_module(f"neurodyn.bicluster.{_WHERE[name]}"), name)
    raise AttributeError(name)
