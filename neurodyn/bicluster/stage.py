"""The ``bicluster`` stage: read recordings, fit each one, write ``/<recording id>`` groups."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from neurodyn.bicluster.diagnostics import RHAT_LIMIT, unconverged
from neurodyn.bicluster.export import draws_path, export_draws
from neurodyn.bicluster.fit import check_counts, fit
from neurodyn.bicluster.model import all_params, split_params
from neurodyn.errors import InputError

STAGE = "bicluster"
log = logging.getLogger("neurodyn.bicluster")


def counts_of(rec: Any, source: str) -> np.ndarray:
    """(N, T) counts of a recording, validated (see :func:`~.fit.check_counts`)."""
    if rec.mask is not None and not np.all(rec.mask):
        raise InputError(source, f"{rec.id}: recordings with missing samples (mask) are not supported")
    return check_counts(np.asarray(rec.data, dtype=float).T, f"{source}: {rec.id}")


def run(input_path: Path, out: Path, *, seed: int = 0, **params: Any) -> Path:
    """Fit the bi-clustering model to every recording of ``input_path`` and write ``out``.

    Parameters
    ----------
    input_path : recordings file (``/recordings``), traces = spike counts per bin (T, N).
    out : output HDF5 file; one group per recording (id with ``/`` replaced by ``|``).
    seed : random seed (chains get independent streams spawned from it).
    **params : any field of :class:`~.model.SamplerConfig` or :class:`~.model.Priors`, plus
        ``chains`` (default 2), ``jobs`` (parallel processes, default = chains),
        ``recordings`` (list of ids; default all) and ``export_draws`` (path of an ArviZ
        netCDF file of the draws, see :mod:`.export`; default none).
    """
    from neurodyn.io.store import atomic_h5, read_recordings, write_tree

    chains = int(params.pop("chains", 2))
    jobs = int(params.pop("jobs", chains))
    ids = params.pop("recordings", None)
    export = params.pop("export_draws", None)
    if chains < 1:
        raise InputError("--chains", "must be >= 1")
    cfg, pri, rest = split_params(params)
    if rest:
        raise InputError(None, f"unknown bicluster parameters: {sorted(rest)}")
    cfg.validate()
    if export and not Path(export).parent.is_dir():
        raise InputError("--export-draws", f"{export}: its folder does not exist")
    recs = read_recordings(input_path, ids)
    ys = [counts_of(r, str(input_path)) for r in recs]
    full = {**all_params(cfg, pri), "chains": chains, "jobs": jobs, "recordings": ids}
    results = []
    for rec, y in zip(recs, ys):
        res = fit(y, cfg, pri, seed=seed, chains=chains, jobs=jobs, desc=f"bicluster {rec.id}")
        bad = unconverged(res["diagnostics"])
        res["diagnostics"]["unconverged"] = ", ".join(bad)
        if bad:
            log.warning("%s: %s: chains have not mixed (rank-normalised split R-hat > %.2f: %s); "
                        "the summaries pool "
                        "them: run longer chains (--iters), with --anneal-every 2 if their partitions "
                        "differ (chain_final_clusters), before reading the estimates",
                        input_path, rec.id, RHAT_LIMIT, "; ".join(bad))
        results.append((rec, res))
    if export:
        for rec, res in results:
            attrs = {"recording": rec.id, "seed": seed, "parameters": full, "stage": STAGE,
                     **res["diagnostics"]}
            export_draws(draws_path(Path(export), rec.id, len(results) > 1), res["traces"],
                         cfg.burn_in, attrs)
    with atomic_h5(out, stage=STAGE, params=full, inputs=[input_path], seed=seed) as f:
        for rec, res in results:
            g = f.create_group(rec.id.replace("/", "|"))
            g.attrs["id"] = rec.id
            g.attrs["fs"] = float(rec.fs)
            g.attrs["n_samples"] = res["n_samples"]
            tree = dict(res)
            tree["labels"] = np.array(rec.labels, dtype=object)
            tree["time"] = rec.times
            ev = rec.events
            tree["events"] = {"onset": ev["onset"].to_numpy(float), "offset": ev["offset"].to_numpy(float),
                              "label": np.array([str(x) for x in ev["label"]], dtype=object)}
            tree.pop("n_samples")
            write_tree(g, tree)
    return Path(out)
