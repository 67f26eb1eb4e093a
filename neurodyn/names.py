"""Canonical C. elegans neuron names."""

from __future__ import annotations

import re

_PADDED = re.compile(r"^([A-Z]{2,3})0+(\d+)$")


def canonical_neuron_name(name: str) -> str:
    """Normalise a C. elegans neuron name to the collection's canonical spelling.

    Strips whitespace, upper-cases, and drops zero padding of motor-neuron numbers
    (``"DA06"`` -> ``"DA6"``, ``"VB02"`` -> ``"VB2"``); other names pass unchanged.
    """
    s = str(name).strip().upper()
    m = _PADDED.match(s)
    return f"{m.group(1)}{int(m.group(2))}" if m else s
