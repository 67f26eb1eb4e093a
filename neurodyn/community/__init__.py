"""Weighted (nested) stochastic block models and baselines for community detection.

Modules: :mod:`wsbm` (model and description length), :mod:`fit` (minimisation),
:mod:`nested` (hierarchy and the public :func:`fit_wsbm`), :mod:`leiden` (baseline),
:mod:`benchmark_graphs` (planted and LFR-style generators), :mod:`stage` (the pipeline stage).
"""

from neurodyn.community.nested import NestedSBM, fit_wsbm

__all__ = ["NestedSBM", "fit_wsbm"]
