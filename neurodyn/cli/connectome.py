"""``neurodyn affinity``, ``neurodyn factorize`` and ``neurodyn simulate connectome``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import Out, Seed, app, done, simulate_app

KernelOpt = Annotated[
    str,
    typer.Option(
        "--kernel",
        help="differential (default): sqrt(max(0, d_i d_j)) * exp(-(d_i - d_j)^2 / (2 sigma^2)) on "
        "smoothed derivatives divided by 1.4826*MAD; a documented stand-in for the differential "
        "affinity of Dyballa et al. 2024 (exact published formula not used). pearson: rectified "
        "windowed Pearson correlation of smoothed values. gaussian: exp(-(z_i - z_j)^2 / "
        "(2 sigma^2)) on robust z-scores.",
    ),
]


@app.command()
def affinity(
    recordings: Annotated[Path, typer.Argument(help="Recordings file (one recording per animal).")],
    out: Out = Path("run/affinity.h5"),
    kernel: KernelOpt = "differential",
    window: Annotated[float, typer.Option("--window", help="Window width (s).")] = 8.0,
    step: Annotated[float, typer.Option("--step", help="Window step (s); 8 s / 4 s gives ~300 windows for 20 min.")] = 4.0,
    smooth: Annotated[float, typer.Option("--smooth", help="Gaussian smoothing s.d. (s) before derivatives/values.")] = 0.5,
    sigma: Annotated[float, typer.Option("--sigma", help="Kernel width in robust-scale units (differential, gaussian).")] = 2.0,
    min_fraction: Annotated[float, typer.Option("--min-fraction", help="Fraction of a window's samples both neurons need observed, else the entry is masked.")] = 0.5,
    align: Annotated[str, typer.Option("--align", help="union: neurons in any animal (absent ones masked); intersection: only neurons in all animals.")] = "union",
    keep_unlabelled: Annotated[bool, typer.Option("--keep-unlabelled", help="Keep unlabelled ROIs, each as its own per-animal neuron '<animal>:<roi>'.")] = False,
    fs: Annotated[float | None, typer.Option("--fs", help="Resample every recording to this rate (Hz). Default: keep a shared regular rate, else resample all to the lowest rate.")] = None,
    recording: Annotated[list[str], typer.Option("--recording", help="Use only these recording ids (repeatable).")] = [],
    seed: Seed = 0,
) -> None:
    """Windowed pairwise affinities between neurons of every animal -> (pair, window, animal) tensor.

    Animals are aligned by neuron name; a neuron missing in an animal is masked, not zero.
    Output: /affinity (P,W,A) float32, /mask, /pairs, /labels, /windows (s), /animals, /events.

    Example: neurodyn affinity run/recordings.h5 --out run/affinity.h5 --window 8 --step 4
    """
    from neurodyn.affinity.stage import run

    path = run(
        recordings, out, seed=seed, kernel=kernel, window=window, step=step, smooth=smooth,
        sigma=sigma, min_fraction=min_fraction, align=align, keep_unlabelled=keep_unlabelled, fs=fs,
        recording=list(recording) or None,
    )
    done(path)


@app.command()
def factorize(
    affinity_file: Annotated[Path, typer.Argument(metavar="AFFINITY", help="affinity.h5 from `neurodyn affinity`.")],
    out: Out = Path("run/ntf.h5"),
    rank: Annotated[str, typer.Option("--rank", help="Number of components, or 'auto' to choose from --ranks.")] = "auto",
    ranks: Annotated[str, typer.Option("--ranks", help="Candidate ranks for --rank auto, e.g. 1-8 or 2,4,6.")] = "1-8",
    restarts: Annotated[int, typer.Option("--restarts", min=1, help="Random initialisations per rank (best kept; seeds recorded).")] = 5,
    max_iter: Annotated[int, typer.Option("--max-iter", min=1, help="Maximum HALS sweeps per fit.")] = 200,
    tol: Annotated[float, typer.Option("--tol", help="Stop when the relative error improves by less than this.")] = 1e-6,
    heldout: Annotated[float, typer.Option("--heldout", help="Fraction of observed entries held out to score each rank.")] = 0.1,
    min_stability: Annotated[float, typer.Option("--min-stability", help="Restart similarity (factor match score) a rank needs to be chosen.")] = 0.8,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Slack on the lowest held-out error, as a fraction of the scan's improvement over its smallest rank (the elbow).")] = 0.1,
    seed: Seed = 0,
) -> None:
    """Non-negative CP decomposition (masked HALS) of the affinity tensor, with rank selection.

    --rank auto fits every rank in --ranks with --restarts initialisations, scores restart
    stability and held-out entry error, and keeps the smallest stable rank whose held-out error
    is within --tolerance of the best. Output: /factors/{pairs,time,animal,weights},
    /components/matrices (R,N,N), /rank_selection/*, /events.

    Example: neurodyn factorize run/affinity.h5 --out run/ntf.h5 --rank auto --ranks 2-10
    """
    from neurodyn.tensor.stage import run

    path = run(
        affinity_file, out, seed=seed, rank=rank, ranks=ranks, restarts=restarts,
        max_iter=max_iter, tol=tol, heldout=heldout, min_stability=min_stability,
        tolerance=tolerance,
    )
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
    """
    from neurodyn.tensor.simulate import write_connectome_simulation

    path = write_connectome_simulation(
        out, n_animals=animals, n_neurons=neurons, n_frames=frames, fs=fs, n_groups=groups,
        missing_fraction=missing, noise=noise, seed=seed,
    )
    done(path, f"{animals} animals, {groups} planted groups")
