"""Bayesian bi-clustering of spike counts: neuron clusters by shared latent trajectories, time
bins by switching linear dynamics (after Wei, Stevenson & Wang). See :mod:`.sampler`."""

from neurodyn.bicluster.model import Priors, SamplerConfig
from neurodyn.bicluster.sampler import run_chain
from neurodyn.bicluster.simulate import simulate_bicluster

__all__ = ["Priors", "SamplerConfig", "run_chain", "simulate_bicluster"]
