"""The ``affinity`` stage: recordings.h5 -> affinity.h5."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neurodyn.affinity import result
from neurodyn.affinity.params import AffinityParams
from neurodyn.affinity.tensor import build_affinity_tensor
from neurodyn.io.store import atomic_h5, read_recordings


def run(input_path: Path, out: Path, params: AffinityParams | None = None, *, seed: int = 0,
        **kw: Any) -> Path:
    """Compute windowed pairwise affinities of every recording in ``input_path``.

    Parameters
    ----------
    input_path : Path
        A recordings file (``neurodyn ingest`` / ``neurodyn simulate``), one recording per animal.
    out : Path
        ``affinity.h5`` to write (layout: :mod:`neurodyn.affinity.result`).
    params : AffinityParams, optional
        The stage parameters (defaults when omitted); keywords override single fields,
        e.g. ``run(inp, out, window=10.0)``.
    seed : int
        Recorded only (the stage is deterministic).
    """
    p = AffinityParams.build(params, **kw)
    recs = read_recordings(input_path, ids=list(p.recordings) or None)
    tens = build_affinity_tensor(
        recs, kernel=p.kernel.value, window_s=p.window, step_s=p.step, smooth_s=p.smooth,
        sigma=p.sigma, min_fraction=p.min_fraction, align=p.align.value,
        keep_unlabelled=p.keep_unlabelled, fs=p.fs,
    )
    with atomic_h5(out, stage=result.STAGE, params=p.to_dict(), inputs=[input_path], seed=seed) as f:
        result.write(f, tens, p.kernel.value)
    return Path(out)
