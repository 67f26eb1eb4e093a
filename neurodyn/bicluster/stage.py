"""The ``bicluster`` stage: read recordings, fit each one, write ``/<recording id>`` groups."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from neurodyn.bicluster import result
from neurodyn.bicluster.diagnostics import RHAT_LIMIT, unconverged
from neurodyn.bicluster.export import draws_path, export_draws
from neurodyn.bicluster.fit import check_counts, fit
from neurodyn.bicluster.params import BiclusterParams
from neurodyn.errors import InputError
from neurodyn.io.store import atomic_h5, read_recordings
from neurodyn.params import ParamError

STAGE = result.STAGE
log = logging.getLogger("neurodyn.bicluster")


def counts_of(rec: Any, source: str) -> np.ndarray:
    """(N, T) counts of a recording, validated (see :func:`~.fit.check_counts`)."""
    if rec.mask is not None and not np.all(rec.mask):
        raise InputError(source, f"{rec.id}: recordings with missing samples (mask) are not supported")
    return check_counts(np.asarray(rec.data, dtype=float).T, f"{source}: {rec.id}")


def run(input_path: Path, out: Path, params: BiclusterParams | None = None, *, seed: int = 0,
        **kw: Any) -> Path:
    """Fit the bi-clustering model to every recording of ``input_path`` and write ``out``.

    Parameters
    ----------
    input_path : recordings file (``/recordings``), traces = spike counts per bin (T, N).
    out : output HDF5 file; one group per recording (layout: :mod:`neurodyn.bicluster.result`).
    params : BiclusterParams, optional
        The stage parameters (defaults when omitted): every field of
        :class:`~.model.SamplerConfig` and :class:`~.model.Priors`, plus ``chains``, ``jobs``
        (parallel processes, 0 = one per chain), ``recordings`` (ids; default all) and
        ``export_draws`` (path of an ArviZ netCDF file of the draws, see :mod:`.export`).
        Keywords override single fields.
    seed : random seed (chains get independent streams spawned from it).
    """
    p = BiclusterParams.build(params, **kw)
    cfg, pri = p.sampler(), p.priors()
    chains, jobs = p.chains, p.jobs or p.chains
    recs = read_recordings(input_path, list(p.recordings) or None)
    export = p.export_draws
    if export and not Path(export).parent.is_dir():
        raise ParamError("export_draws", f"{export}: its folder does not exist")
    ys = [counts_of(r, str(input_path)) for r in recs]
    full = p.to_dict()
    results = []
    for rec, y in zip(recs, ys):
        res = fit(y, cfg, pri, seed=seed, chains=chains, jobs=jobs, desc=f"bicluster {rec.id}",
                  until=p.until())
        bad = unconverged(res["diagnostics"])
        res["diagnostics"]["unconverged"] = ", ".join(bad)
        if bad:
            log.warning("%s: %s: chains have not mixed (rank-normalised split R-hat > %.2f: %s; "
                        "%d sweeps per chain, run ended by %s); the summaries pool chains that "
                        "disagree: run longer (--until-converged, --iters; add --anneal-every 2 "
                        "if the chains' partitions differ, see chain_final_clusters) before "
                        "reading the estimates", input_path, rec.id, RHAT_LIMIT, "; ".join(bad),
                        res["diagnostics"]["sweeps_per_chain"], res["diagnostics"]["stopped_by"])
        results.append((rec, res))
    if export:
        for rec, res in results:
            attrs = {"recording": rec.id, "seed": seed, "parameters": full, "stage": STAGE,
                     **res["diagnostics"]}
            export_draws(draws_path(Path(export), rec.id, len(results) > 1), res["traces"],
                         cfg.burn_in, attrs)
    with atomic_h5(out, stage=STAGE, params=full, inputs=[input_path], seed=seed) as f:
        result.write(f, (result.fit_tree(rec, res) for rec, res in results))
    return Path(out)
