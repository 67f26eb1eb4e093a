"""The HDF5 layout of ``states.h5`` (the ``states`` stage): written and read here only.

One group per recording (:mod:`neurodyn.io.groups`; attr ``id``), on the model's time grid.

HMM-GLM (``--features glm``)::

    posterior (T, K) float32, viterbi (T,) int16, time (T,) s, labels (N,), dropped,
    events/{onset, offset, label}, sequence_starts / sequence_stops (S,) bins,
    weights (K, N, N) [post, pre], bias (K, N), basis (L,), transition (K, K), initial (K,),
    loglik_trace, restart_objectives, tau_trace (learned basis), noise_var (gaussian),
    the prior's outputs (:mod:`neurodyn.hmmglm.priors`: ``W0``; ``adjacency``,
    ``adjacency_prob``, ``adjacency_prior``, ``strength``), model_selection (``states=auto``);
    attrs id, n_states, n_iter, converged, loglik, prior, observation, link, seed,
    tau (bins) / tau_s, basis_learned, the time parameters in both units (history_bins /
    history_s, decay_bins / decay_s, trial_bins / trial_s, bin_width_s), and held-out
    heldout_score / baseline_score / heldout_gain / heldout_unit (bits/spike).

A joint fit (``--joint``) writes the parameters, labels, scores and model_selection once in
the group ``joint`` (attr ``recordings``: JSON list of the ids in fitting order); each
recording's group keeps posterior, viterbi, time, events, its sequence ranges, ``loglik``,
its held-out score and attr ``parameters = "/joint"``.

Gaussian HMM on EEG features (``--features bandpower|tde``,
:mod:`neurodyn.hmmglm.gaussian_stage`): posterior, viterbi, time, labels (the brain channels
modelled), ``dropped`` (ECG, EOG, EMG... channels left out), ``means`` (K, D),
``covariances`` (K, D, D) or (K, D), transition, initial, loglik_trace, ``power_maps``
(K, C, B) dB, ``bands`` with ``band_edges`` (B, 2) Hz, ``spectra`` (K, C, F) with
``frequencies`` (F,) Hz, ``occupancy`` (K,), ``dwell_s`` and ``expected_dwell_s`` (K,) s,
model_selection (``states=auto``); attrs features, covariance, mean_dwell_s, n_switches,
model_rate_hz, min_dwell_samples, n_features, variance_kept, heldout_score / baseline_score /
heldout_gain (``heldout_unit`` nats/sample).
Dimension names and units of every dataset: :data:`neurodyn.io.layout.RULES` (``states``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import h5py

from neurodyn.io.groups import GroupTree, item, read_groups, read_ids, write_groups

STAGE = "states"
#: Group holding the shared parameters of a joint fit.
JOINT = "joint"
#: Name of the state path (for exports of state intervals).
PATH = "viterbi"


class StatesFit(GroupTree):
    """One group of ``states.h5``: a recording's fit, or the shared parameters of a joint
    fit (``id == "joint"``). Absent datasets read as None."""

    posterior = item("posterior", "(T, K) state probabilities")
    viterbi = item(PATH, "(T,) most likely state path")
    sequence_starts = item("sequence_starts", "(S,) first bin of each sequence")
    sequence_stops = item("sequence_stops", "(S,) bin after each sequence")
    weights = item("weights", "(K, N, N) couplings W[post, pre] per state (HMM-GLM)")
    bias = item("bias", "(K, N) bias per state (HMM-GLM)")
    basis = item("basis", "(L,) history basis (HMM-GLM)")
    transition = item("transition", "(K, K) transition matrix")
    initial = item("initial", "(K,) initial state distribution")
    loglik_trace = item("loglik_trace", "EM objective (nats) per iteration")
    tau_trace = item("tau_trace", "basis decay (bins) per EM iteration (learned basis)")
    adjacency = item("adjacency", "(N, N) adjacency (onehot prior) or its magnitude")
    adjacency_prob = item("adjacency_prob", "(K, N, N, 3) p(inhibitory, none, excitatory)")
    adjacency_prior = item("adjacency_prior", "learned class table of the onehot prior")
    W0 = item("W0", "(N, N) shared mean of the weights (gaussian prior)")
    model_selection = item("model_selection", "tree of the choice of K (states=auto)")
    means = item("means", "(K, D) state means (Gaussian HMM)")
    covariances = item("covariances", "state covariances (Gaussian HMM)")
    power_maps = item("power_maps", "(K, C, B) band power per state, dB vs the mean")
    bands = item("bands", "(B,) band names")
    band_edges = item("band_edges", "(B, 2) band edges, Hz")
    spectra = item("spectra", "(K, C, F) posterior-weighted spectra per state and channel")
    frequencies = item("frequencies", "(F,) Hz of spectra")
    occupancy = item("occupancy", "(K,) fraction of time in each state")
    dwell_s = item("dwell_s", "(K,) mean seconds per visit")

    @property
    def is_joint(self) -> bool:
        """True for the shared-parameter group of a joint fit."""
        return self.id == JOINT

    @property
    def has_parameters(self) -> bool:
        """True when the group holds fitted HMM-GLM weights (not only the decoded states)."""
        return "weights" in self.tree


def write(f: h5py.Group, fits: Iterable[StatesFit]) -> None:
    """Write the fits at the root of an open ``states.h5``."""
    write_groups(f, fits)


def read(path: str | os.PathLike, ids: Iterable[str] | None = None
         ) -> dict[str, StatesFit]:
    """Read ``states.h5``: every group by recording id (``"joint"``: the shared parameters
    of a joint fit); ``ids``: only those groups (the ones present).
    :class:`~neurodyn.errors.InputError` when the file is not one."""
    return read_groups(path, STAGE, StatesFit, ids)  # type: ignore[return-value]


def ids(path: str | os.PathLike) -> list[str]:
    """Ids of the recordings with a state path in the file (without reading them)."""
    return read_ids(path, STAGE, PATH)
