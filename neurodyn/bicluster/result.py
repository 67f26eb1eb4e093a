"""The HDF5 layout of ``bicluster.h5`` (the ``bicluster`` stage): written and read here only.

One group per recording (:mod:`neurodyn.io.groups`)::

    neuron_clusters (N,)                  point-estimate cluster of each neuron
    state_sequence (T,)                   point-estimate state of each bin
    neuron_similarity (N, N)              posterior co-clustering of neurons
    state_similarity (G, G) float32       posterior co-clustering of bins on a grid
    state_similarity_bins (G,)            the grid (bin indices)
    traces/{n_clusters, n_states, loglik} (chains, draws) kept draws;
          {n_clusters_all, n_states_all} (chains, sweeps) every sweep
    chain_final_clusters (chains, N)      each chain's last partition
    n_clusters_posterior (Kmax + 1,)      posterior of the number of clusters
    latent/{mean, lower, upper} (K, T, q) canonical trajectories of the point-estimate clusters
    parameters/{d_mean, r_mean (N,), state_occupancy (L,)}
    diagnostics (attrs: rhat_*, ess_*, *_acceptance, stopped_by, sweeps_per_chain, ...)
    seconds_per_sweep (attrs: seconds per block of the sampler)
    labels (N,), time (T,) s, events/{onset, offset, label}
    attrs: id, fs, n_samples (kept draws over all chains)

Dimension names and units: :data:`neurodyn.io.layout.RULES` (``bicluster``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import h5py
import numpy as np

from neurodyn.io.groups import GroupTree, events_tree, item, read_groups, read_ids, write_groups

STAGE = "bicluster"
#: Name of the state path (for exports of state intervals).
PATH = "state_sequence"
#: Names of the kept-draw traces (``traces/<name>``), in the order figures show them.
TRACE_NAMES = ("n_clusters", "n_states", "loglik")


class BiclusterFit(GroupTree):
    """One group of ``bicluster.h5``: the posterior summaries of one recording."""

    neuron_clusters = item("neuron_clusters", "(N,) point-estimate cluster of each neuron")
    state_sequence = item(PATH, "(T,) point-estimate state of each bin")
    neuron_similarity = item("neuron_similarity", "(N, N) posterior co-clustering")
    state_similarity = item("state_similarity", "(G, G) posterior co-clustering of bins")
    chain_final_clusters = item("chain_final_clusters", "(chains, N) last partition per chain")
    n_clusters_posterior = item("n_clusters_posterior", "posterior of the number of clusters")
    latent = item("latent", "{mean, lower, upper}: (K, T, q) canonical trajectories")
    parameters = item("parameters", "{d_mean, r_mean, state_occupancy}")

    @property
    def state_similarity_bins(self) -> np.ndarray:
        """(G,) bins of :attr:`state_similarity` (all bins in files that lack it)."""
        bins = self.tree.get("state_similarity_bins")
        return np.arange(np.size(self.state_sequence)) if bins is None else np.asarray(bins)

    @property
    def traces(self) -> dict[str, np.ndarray]:
        """Draw traces by name (:data:`TRACE_NAMES` and ``*_all``), (chains, draws)."""
        return dict(self.tree.get("traces", {}))

    @property
    def diagnostics(self) -> dict[str, Any]:
        """Convergence diagnostics by name (R-hat, ESS, acceptance rates, stopped_by...)."""
        d = self.tree.get("diagnostics", {})
        return {k.lstrip("@"): v.item() if isinstance(v, np.generic) else v
                for k, v in d.items()}


def fit_tree(rec: Any, res: Mapping[str, Any]) -> BiclusterFit:
    """The group of recording ``rec`` from the summaries of :func:`~.fit.fit`."""
    tree: dict[str, Any] = {"@id": rec.id, "@fs": float(rec.fs), "@n_samples": res["n_samples"]}
    tree.update((k, v) for k, v in res.items() if k != "n_samples")
    tree["labels"] = np.array(rec.labels, dtype=object)
    tree["time"] = rec.times
    tree["events"] = events_tree(rec.events)
    return BiclusterFit(rec.id, tree)


def write(f: h5py.Group, fits: Iterable[BiclusterFit]) -> None:
    """Write the fits at the root of an open ``bicluster.h5``."""
    write_groups(f, fits)


def read(path: str | os.PathLike, ids: Iterable[str] | None = None
         ) -> dict[str, BiclusterFit]:
    """Read ``bicluster.h5`` by recording id (:class:`~neurodyn.errors.InputError` when the
    file is not one); ``ids``: only those recordings (the ones present)."""
    return read_groups(path, STAGE, BiclusterFit, ids)  # type: ignore[return-value]


def ids(path: str | os.PathLike) -> list[str]:
    """Ids of the recordings with a state path in the file (without reading them)."""
    return read_ids(path, STAGE, PATH)
