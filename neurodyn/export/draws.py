"""ArviZ export: each recording's bi-clustering draws as InferenceData netCDF.

Reuses the ``bicluster --export-draws`` writer (:func:`neurodyn.bicluster.export.export_draws`)
on the draws ``bicluster.h5`` keeps: ``posterior`` holds the post-burn-in, thinned draws of the
log-likelihood and the numbers of clusters and states (dims ``chain``, ``draw``);
``warmup_posterior`` the numbers of clusters and states before burn-in ended. Read back with
``arviz.from_netcdf``.
"""

from __future__ import annotations

import json
from pathlib import Path

from neurodyn.bicluster import result as bicluster_result
from neurodyn.bicluster.export import export_draws
from neurodyn.errors import InputError
from neurodyn.export.bundle import Bundle
from neurodyn.io.outputs import check_output


def write(bundle: Bundle, outdir: Path) -> list[Path]:
    items = [it for it in bundle.items if it.bicluster is not None]
    if not items:
        raise InputError(bundle.rundir, "holds no bicluster.h5 result for its recordings; "
                                        "--to arviz exports bi-clustering draws")
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    source = bundle.files["bicluster"]
    fits = bicluster_result.read(source, [it.recording.id for it in items])
    for item in items:
        bc, fit = item.bicluster, fits[item.recording.id]
        params = json.loads(bc.attrs.get("parameters", "{}"))
        attrs = {"recording": item.recording.id, "parameters": params,
                 "seed": bc.attrs.get("seed", -1), "source": str(source), **fit.diagnostics}
        traces = fit.traces
        path = check_output(outdir / f"{item.name}.nc", bundle.inputs)
        written.append(export_draws(path, traces, int(params.get("burn_in", 0)), attrs))
    return written
