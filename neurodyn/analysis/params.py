"""Parameters of ``neurodyn compare-connectome`` (one definition for the CLI and the record)."""

from __future__ import annotations

from dataclasses import dataclass

from neurodyn.params import Choice, StageParams, param


class Synapses(Choice):
    """Which anatomical synapses count as a connection."""

    chemical = "chemical"
    electrical = "electrical"
    both = "both"


@dataclass(frozen=True)
class CompareParams(StageParams):
    """Inferred interactions scored against an anatomical connectome."""

    stage = "compare-connectome"

    synapses: Synapses = param(Synapses.both, "Which synapses count as a connection: chemical, "
                               "electrical or both.")
    n_perm: int = param(1000, "Label permutations for the null.", ge=1)
