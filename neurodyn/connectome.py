"""Anatomical connectome graphs (chemical and electrical synapses) aligned by neuron name."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from neurodyn.errors import InputError
from neurodyn.names import canonical_neuron_name


@dataclasses.dataclass(frozen=True, eq=False)
class Connectome:
    """A directed weighted graph between named neurons.

    Parameters
    ----------
    name : str
        Annotation name (``"varshney2011"``, ``"white_1986_whole"``...).
    labels : sequence of str (N,)
        Canonical neuron names.
    chemical : array (N, N)
        Chemical synapse counts, ``chemical[pre, post]``.
    electrical : array (N, N)
        Gap-junction counts, symmetric.
    source_file : str
    """

    name: str
    labels: Sequence[str]
    chemical: np.ndarray
    electrical: np.ndarray
    source_file: str = ""

    def __post_init__(self) -> None:
        n = len(self.labels)
        for field in ("chemical", "electrical"):
            m = np.asarray(getattr(self, field), dtype=np.float64)
            if m.shape != (n, n):
                raise InputError(self.source_file or self.name, f"{field} is {m.shape}, want {(n, n)}")
            object.__setattr__(self, field, m)
        if len(set(self.labels)) != n:
            raise InputError(self.source_file or self.name, "duplicate neuron names")
        object.__setattr__(self, "labels", tuple(self.labels))

    @property
    def adjacency(self) -> np.ndarray:
        """Total synapse count, chemical plus electrical (N, N)."""
        return self.chemical + self.electrical

    def aligned(self, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Chemical and electrical matrices re-indexed to ``labels``.

        Returns ``(chemical, electrical, present)`` where ``present[i]`` is False for names the
        connectome lacks (their rows and columns are zero).
        """
        index = {canonical_neuron_name(x): i for i, x in enumerate(self.labels)}
        src = np.array([index.get(canonical_neuron_name(x), -1) for x in labels])
        present = src >= 0
        n = len(labels)
        chem = np.zeros((n, n))
        elec = np.zeros((n, n))
        ii = np.flatnonzero(present)
        chem[np.ix_(ii, ii)] = self.chemical[np.ix_(src[ii], src[ii])]
        elec[np.ix_(ii, ii)] = self.electrical[np.ix_(src[ii], src[ii])]
        return chem, elec, present
