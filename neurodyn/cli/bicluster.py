"""``neurodyn bicluster`` and ``neurodyn simulate bicluster``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import Out, Seed, app, done, simulate_app
from neurodyn.errors import InputError
from neurodyn.io.outputs import check_output


@app.command("bicluster")
def bicluster_cmd(
    recordings: Annotated[Path, typer.Argument(help="Recordings file whose traces are spike counts per bin.")],
    out: Out = Path("run/bicluster.h5"),
    iters: Annotated[int, typer.Option(min=1, help="MCMC sweeps per chain.")] = 2000,
    burn_in: Annotated[int, typer.Option(min=0, help="Sweeps discarded before summarising.")] = 500,
    thin: Annotated[int, typer.Option(min=1, help="Keep every n-th post-burn-in sweep.")] = 5,
    chains: Annotated[int, typer.Option(min=1, help="Independent chains (R-hat/ESS need >= 2).")] = 2,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Parallel processes for chains (default: one per chain).")] = 0,
    latent_dim: Annotated[int, typer.Option(min=1, help="Latent dimension p per cluster.")] = 2,
    likelihood: Annotated[str, typer.Option(help="nb (negative binomial) or poisson.")] = "nb",
    max_states: Annotated[int, typer.Option(min=1, help="Weak-limit truncation of the HDP-HMM.")] = 10,
    kappa: Annotated[float, typer.Option(min=0.0, help="Stickiness of the HDP-HMM.")] = 50.0,
    cluster_prior: Annotated[str, typer.Option(help="mfm (geometric prior on #clusters) or dp.")] = "mfm",
    split_merge: Annotated[int, typer.Option(min=0, help="Split-merge proposals per sweep (0: off).")] = 5,
    anneal_every: Annotated[int, typer.Option(
        min=0, help="One annealed split-merge proposal every N sweeps (0: off). It merges clusters "
        "that the one-step moves cannot (each a piece of one true cluster, e.g. from --init "
        "separate or when chains end in different partitions), at a cost of about rungs x 10 "
        "FFBS passes over the two clusters per proposal (~1-3 s on 30 neurons x 500 bins).")] = 0,
    anneal_rungs: Annotated[int, typer.Option(
        min=2, help="Rungs of the annealed move's ladder: more rungs, higher acceptance of good "
        "merges (the move is exact for any number).")] = 200,
    init: Annotated[str, typer.Option(help="Starting partition: factor (varimax factor loadings), one (all together), separate (every neuron alone: chains from it stall in many small clusters unless --anneal-every is on; use it to check convergence) or random.")] = "factor",
    loss: Annotated[str, typer.Option(help="Point-estimate loss: binder or vi.")] = "binder",
    max_similarity_bins: Annotated[int, typer.Option(
        min=2, help="Longer recordings get the time-bin similarity matrix (and the state point "
        "estimate) on a block-downsampled grid of at most this many bins (memory ~ 4 B x n^2).")] = 2000,
    export_draws: Annotated[Path | None, typer.Option(
        help="Also write the draws (log-likelihood, numbers of clusters and states per chain and "
        "draw) to this ArviZ InferenceData netCDF file, for arviz.summary / plot_trace; several "
        "recordings get <name>_<id>.nc.")] = None,
    seed: Seed = 0,
) -> None:
    """Bayesian bi-clustering of spike counts: neuron clusters sharing latent trajectories and
    time bins sharing linear dynamics, numbers of both inferred (MCMC)."""
    check_output(out, [recordings])
    if export_draws is not None:
        check_output(export_draws, [recordings, out], option="--export-draws")
        if export_draws.absolute() == out.absolute():
            raise InputError(export_draws, "--export-draws and --out name the same file")

    from neurodyn.bicluster.stage import run

    if cluster_prior not in ("mfm", "dp"):
        raise InputError("--cluster-prior", f"must be mfm or dp, got {cluster_prior!r}")
    path = run(recordings, out, seed=seed, iters=iters, burn_in=burn_in, thin=thin, chains=chains,
               jobs=jobs or chains, latent_dim=latent_dim, likelihood=likelihood,
               max_states=max_states, kappa=kappa, cluster_prior=cluster_prior,
               split_merge=split_merge, anneal_every=anneal_every, anneal_rungs=anneal_rungs,
               init=init, loss=loss,
               max_similarity_bins=max_similarity_bins, export_draws=export_draws)
    done(path, f"{chains} chain(s) x {iters} sweeps")


@simulate_app.command("bicluster")
def simulate_bicluster_cmd(
    out: Out = Path("sim_bicluster.h5"),
    neurons: Annotated[int, typer.Option(min=2, help="Number of neurons.")] = 30,
    clusters: Annotated[int, typer.Option(min=1, help="Neuron clusters (equal sizes).")] = 3,
    bins: Annotated[int, typer.Option(min=10, help="Time bins.")] = 500,
    latent_dim: Annotated[int, typer.Option(min=1, help="Latent dimension p per cluster.")] = 2,
    dispersion: Annotated[float, typer.Option(min=0.1, help="Negative-binomial r.")] = 10.0,
    segment: Annotated[int, typer.Option(min=2, help="Bins per state segment.")] = 100,
    seed: Seed = 0,
) -> None:
    """Spike counts from the bi-clustering model (default: the published simulation setting).

    Ground truth (clusters, states, latents, coefficients, dynamics) goes to /ground_truth."""
    check_output(out)

    from neurodyn.bicluster.simulate import simulate_bicluster
    from neurodyn.io.store import write_recordings

    params = dict(n_neurons=neurons, n_clusters=clusters, n_bins=bins, latent_dim=latent_dim,
                  dispersion=dispersion, segment=segment, seed=seed)
    rec, truth = simulate_bicluster(**params)
    path = write_recordings(out, [rec], params=params, seed=seed, stage="simulate-bicluster",
                            extra={"ground_truth": truth})
    done(path, f"{neurons} neurons x {bins} bins")
