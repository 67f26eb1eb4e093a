"""``neurodyn bicluster`` and ``neurodyn simulate bicluster``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.bicluster.params import BiclusterParams
from neurodyn.cli._app import Out, Seed, app, done, simulate_app
from neurodyn.cli.options import stage_command
from neurodyn.errors import InputError
from neurodyn.io.outputs import check_output


@app.command("bicluster")
@stage_command(BiclusterParams)
def bicluster_cmd(
    input: Annotated[Path, typer.Argument(metavar="RECORDINGS", help="Recordings file whose traces are spike counts per bin.")],
    out: Out = Path("run/bicluster.h5"),
    seed: Seed = 0,
    *,
    params: BiclusterParams,
) -> None:
    """Bayesian bi-clustering of spike counts: neuron clusters sharing latent trajectories and
    time bins sharing linear dynamics, numbers of both inferred (MCMC).

    Prior hyper-parameters (var_d, r_shape, hdp_alpha, ...) are set in a pipeline file; see
    neurodyn.bicluster.model.Priors.

    Example: neurodyn bicluster run/recordings.h5 --out run/bicluster.h5 --iters 4000 --chains 4
    """
    check_output(out, [input])
    if params.export_draws is not None:
        export = Path(params.export_draws)
        check_output(export, [input, out], option="--export-draws")
        if export.absolute() == out.absolute():
            raise InputError(export, "--export-draws and --out name the same file")

    from neurodyn.bicluster.stage import run

    path = run(input, out, params, seed=seed)
    done(path, f"{params.chains} chain(s) x "
               + (f"up to {params.iters} sweeps (--until-converged; diagnostics/@stopped_by)"
                  if params.until_converged else f"{params.iters} sweeps"))


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

    Ground truth (clusters, states, latents, coefficients, dynamics) goes to /ground_truth.

    Example: neurodyn simulate bicluster --out sim.h5 && neurodyn bicluster sim.h5 --iters 500
    """
    check_output(out)

    from neurodyn.bicluster.simulate import simulate_bicluster
    from neurodyn.io.store import write_recordings

    params = dict(n_neurons=neurons, n_clusters=clusters, n_bins=bins, latent_dim=latent_dim,
                  dispersion=dispersion, segment=segment, seed=seed)
    rec, truth = simulate_bicluster(**params)
    path = write_recordings(out, [rec], params=params, seed=seed, stage="simulate-bicluster",
                            extra={"ground_truth": truth})
    done(path, f"{neurons} neurons x {bins} bins")
