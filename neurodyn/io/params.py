"""Parameters of the ``ingest`` stage (one definition for the CLI, pipelines and provenance)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from neurodyn.params import StageParams, param, parse_crop


def _crop(text: str | None) -> str | None:
    if text is not None:
        parse_crop(text)
    return text


@dataclass(frozen=True)
class IngestParams(StageParams):
    """Read sources through the reader registry, select, crop and resample."""

    stage = "ingest"

    format: str | None = param(None, "Force a reader (see `neurodyn formats`).", short="-f",
                               metavar="READER")
    datasets: tuple[str, ...] = param((), "Keep only these source datasets (repeat or "
                                      "comma-separate).", aliases=("dataset",))
    subjects: tuple[str, ...] = param((), "Keep only these subjects (C. elegans: worms).",
                                      aliases=("subject", "worm"))
    neurons: tuple[str, ...] = param((), "Keep only these channels by name, e.g. AVAL,AVAR.")
    labeled_only: bool = param(False, "Drop unlabelled ROIs (C. elegans).")
    fs: float | None = param(None, "Resample every recording to this rate.", unit="Hz", gt=0,
                             aliases=("resample", "resample_hz"))
    crop: str | None = param(None, "Keep START:STOP seconds, e.g. 60:600 or :300.", check=_crop,
                             metavar="START:STOP")
    reader_options: dict[str, Any] = param(
        {}, "KEY=VALUE passed to the reader (repeat); in a pipeline, a table.", metavar="KEY=VALUE",
        aliases=("reader_option",))
