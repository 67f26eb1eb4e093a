"""``neurodyn simulate calcium`` (other stages add their own simulators to this group)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import Out, Seed, done, simulate_app
from neurodyn.io.outputs import check_output


@simulate_app.command("calcium")
def simulate_calcium_cmd(
    out: Out = Path("sim_calcium.h5"),
    animals: Annotated[int, typer.Option(min=1, help="Number of animals.")] = 4,
    neurons: Annotated[int, typer.Option(min=4, help="Neurons per animal (before missing ones are dropped).")] = 30,
    frames: Annotated[int, typer.Option(min=20, help="Frames per recording.")] = 1200,
    fs: Annotated[float, typer.Option(help="Sampling rate (Hz).")] = 4.0,
    groups: Annotated[int, typer.Option(min=1, help="Planted co-activating groups.")] = 3,
    missing: Annotated[float, typer.Option(min=0.0, max=0.9, help="Fraction of neurons missing per animal.")] = 0.1,
    seed: Seed = 0,
) -> None:
    """Multi-animal calcium traces with planted groups that co-activate in known intervals.

    Ground truth (membership, intervals, which neurons each animal has) is stored under
    /ground_truth of the output, next to the recordings.

    Example: neurodyn simulate calcium --out sim.h5 --animals 4 && neurodyn ingest sim.h5
    """
    check_output(out)

    from neurodyn.io.store import write_recordings
    from neurodyn.simulate import simulate_calcium

    params = dict(n_animals=animals, n_neurons=neurons, n_frames=frames, fs=fs, n_groups=groups,
                  missing_fraction=missing, seed=seed)
    recs, truth = simulate_calcium(**params)
    path = write_recordings(out, recs, params=params, seed=seed, stage="simulate-calcium",
                            extra={"ground_truth": truth})
    done(path, f"{len(recs)} animals")
