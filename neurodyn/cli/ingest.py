"""``neurodyn ingest``: sources -> recordings.h5."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import Out, app, done
from neurodyn.errors import InputError
from neurodyn.io.outputs import check_output


def _split(values: list[str]) -> list[str]:
    return [x.strip() for v in values for x in v.split(",") if x.strip()]


@app.command()
def ingest(
    inputs: Annotated[list[Path], typer.Argument(help="Source files or folders (e.g. a Kilosort/phy folder); format detected from content.")],
    out: Out = Path("run/recordings.h5"),
    format: Annotated[str | None, typer.Option("--format", "-f", help="Force a reader (see `neurodyn formats`).")] = None,
    dataset: Annotated[list[str], typer.Option("--dataset", help="Keep only these source datasets (repeat or comma-separate).")] = [],
    subject: Annotated[list[str], typer.Option("--subject", "--worm", help="Keep only these subjects/worms.")] = [],
    neurons: Annotated[list[str], typer.Option("--neurons", help="Keep only these channels by name, e.g. AVAL,AVAR.")] = [],
    labeled_only: Annotated[bool, typer.Option("--labeled-only", help="Drop unlabelled ROIs (C. elegans).")] = False,
    resample: Annotated[float | None, typer.Option("--resample", help="Resample every recording to this rate (Hz).")] = None,
    crop: Annotated[str | None, typer.Option("--crop", help="Keep START:STOP seconds, e.g. 60:600 or :300.")] = None,
    option: Annotated[list[str], typer.Option("--reader-option", help="KEY=VALUE passed to the reader.")] = [],
) -> None:
    """Read calcium, spike (times, sorter folders, count matrices), EEG and connectome files
    into one recordings file.

    Every input is read by the registered reader that recognises it; recordings are
    written under /recordings/<id> and connectome graphs under /connectome/<name>.

    Examples: neurodyn ingest data/*.h5 connectome.json --out run/recordings.h5 --labeled-only;
    neurodyn ingest kilosort4/ --out run/ks.h5 --reader-option groups=good,mua;
    neurodyn ingest counts.csv --out run/c.h5 --reader-option bin_s=0.05
    """
    check_output(out, inputs)

    from neurodyn.ingest import ingest as run

    opts = {}
    for kv in option:
        if "=" not in kv:
            raise InputError("--reader-option", f"expected KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        opts[k.strip()] = v.strip()
    path = run(
        inputs, out, format=format, datasets=_split(dataset), subjects=_split(subject),
        neurons=_split(neurons), labeled_only=labeled_only, resample_hz=resample, crop=crop,
        reader_options=opts,
    )
    done(path)


@app.command()
def formats() -> None:
    """List the registered readers and the file types they recognise."""
    from neurodyn.io.registry import READERS
    for r in sorted(READERS.values(), key=lambda r: r.name):
        typer.echo(f"{r.name:24s} {' '.join(r.extensions) or '(directory)':18s} {r.description}")
