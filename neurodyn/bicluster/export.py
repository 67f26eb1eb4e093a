"""Export of the sampler's draws to an ArviZ ``InferenceData`` netCDF file (``--export-draws``).

Groups: ``posterior`` holds the post-burn-in, thinned draws of the scalar summaries that the
diagnostics use (``loglik``, ``n_clusters``, ``n_states``; dims ``chain``, ``draw``);
``warmup_posterior`` the numbers of clusters and states of every sweep before burn-in ended.
Attributes record the recording id, the parameters and the seed. Read it back with
``arviz.from_netcdf(path)``, e.g. for ``arviz.summary`` or ``arviz.plot_trace``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neurodyn.bicluster.result import TRACE_NAMES
from neurodyn.io.outputs import atomic_path

DRAW_NAMES = TRACE_NAMES  # the kept-draw traces of bicluster.h5 (traces/<name>)


def draws_path(path: Path, rec_id: str, several: bool) -> Path:
    """The export file of one recording: ``path`` itself, or ``<stem>_<id>.nc`` when the input
    holds several recordings."""
    if not several:
        return path
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in rec_id)
    return path.with_name(f"{path.stem}_{safe}{path.suffix or '.nc'}")


def export_draws(path: Path, traces: dict, burn_in: int, attrs: dict[str, Any]) -> Path:
    """Write the draws of one fit (``traces`` from :func:`~.fit.summarize`) to ``path``
    (written under a temporary name, then renamed).

    ArviZ is imported here only: it is slow to import and nothing else needs it.
    """
    import arviz as az

    posterior = {k: traces[k] for k in DRAW_NAMES}
    warmup = {k: traces[f"{k}_all"][:, :burn_in] for k in ("n_clusters", "n_states")}
    idata = az.from_dict(posterior=posterior, warmup_posterior=warmup, save_warmup=True)
    flat = {k: v if isinstance(v, (int, float, str)) else json.dumps(v, default=str)
            for k, v in attrs.items()}
    for group in idata.groups():
        idata[group].attrs.update(flat)
    path = Path(path)
    with atomic_path(path, option="--export-draws") as tmp:
        idata.to_netcdf(str(tmp), engine="h5netcdf")
    return path
