"""Per-recording stage files (``states.h5``, ``bicluster.h5``, ``compare.h5``): one top-level
group per recording, written from a tree and read back as a :class:`GroupTree`.

A group is named :func:`~neurodyn.io.layout.group_name` of its recording id and carries the id
in its ``id`` attribute (older files: ``recording`` or ``source``, or only the group name,
whose ``|`` stood for ``/``). The stage's ``result`` module declares which datasets a group
holds (:func:`item` properties of a :class:`GroupTree` subclass); nothing else spells them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import h5py
import numpy as np
import pandas as pd

from neurodyn.errors import InputError
from neurodyn.io.layout import group_name, recording_id
from neurodyn.io.store import open_h5, read_tree, write_tree
from neurodyn.recording import empty_events

_ID_ATTRS = ("id", "recording", "source")


def group_id(key: str, g: h5py.Group) -> str:
    """The recording id of the top-level group ``key``."""
    for a in _ID_ATTRS:
        if a in g.attrs:
            v = g.attrs[a]
            return v.decode() if isinstance(v, bytes) else str(v)
    return recording_id(key)


def recording_groups(f: h5py.Group) -> dict[str, h5py.Group]:
    """Top-level groups of a per-recording file by recording id, in stored order."""
    return {group_id(k, g): g for k, g in f.items() if isinstance(g, h5py.Group)}


def events_tree(events: pd.DataFrame) -> dict[str, np.ndarray]:
    """A recording's events as the ``events`` subtree of its group (onset, offset s; label)."""
    return {"onset": events["onset"].to_numpy(np.float64),
            "offset": events["offset"].to_numpy(np.float64),
            "label": np.array([str(x) for x in events["label"]], dtype=object)}


class item(property):  # noqa: N801 (used like ``property``)
    """A read-only property giving the group's dataset or subtree ``name`` (None when absent);
    ``Class.attribute.name`` is the stored name (the variable name in ``neurodyn.load``)."""

    def __init__(self, name: str, doc: str = "") -> None:
        super().__init__(lambda obj: obj.tree.get(name), doc=doc or f"``{name}``")
        self.name = name


class GroupTree:
    """One group of a per-recording file, read eagerly.

    Attributes
    ----------
    id : str
        Recording id (or the name of a shared group, e.g. ``joint``).
    tree : dict
        Datasets and subgroups by name, attributes as ``"@name"``
        (:func:`neurodyn.io.store.write_tree` / :func:`~neurodyn.io.store.read_tree`).
    """

    def __init__(self, id: str, tree: Mapping[str, Any]) -> None:  # noqa: A002
        self.id = str(id)
        self.tree = dict(tree)

    def __contains__(self, name: str) -> bool:
        return name in self.tree

    def attr(self, name: str, default: Any = None) -> Any:
        """The group attribute ``name``."""
        return self.tree.get("@" + name, default)

    @property
    def attrs(self) -> dict[str, Any]:
        """The group's attributes (names without ``@``)."""
        return {k[1:]: v for k, v in self.tree.items() if k.startswith("@")}

    labels = item("labels", "(N,) neuron names")
    time = item("time", "(T,) time stamps (s) of the group's time axis")

    @property
    def events(self) -> pd.DataFrame:
        """The recording's events (onset, offset s; label); empty when not stored."""
        ev = self.tree.get("events")
        if not isinstance(ev, Mapping) or "onset" not in ev:
            return empty_events()
        return pd.DataFrame({"onset": np.asarray(ev["onset"], float),
                             "offset": np.asarray(ev["offset"], float),
                             "label": [str(x) for x in ev.get("label", [""] * len(ev["onset"]))]})

    def __repr__(self) -> str:
        names = sorted(k for k in self.tree if not k.startswith("@"))
        return f"{type(self).__name__}({self.id!r}, {names})"


def write_groups(f: h5py.Group, groups: Iterable[GroupTree]) -> None:
    """Write each group under :func:`group_name` of its id at the root of an open file."""
    for g in groups:
        write_tree(f.create_group(group_name(g.id)), g.tree)


def _open_stage(path: str | os.PathLike, stage: str) -> h5py.File:
    f = open_h5(path)
    found = f.attrs.get("stage", "")
    found = found.decode() if isinstance(found, bytes) else str(found)
    if found != stage:
        f.close()
        raise InputError(path, f"not a {stage} file (it comes from stage {found!r}; run "
                               f"`neurodyn {stage}` first)")
    return f


def read_ids(path: str | os.PathLike, stage: str, having: str) -> list[str]:
    """Ids of the groups of a per-recording ``stage`` file that hold ``having``."""
    with _open_stage(path, stage) as f:
        return [rid for rid, g in recording_groups(f).items() if having in g]


def read_groups(path: str | os.PathLike, stage: str, kind: type[GroupTree],
                ids: Iterable[str] | None = None) -> dict[str, GroupTree]:
    """Read the groups of a per-recording ``stage`` file as ``kind``, by recording id: all,
    or those of ``ids`` that the file holds.

    Raises
    ------
    InputError
        Missing, corrupt or incomplete file, or a file of another stage.
    """
    with _open_stage(path, stage) as f:
        groups = recording_groups(f)
        wanted = list(groups) if ids is None else [i for i in ids if i in groups]
        return {rid: kind(rid, read_tree(groups[rid])) for rid in wanted}
