"""The ``factorize`` stage: affinity.h5 -> ntf.h5."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from neurodyn.affinity import result as affinity_result
from neurodyn.affinity.tensor import pairs_to_matrix
from neurodyn.errors import InputError
from neurodyn.guard import check_alloc
from neurodyn.io.store import atomic_h5
from neurodyn.params import ParamError
from neurodyn.selection import emit
from neurodyn.tensor import result
from neurodyn.tensor.ntf import fit_restarts
from neurodyn.tensor.params import FactorizeParams, parse_ranks
from neurodyn.tensor.rank import (
    extend_fit,
    rank_heldout,
    rank_selection,
    scan_ranks,
    scan_subset,
    stability,
)

__all__ = ["parse_ranks", "run"]

log = logging.getLogger(__name__)


def run(input_path: Path, out: Path, params: FactorizeParams | None = None, *, seed: int = 0,
        **kw: Any) -> Path:
    """Non-negative CP decomposition of an affinity tensor (pairs x windows x animals).

    Parameters
    ----------
    input_path : Path
        ``affinity.h5`` from the affinity stage.
    out : Path
        ``ntf.h5`` to write (layout: :mod:`neurodyn.tensor.result`).
    params : FactorizeParams, optional
        The stage parameters (defaults when omitted); keywords override single fields.
    seed : int
        Base seed of the random initialisations and the held-out split.
    """
    p = FactorizeParams.build(params, **kw)
    aff = affinity_result.read(input_path)
    x, mask = aff.observed, None  # observed blocks: memory and time ~ observed entries
    if x.nnz == 0:
        raise InputError(input_path, "the affinity tensor has no observed entry")
    fit_kw = dict(n_iter_max=p.max_iter, tol=p.tol)
    n = len(aff.labels)
    top = max(parse_ranks(p.ranks)) if p.rank == "auto" else int(p.rank)
    check_alloc((top, n, n), np.float64, f"the {top} component matrices", param="rank")
    if p.solver != "hals" and p.rank == "auto":
        raise ParamError("solver", f"{p.solver} needs a fixed --rank: rank selection scores "
                                   "held-out entries, which only the default solver can skip")
    if p.rank == "auto":
        subset = scan_subset(x.shape[2], p.scan_animals, seed + 2000)
        scan = scan_ranks(
            x if subset is None else x.animals_subset(subset), mask, parse_ranks(p.ranks),
            n_restarts=p.restarts, seed=seed, heldout_fraction=p.heldout,
            heldout_starts=p.heldout_starts,
            min_stability=p.min_stability, tolerance=p.slack, jobs=p.jobs, **fit_kw,
        )
        rank = scan.chosen
        selection = scan.selection
        fits = scan.fits[rank]
        stab = stability(fits)
        curves = dict(ranks=scan.ranks, error=scan.error, stability=scan.stability,
                      heldout_error=scan.heldout_error)
        if subset is not None:
            log.info("rank %d chosen on %d of %d animals; fitting it on all", rank,
                     len(subset), x.shape[2])
            fits = [extend_fit(x, fits[0], **fit_kw)]
            curves["scan_animals"] = subset
            selection.reason += (f"; ranks scanned on {len(subset)} of {x.shape[2]} animals "
                                 "(--scan-animals), the chosen rank then fitted on all")
    else:
        rank = int(p.rank)
        fits = fit_restarts(x, rank, mask, n_restarts=p.restarts, seed=seed + rank, jobs=p.jobs,
                            solver=p.solver, **fit_kw)
        stab = stability(fits)
        held = rank_heldout(x, mask, rank, seed, fraction=p.heldout, starts=p.heldout_starts,
                            **fit_kw)
        curves = dict(ranks=np.array([rank]), error=np.array([fits[0].relative_error]),
                      stability=np.array([stab]), heldout_error=np.array([held.error]))
        selection = rank_selection(np.array([rank]), [held], np.array([stab]), rank,
                                   p.min_stability, p.slack)
        selection.reason = "fixed by --rank"
    emit(selection, str(input_path))
    best = fits[0]
    mats = np.stack([pairs_to_matrix(best.factors[0][:, r], aff.pairs, n) for r in range(rank)])
    res = result.NTFResult(
        factors=dict(zip(("pairs", "time", "animal"), best.factors, strict=True), weights=best.weights),
        matrices=mats, labels=aff.labels, pairs=aff.pairs, windows=aff.windows, animals=aff.animals,
        rank_selection=curves,
        restarts=dict(seeds=np.array([r.seed for r in fits], dtype=np.int64),
                      errors=np.array([r.relative_error for r in fits]),
                      n_iter=np.array([r.n_iter for r in fits], dtype=np.int64)),
        rank=rank, relative_error=best.relative_error, stability=stab,
        best_seed=best.seed, events=aff.events, model_selection=selection.tree(),
    )
    with atomic_h5(out, stage=result.STAGE, params=p.to_dict(), inputs=[input_path], seed=seed) as f:
        result.write(f, res)
    return Path(out)
