"""Weighted (nested) stochastic block models and baselines for community detection.

Modules: :mod:`wsbm` (model and description length), :mod:`fit` (minimisation),
:mod:`nested` (hierarchy and the public :func:`fit_wsbm`), :mod:`leiden` (baseline),
:mod:`benchmark_graphs` (planted and LFR-style generators), :mod:`stage` (the pipeline stage).
"""

from importlib import import_module
from typing import Any

__all__ = ["NestedSBM", "fit_wsbm"]


def __getattr__(name: str) -> Any:
    # lazy: `neurodyn.community.params` is read by the CLI and pipelines without numba/scipy
    if name in __all__:
        return getattr(import_module("neurodyn.community.nested"), name)
    raise AttributeError(name)
