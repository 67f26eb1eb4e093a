"""``neurodyn ingest``: sources -> recordings.h5."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import Out, app, done
from neurodyn.cli.options import stage_command
from neurodyn.io.outputs import check_output
from neurodyn.io.params import IngestParams


@app.command()
@stage_command(IngestParams)
def ingest(
    inputs: Annotated[list[Path], typer.Argument(help="Source files or folders (e.g. a Kilosort/phy folder); format detected from content.")],
    out: Out = Path("run/recordings.h5"),
    *,
    params: IngestParams,
) -> None:
    """Read calcium, spike (times, sorter folders, count matrices), EEG and connectome files
    into one recordings file.

    Every input is read by the registered reader that recognises it; recordings are
    written under /recordings/<id> and connectome graphs under /connectome/<name>.

    Examples: neurodyn ingest data/*.h5 connectome.json --out run/recordings.h5 --labeled-only;
    neurodyn ingest kilosort4/ --out run/ks.h5 --reader-options groups=good,mua;
    neurodyn ingest counts.csv --out run/c.h5 --reader-options bin_s=0.05
    """
    check_output(out, inputs)

    from neurodyn.ingest import ingest as run

    done(run(inputs, out, params))


@app.command()
def formats() -> None:
    """List the registered readers and the file types they recognise.

    Example: neurodyn formats   (then force one with: neurodyn ingest FILE --format NAME)
    """
    from neurodyn.io.registry import READERS
    for r in sorted(READERS.values(), key=lambda r: r.name):
        typer.echo(f"{r.name:24s} {' '.join(r.extensions) or '(directory)':18s} {r.description}")
