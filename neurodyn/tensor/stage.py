"""The ``factorize`` stage: affinity.h5 -> ntf.h5."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurodyn.affinity.events import copy_events
from neurodyn.affinity.tensor import pairs_to_matrix
from neurodyn.errors import InputError
from neurodyn.io.store import atomic_h5, open_h5, put, strings
from neurodyn.tensor.ntf import fit_restarts
from neurodyn.tensor.rank import heldout_error, scan_ranks, stability


def parse_ranks(spec: str | Any) -> list[int]:
    """``"2-8"``, ``"2,3,5"`` or a sequence of ints -> sorted list of ranks >= 1."""
    if not isinstance(spec, str):
        out = [int(r) for r in spec]
    else:
        out = []
        try:
            for part in spec.split(","):
                part = part.strip()
                if "-" in part:
                    lo, hi = (int(v) for v in part.split("-", 1))
                    out.extend(range(lo, hi + 1))
                elif part:
                    out.append(int(part))
        except ValueError:
            raise InputError("--ranks", f"expected e.g. '2-8' or '2,3,5', got {spec!r}") from None
    if not out or min(out) < 1:
        raise InputError("--ranks", f"ranks must be >= 1, got {spec!r}")
    return sorted(set(out))


def _read_affinity(path: Path) -> dict[str, Any]:
    with open_h5(path) as f:
        if f.attrs.get("stage") != "affinity" or "affinity" not in f:
            raise InputError(path, "not an affinity file (run `neurodyn affinity` first)")
        return dict(
            x=f["affinity"][()], mask=f["mask"][()], pairs=f["pairs"][()],
            labels=strings(f["labels"]), windows=f["windows"][()], animals=strings(f["animals"]),
        )


def run(
    input_path: Path,
    out: Path,
    *,
    seed: int = 0,
    rank: str | int = "auto",
    ranks: str = "1-8",
    restarts: int = 5,
    max_iter: int = 200,
    tol: float = 1e-6,
    heldout: float = 0.1,
    min_stability: float = 0.8,
    tolerance: float = 0.1,
) -> Path:
    """Non-negative CP decomposition of an affinity tensor (pairs x windows x animals).

    Parameters
    ----------
    input_path : Path
        ``affinity.h5`` from the affinity stage.
    out : Path
        ``ntf.h5`` to write (stage ``"factorize"``).
    seed : int
        Base seed of the random initialisations and the held-out split.
    rank, ranks, restarts, max_iter, tol, heldout, min_stability, tolerance
        Named like the CLI options: ``rank`` ("auto" or an int), ``ranks`` (candidates for
        auto, e.g. "1-8"), ``restarts`` (initialisations per rank), ``max_iter`` (HALS sweeps),
        ``tol``, ``heldout`` (fraction of observed entries held out), ``min_stability``,
        ``tolerance`` (see :func:`neurodyn.tensor.rank.scan_ranks`).

    Output layout
    -------------
    ``/factors/{pairs (P,R), time (W,R), animal (A,R), weights (R,)}`` (unit-norm columns,
    components by descending weight); ``/components/matrices`` (R, N, N) float32, each the
    pair factor unfolded into a symmetric non-negative matrix with zero diagonal;
    ``/labels``, ``/pairs``, ``/windows``, ``/animals``; ``/rank_selection/{ranks, error,
    stability, heldout_error}``; ``/restarts/{seeds, errors}`` of the chosen rank; ``/events``
    copied from the affinity file; attrs ``rank``, ``loss`` (= ``relative_error``), ``stability``.
    """
    p = dict(rank=rank, ranks=ranks, restarts=restarts, max_iter=max_iter, tol=tol,
             heldout=heldout, min_stability=min_stability, tolerance=tolerance)
    d = _read_affinity(input_path)
    x, mask = d["x"], d["mask"]
    if not mask.any():
        raise InputError(input_path, "the affinity tensor has no observed entry")
    kw = dict(n_iter_max=int(p["max_iter"]), tol=float(p["tol"]))
    if str(p["rank"]).lower() == "auto":
        ranks = parse_ranks(p["ranks"])
        scan = scan_ranks(
            x, mask, ranks, n_restarts=int(p["restarts"]), seed=seed,
            heldout_fraction=float(p["heldout"]), min_stability=float(p["min_stability"]),
            tolerance=float(p["tolerance"]), **kw,
        )
        rank = scan.chosen
        fits = scan.fits[rank]
        curves = dict(ranks=scan.ranks, error=scan.error, stability=scan.stability,
                      heldout_error=scan.heldout_error)
    else:
        try:
            rank = int(p["rank"])
        except ValueError:
            raise InputError("--rank", f"expected 'auto' or an integer, got {p['rank']!r}") from None
        if rank < 1:
            raise InputError("--rank", f"rank must be >= 1, got {rank}")
        fits = fit_restarts(x, rank, mask, n_restarts=int(p["restarts"]), seed=seed + rank, **kw)
        held = heldout_error(x, mask, rank, fraction=float(p["heldout"]),
                             seed=seed + 1000 + rank, **kw)
        curves = dict(ranks=np.array([rank]), error=np.array([fits[0].relative_error]),
                      stability=np.array([stability(fits)]), heldout_error=np.array([held]))
    best = fits[0]
    n = len(d["labels"])
    mats = np.stack([pairs_to_matrix(best.factors[0][:, r], d["pairs"], n) for r in range(rank)])
    with atomic_h5(out, stage="factorize", params=p, inputs=[input_path], seed=seed) as f:
        g = f.create_group("factors")
        for name, arr in zip(("pairs", "time", "animal"), best.factors, strict=True):
            put(g, name, arr)
        put(g, "weights", best.weights)
        put(f.create_group("components"), "matrices", mats.astype(np.float32))
        put(f, "labels", np.array(d["labels"], dtype=object))
        put(f, "pairs", d["pairs"])
        put(f, "windows", d["windows"])
        put(f, "animals", np.array(d["animals"], dtype=object))
        rs = f.create_group("rank_selection")
        for k, v in curves.items():
            put(rs, k, v)
        rs.attrs["chosen"] = rank
        rg = f.create_group("restarts")
        put(rg, "seeds", np.array([r.seed for r in fits], dtype=np.int64))
        put(rg, "errors", np.array([r.relative_error for r in fits]))
        put(rg, "n_iter", np.array([r.n_iter for r in fits], dtype=np.int64))
        with open_h5(input_path) as src:
            copy_events(src, f)
        f.attrs.update(rank=rank, loss=best.relative_error, relative_error=best.relative_error,
                       stability=stability(fits), best_seed=best.seed)
    return Path(out)
