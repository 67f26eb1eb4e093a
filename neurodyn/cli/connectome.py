"""``neurodyn affinity``, ``neurodyn factorize`` and ``neurodyn simulate connectome``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.affinity.params import AffinityParams
from neurodyn.cli._app import STATE, Out, Seed, app, done, selection_lines, simulate_app
from neurodyn.cli.options import stage_command
from neurodyn.io.outputs import check_output
from neurodyn.tensor.params import FactorizeParams


@app.command()
@stage_command(AffinityParams)
def affinity(
    input: Annotated[Path, typer.Argument(metavar="RECORDINGS", help="Recordings file (one recording per animal).")],
    out: Out = Path("run/affinity.h5"),
    seed: Seed = 0,
    *,
    params: AffinityParams,
) -> None:
    """Windowed pairwise affinities between neurons of every animal -> (pair, window, animal) tensor.

    Animals are aligned by neuron name; a neuron missing in an animal is masked, not zero.
    Output: the (pair, window, animal) tensor as each animal's observed pairs
    (/observed/{pair_index, offsets, values, mask}), /pairs, /labels, /windows (s), /animals, /events.

    Example: neurodyn affinity run/recordings.h5 --out run/affinity.h5 --window 8 --step 4
    """
    check_output(out, [input])
    from neurodyn.affinity.stage import run

    done(run(input, out, params, seed=seed))


@app.command()
@stage_command(FactorizeParams)
def factorize(
    affinity_file: Annotated[Path, typer.Argument(metavar="AFFINITY", help="affinity.h5 from `neurodyn affinity`.")],
    out: Out = Path("run/ntf.h5"),
    seed: Seed = 0,
    *,
    params: FactorizeParams,
) -> None:
    """Non-negative CP decomposition (masked HALS) of the affinity tensor, with rank selection.

    --rank auto fits every rank in --ranks with --restarts initialisations, scores restart
    stability and held-out entry error, and keeps the smallest stable rank whose held-out error
    is within --slack of the best. It prints every rank's held-out error with its standard
    error, the choice and why, and warns when the choice is at an end of --ranks or does not
    beat a constant tensor. On a collection of more than --scan-animals animals the ranks are
    scanned on that many (drawn with --seed), then the chosen rank is fitted on all. Output: /factors/{pairs,time,animal,weights},
    /components/matrices (R,N,N), /rank_selection/*, /model_selection, /events.

    Example: neurodyn factorize run/affinity.h5 --out run/ntf.h5 --rank auto --ranks 2-10
    """
    check_output(out, [affinity_file])
    from neurodyn.tensor.stage import run

    path = run(affinity_file, out, params, seed=seed)
    if STATE["verbose"] >= 0:
        for line in selection_lines(path):
            typer.echo(line)
    done(path)


@simulate_app.command("connectome")
def simulate_connectome_cmd(
    out: Out = Path("sim_connectome.h5"),
    animals: Annotated[int, typer.Option(min=1, help="Number of animals.")] = 4,
    neurons: Annotated[int, typer.Option(min=4, help="Neurons per animal (before missing ones are dropped).")] = 30,
    frames: Annotated[int, typer.Option(min=20, help="Frames per recording.")] = 1200,
    fs: Annotated[float, typer.Option(help="Sampling rate (Hz).")] = 4.0,
    groups: Annotated[int, typer.Option(min=1, help="Planted co-activating groups (one interval each).")] = 3,
    missing: Annotated[float, typer.Option(min=0.0, max=0.9, help="Fraction of neurons missing per animal.")] = 0.1,
    noise: Annotated[float, typer.Option(min=0.0, help="Observation noise s.d. (dF/F).")] = 0.15,
    seed: Seed = 0,
) -> None:
    """Animals whose planted neuron groups co-activate in known intervals (for affinity -> NTF).

    Ground truth is stored under /ground_truth: membership (N,) (-1 background), intervals
    (G, 2) s, labels, present (A, N).

    Example: neurodyn simulate connectome --out sim.h5 && neurodyn affinity sim.h5
    """
    check_output(out)
    from neurodyn.tensor.simulate import write_connectome_simulation

    path = write_connectome_simulation(
        out, n_animals=animals, n_neurons=neurons, n_frames=frames, fs=fs, n_groups=groups,
        missing_fraction=missing, noise=noise, seed=seed,
    )
    done(path, f"{animals} animals, {groups} planted groups")
