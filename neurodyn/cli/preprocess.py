"""``neurodyn preprocess``: recordings.h5 -> preprocessed recordings.h5."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import Out, Seed, app, done
from neurodyn.cli.options import stage_command
from neurodyn.io.outputs import check_output
from neurodyn.signal.params import PreprocessParams


@app.command()
@stage_command(PreprocessParams)
def preprocess(
    input: Annotated[Path, typer.Argument(metavar="RECORDINGS", help="Recordings file (from ingest or simulate).")],
    out: Out = Path("run/preprocessed.h5"),
    seed: Seed = 0,
    *,
    params: PreprocessParams,
) -> None:
    """Crop, fill gaps, re-reference, filter, detrend, resample, normalise, differentiate.

    Steps run in that fixed order, each only when its option is given; band-pass, notch and
    re-referencing apply to EEG recordings only. What each step did (e.g. samples
    interpolated) is stored in every recording's meta and in the file's preprocess_log.

    Example: neurodyn preprocess run/recordings.h5 --out run/pre.h5 --bandpass 1,40 --notch 50
    --reference average --fs 250 --normalize zscore
    """
    check_output(out, [input])

    from neurodyn.preprocess import run

    done(run(input, out, params, seed=seed))
