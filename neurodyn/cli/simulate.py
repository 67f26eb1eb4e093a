"""``neurodyn simulate calcium`` (other stages add their own simulators to this group)."""

from __future__ import annotations

import shutil
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


@simulate_app.command("collection")
def simulate_collection_cmd(
    out: Out = Path("celegans_collection.parquet"),
    worms: Annotated[int, typer.Option(min=1, help="Worms in all, split over the source sets in "
                                       "proportion to the published counts (900 ~ the real collection).")] = 900,
    datasets: Annotated[str, typer.Option(help="Comma-separated source sets to draw from "
                                          "(default all 12, e.g. Yemini2021,Venkatachalam2024).")] = "",
    frames: Annotated[str, typer.Option(help="Resampled frames per worm (~3 Hz), MIN-MAX.")] = "1000-3000",
    groups: Annotated[int, typer.Option(min=1, help="Planted functional groups shared across worms.")] = 4,
    group_size: Annotated[int, typer.Option(min=2, help="Labelled neurons per planted group.")] = 8,
    segment: Annotated[float, typer.Option(min=1.0, help="Seconds each group is active before the "
                                           "next takes over (they cycle).")] = 60.0,
    noise: Annotated[float, typer.Option(min=0.0, help="White-noise s.d. relative to a transient "
                                         "(before z-scoring).")] = 0.3,
    seed: Seed = 0,
) -> None:
    """A stand-in for the Homogenized C. elegans collection in its published parquet layout.

    One row per worm x neuron with the published columns (FORMATS.md 1.1), per-source-set
    neuron counts and labelled fractions as published, ~3 Hz, and planted groups of labelled
    neurons that co-activate in turn in every worm. The groups are stored in the parquet schema
    metadata (neurodyn_truth); the file is read by the real reader, written one worm at a time.

    Example: neurodyn simulate collection --worms 100 --out c.parquet && neurodyn ingest c.parquet --out rec.h5
    """
    from neurodyn.io.outputs import atomic_path
    from neurodyn.params import ParamError
    from neurodyn.simulate_collection import write_collection_parquet

    try:
        lo, hi = (int(v) for v in frames.split("-"))
    except ValueError:
        raise ParamError("frames", f"expected MIN-MAX frames, e.g. 1000-3000, got {frames!r}") from None
    names = [d.strip() for d in datasets.split(",") if d.strip()] or None
    with atomic_path(out) as tmp:
        write_collection_parquet(tmp, worms, seed=seed, datasets=names, frames=(lo, hi),
                                 n_groups=groups, group_size=group_size, segment_s=segment,
                                 noise=noise)
    done(Path(out), f"{worms} worms")


@simulate_app.command("eeg-cohort")
def simulate_eeg_cohort_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to create (must not exist).")] = Path("hbn_sim"),
    subjects: Annotated[int, typer.Option(min=1, help="Subjects (the HBN release has 1,574).")] = 20,
    duration: Annotated[float, typer.Option(min=10.0, help="Seconds per recording (HBN: ~300).")] = 60.0,
    fs: Annotated[float, typer.Option(min=50.0, help="Sampling rate (Hz; HBN: 500).")] = 500.0,
    seed: Seed = 0,
) -> None:
    """A stand-in for the HBN resting EEG release: NDAR.../EEG/raw/RestingState.set per subject.

    129-channel EGI layout (E1..E128, Cz), eyes-open/closed markers '20'/'30' every 20/40 s,
    stronger alpha with eyes closed; participants.tsv beside. Read by the HBN EEGLAB reader.

    Example: neurodyn simulate eeg-cohort --subjects 20 --out hbn && neurodyn ingest hbn/NDARSIM00001/EEG/raw/RestingState.set --out r.h5
    """
    from neurodyn.errors import InputError
    from neurodyn.simulate_eeg_cohort import write_cohort

    out = Path(out)
    if out.exists():
        raise InputError(out, "exists; give a new folder for --out")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_cohort(tmp, subjects, fs=fs, duration_s=duration, seed=seed)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done(out, f"{subjects} subjects")
