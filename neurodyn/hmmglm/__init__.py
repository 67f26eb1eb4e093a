"""HMM-GLM state switching with none / gaussian / one-hot priors over per-state couplings.

Modules: :mod:`model` (parameters, links, log-likelihoods), :mod:`basis` (history filtering),
:mod:`forward_backward` (numba E-step kernels), :mod:`mstep` (objectives and gradients),
:mod:`priors`, :mod:`fit` (EM with restarts), :mod:`learn_basis` (the basis decay learned
inside EM), :mod:`select` (K by time-block CV), :mod:`joint` (one model over several
recordings), :mod:`simulate`, :mod:`recordings`, :mod:`stage` (the ``states`` stage).
"""
