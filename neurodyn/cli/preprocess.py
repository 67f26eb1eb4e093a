"""``neurodyn preprocess``: recordings.h5 -> preprocessed recordings.h5."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import Out, Seed, app, done
from neurodyn.io.outputs import check_output


@app.command()
def preprocess(
    input: Annotated[Path, typer.Argument(help="Recordings file (from ingest or simulate).")],
    out: Out = Path("run/preprocessed.h5"),
    seed: Seed = 0,
    ids: Annotated[list[str], typer.Option("--id", help="Process only these recording ids (repeat).")] = [],
    crop: Annotated[str | None, typer.Option("--crop", help="START:STOP seconds, or an event label (e.g. eyes_closed) whose intervals are kept.")] = None,
    max_gap_s: Annotated[float, typer.Option("--max-gap-s", help="Interpolate missing runs up to this many seconds; longer runs stay masked.")] = 0.0,
    reference: Annotated[str | None, typer.Option("--reference", help="EEG re-reference: 'average' or channel names, e.g. 'EEG A1,EEG A2'.")] = None,
    bandpass: Annotated[str | None, typer.Option("--bandpass", help="EEG band-pass LO,HI in Hz (',40' low-pass, '1,' high-pass).")] = None,
    notch: Annotated[str | None, typer.Option("--notch", help="EEG notch frequencies in Hz, e.g. 50 or 50,100.")] = None,
    filter_order: Annotated[int, typer.Option("--filter-order", help="Butterworth order of the band-pass.")] = 4,
    notch_q: Annotated[float, typer.Option("--notch-q", help="Quality factor of the notch filter.")] = 30.0,
    detrend: Annotated[str | None, typer.Option("--detrend", help="linear or constant.")] = None,
    resample_hz: Annotated[float | None, typer.Option("--resample-hz", help="Resample every recording to this rate (Hz).")] = None,
    normalize: Annotated[str, typer.Option("--normalize", help="none, zscore or dff.")] = "none",
    dff_percentile: Annotated[float, typer.Option("--dff-percentile", help="Percentile of each channel used as the dF/F baseline F0.")] = 8.0,
    derivative: Annotated[bool, typer.Option("--derivative", help="Replace traces by their time derivative (units/s).")] = False,
) -> None:
    """Crop, fill gaps, re-reference, filter, detrend, resample, normalise, differentiate.

    Steps run in that fixed order, each only when its option is given; band-pass, notch and
    re-referencing apply to EEG recordings only. What each step did (e.g. samples
    interpolated) is stored in every recording's meta and in the file's preprocess_log.

    Example: neurodyn preprocess run/recordings.h5 --out run/pre.h5 --bandpass 1,40 --notch 50
    --reference average --resample-hz 250 --normalize zscore
    """
    check_output(out, [input])

    from neurodyn.preprocess import run

    path = run(
        input, out, seed=seed, ids=ids or None, crop=crop, max_gap_s=max_gap_s,
        reference=reference, bandpass=bandpass, notch=notch, filter_order=filter_order,
        notch_q=notch_q, detrend=detrend, resample_hz=resample_hz, normalize=normalize,
        dff_percentile=dff_percentile, derivative=derivative,
    )
    done(path)
