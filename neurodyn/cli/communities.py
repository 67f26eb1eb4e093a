"""``neurodyn communities``: weighted community detection on NTF components."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import Out, Seed, app, done
from neurodyn.io.outputs import check_output


@app.command()
def communities(
    ntf_file: Annotated[Path, typer.Argument(metavar="NTF", help="ntf.h5 from `neurodyn factorize`.")],
    out: Out = Path("run/communities.h5"),
    method: Annotated[str, typer.Option("--method", help="sbm: nested weighted SBM (exponential weights), minimum description length; leiden: Leiden baseline (leidenalg).")] = "sbm",
    components: Annotated[str, typer.Option("--components", help="Components to analyse: all, top-K (the K heaviest) or a list such as 0,2,5.")] = "all",
    degree_corrected: Annotated[str, typer.Option("--degree-corrected", help="sbm: auto fits both variants and keeps the shorter description length; yes; no.")] = "auto",
    dense: Annotated[str, typer.Option("--dense", help="sbm: edge code of the non-degree-corrected variant: yes = simple graph (binomial per block pair; short for dense affinity patterns), no = multigraph (graph-tool's default), auto = both, keep the shorter.")] = "auto",
    n_init: Annotated[int, typer.Option("--n-init", min=1, help="sbm: independent searches per variant (best kept).")] = 3,
    threshold: Annotated[float, typer.Option("--threshold", help="Affinities at or below this are treated as absent edges.")] = 0.0,
    objective: Annotated[str, typer.Option("--objective", help="leiden: modularity (weighted, RB configuration) or cpm.")] = "modularity",
    resolution: Annotated[float, typer.Option("--resolution", help="leiden: resolution parameter.")] = 1.0,
    figures: Annotated[Path | None, typer.Option("--figures", help="Also draw the figures into this folder.")] = None,
    seed: Seed = 0,
) -> None:
    """Communities of neurons in each NTF component's affinity pattern.

    The default model is a nested stochastic block model whose edge weights are exponential
    per block pair (as in Dyballa et al. 2024, who used graph-tool); the number of communities
    at every level is inferred by minimising the description length, with and without degree
    correction. Output: /component_<r>/{membership, block_matrix, levels/<l>/membership} with
    attrs description_length (nats), degree_corrected, n_blocks; /labels; /overview.

    Example: neurodyn communities run/ntf.h5 --out run/communities.h5 --components top-3
    """
    check_output(out, [ntf_file])
    if figures is not None:
        check_output(figures, [ntf_file], option="--figures", directory=True)

    from neurodyn.community.stage import run

    path = run(
        ntf_file, out, seed=seed, method=method, components=components,
        degree_corrected=degree_corrected, dense=dense, n_init=n_init, threshold=threshold,
        objective=objective, resolution=resolution,
    )
    done(path)
    if figures is not None:
        from neurodyn.plots.communities import draw

        for p in draw(path, figures):
            done(p)
