"""HMM-GLM state switching with none / gaussian / one-hot priors over per-state couplings.

Modules: :mod:`model` (parameters, links, log-likelihoods), :mod:`basis` (history filtering),
:mod:`forward_backward` (numba E-step kernels), :mod:`mstep` (objectives and gradients),
:mod:`priors`, :mod:`fit` (EM with restarts), :mod:`select` (K by time-block CV),
:mod:`simulate`, :mod:`stage` (the ``states`` stage).
"""
