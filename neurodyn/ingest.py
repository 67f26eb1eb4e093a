"""Ingest: read sources through the registry, select, crop, resample, write recordings.h5."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurodyn.connectome import Connectome
from neurodyn.errors import InputError
from neurodyn.io import store
from neurodyn.io.params import IngestParams
from neurodyn.io.registry import find_reader, read
from neurodyn.names import canonical_neuron_name
from neurodyn.params import parse_crop
from neurodyn.progress import progress
from neurodyn.recording import Recording
from neurodyn.signal.recordings import resample

log = logging.getLogger(__name__)


def select(
    recs: Sequence[Recording],
    *,
    datasets: Sequence[str] = (),
    subjects: Sequence[str] = (),
    neurons: Sequence[str] = (),
    labeled_only: bool = False,
) -> list[Recording]:
    """Filter recordings by dataset and subject, and channels by name or labelled status.

    Neurons named in ``neurons`` that a recording lacks are skipped for that recording
    (logged); a recording left with no channel is dropped.
    """
    out = []
    for r in recs:
        if datasets and r.dataset not in datasets:
            continue
        if subjects and r.subject not in subjects and r.id not in subjects:
            continue
        keep = list(r.labels)
        if labeled_only and r.channel_info is not None and "is_labeled" in r.channel_info:
            keep = [x for x, ok in zip(r.labels, r.channel_info["is_labeled"]) if ok]
        if neurons:
            # names compare in canonical form, so DA06 selects DA6 and fp1 selects Fp1
            wanted = {canonical_neuron_name(x) for x in neurons}
            keep = [x for x in keep if canonical_neuron_name(x) in wanted]
            if len(keep) < len(wanted):
                log.info("%s lacks %d requested channels", r.id, len(wanted) - len(keep))
        if not keep:
            log.warning("%s: no channel left after selection; skipped", r.id)
            continue
        out.append(r if len(keep) == r.n_channels else r.select(keep))
    return out


def _pushdown(path: str | os.PathLike, format: str | None, selection: Mapping[str, Any],
              options: Sequence[str] = ()) -> dict:
    """Selection options the path's reader accepts, so large collections filter while reading."""
    accepted = inspect.signature(find_reader(path, format, options).read).parameters
    return {k: v for k, v in selection.items() if v and k in accepted}


def ingest(inputs: Sequence[str | os.PathLike], out: str | os.PathLike,
           params: IngestParams | None = None, **kw: Any) -> Path:
    """Read every input, select/crop/resample, and write one recordings file with provenance.

    ``params`` (defaults when omitted; keywords override single fields) are the
    :class:`~neurodyn.io.params.IngestParams`. Returns the output path. Raises
    :class:`InputError` when nothing is left to write.
    """
    p = IngestParams.build(params, **kw)
    recs: list[Recording] = []
    cons: list[Connectome] = []
    selection = {"datasets": list(p.datasets), "worms": list(p.subjects), "neurons": list(p.neurons),
                 "labeled_only": p.labeled_only}
    for path in progress(inputs, desc="reading", unit="file"):
        given = dict(p.reader_options)
        options = {**_pushdown(path, p.format, selection, list(given)), **given}
        for item in read(path, format=p.format, **options):
            (cons if isinstance(item, Connectome) else recs).append(item)
    recs = select(recs, datasets=p.datasets, subjects=p.subjects, neurons=p.neurons,
                  labeled_only=p.labeled_only)
    start, stop = parse_crop(p.crop)
    if start is not None or stop is not None:
        recs = [r.crop(start, stop) for r in recs]
    if p.fs:
        recs = [resample(r, p.fs, param="fs") for r in recs]
    if not recs and not cons:
        raise InputError(inputs[0] if inputs else None, "no recording left after selection")
    return store.write_recordings(out, recs, cons, params=p.to_dict(), inputs=inputs)
