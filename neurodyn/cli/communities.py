"""``neurodyn communities``: weighted community detection on NTF components."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import STATE, Out, Seed, app, done
from neurodyn.cli.options import stage_command
from neurodyn.community.params import CommunitiesParams
from neurodyn.io.outputs import check_output


@app.command()
@stage_command(CommunitiesParams)
def communities(
    ntf_file: Annotated[Path, typer.Argument(metavar="NTF", help="ntf.h5 from `neurodyn factorize`.")],
    out: Out = Path("run/communities.h5"),
    figures: Annotated[Path | None, typer.Option("--figures", help="Also draw the figures into this folder.")] = None,
    seed: Seed = 0,
    *,
    params: CommunitiesParams,
) -> None:
    """Communities of neurons in each NTF component's affinity pattern.

    The default model is a nested stochastic block model whose edge weights are exponential
    per block pair (as in Dyballa et al. 2024, who used graph-tool) or log-normal per block
    pair after removing node factors (--weights lognormal), or after removing two factors per
    node, one for its edges inside its community and one for the others (--weights split:
    weights set by internal and external node strengths, as in weighted LFR graphs); auto
    fits all three and keeps the shortest description. The number of communities at every
    level is inferred by minimising the description length, with and without degree
    correction. The search starts from single neurons and from Leiden partitions at several
    resolutions, and keeps the shortest description.

    Description length: the number of nats (natural-log units; 1 nat = 1.4427 bits) needed to
    encode the weighted graph with the fitted model: partition, block edge counts (nested),
    edges, degrees (degree-corrected code) and weights. Positive, as graph-tool's entropy();
    shorter = better; only differences between fits of the same component mean anything: a
    difference of D nats is posterior odds of e^D between the two fits. The output records
    it per component in nats and bits, with each variant's value.

    Output: /component_<r>/{membership, block_matrix, levels/<l>/membership} with attrs
    description_length (nats), description_length_bits, degree_corrected, n_blocks; /labels;
    /overview.

    Example: neurodyn communities run/ntf.h5 --out run/communities.h5 --components top-3
    """
    check_output(out, [ntf_file])
    if figures is not None:
        check_output(figures, [ntf_file], option="--figures", directory=True)

    from neurodyn.community.stage import run, summary

    path = run(ntf_file, out, params, seed=seed)
    done(path)
    if STATE["verbose"] >= 0:
        for line in summary(path):
            typer.echo(line)
    if figures is not None:
        from neurodyn.plots.communities import draw

        for p in draw(path, figures):
            done(p)
