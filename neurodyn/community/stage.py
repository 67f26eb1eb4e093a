"""Pipeline stage ``communities``: weighted SBM (or Leiden) on each NTF component's affinity pattern.

Input: an NTF output (``neurodyn factorize``) with ``/components/matrices`` (R, N, N) and
``/labels`` (N,). Output: ``run/communities.h5``, layout in :mod:`neurodyn.community.result`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurodyn.community import result
from neurodyn.community.leiden import leiden
from neurodyn.community.nested import (
    block_matrix,
    describe_partition,
    fit_wsbm,
    model_variants,
    topology_key,
    weight_code_of,
    weight_codes,
)
from neurodyn.community.params import CommunitiesParams, parse_components
from neurodyn.errors import InputError
from neurodyn.io.store import atomic_h5
from neurodyn.params import ParamError
from neurodyn.progress import progress
from neurodyn.tensor import result as ntf_result


def select_components(spec: str, n_components: int) -> list[int]:
    """Indices for ``all``, ``top-K`` (the K first, i.e. heaviest, components) or ``0,2,5``."""
    try:
        sel = parse_components(spec)
    except ValueError as exc:
        raise ParamError("components", str(exc)) from None
    if sel is None:
        return list(range(n_components))
    if isinstance(sel, int):
        return list(range(min(sel, n_components)))
    bad = [i for i in sel if not 0 <= i < n_components]
    if bad:
        raise ParamError("components", f"indices {bad} out of range 0..{n_components - 1} "
                         f"(the factorization has {n_components} components)")
    return sel


def _parse_dc(value: Any) -> bool | str:
    v = str(value).strip().lower()
    if v == "auto":
        return "auto"
    if v in ("yes", "true", "1"):
        return True
    if v in ("no", "false", "0"):
        return False
    raise ValueError(f"expected auto, yes or no; got {value!r}")


def read_components(path: Path) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """``(matrices (R, N, N), labels (N,), time loadings (W, R) or None)`` from an NTF file."""
    ntf = ntf_result.read(path)
    mats = np.asarray(ntf.matrices, dtype=np.float64)
    if mats.ndim != 3 or mats.shape[1] != mats.shape[2]:
        raise InputError(path, f"/components/matrices must be (R, N, N), got shape {mats.shape}")
    n = mats.shape[1]
    labels = list(ntf.labels)
    if len(labels) != n:
        raise InputError(path, f"/labels has {len(labels)} names for {n} neurons")
    time = ntf.factors.get("time")
    if time is not None:
        time = np.asarray(time, dtype=np.float64)
        if time.ndim != 2 or time.shape[1] != mats.shape[0]:
            time = None
    if not np.all(np.isfinite(mats)):
        raise InputError(path, "/components/matrices contains NaN or infinity")
    if np.any(mats < 0):
        raise InputError(path, "/components/matrices has negative entries (affinities must be >= 0)")
    return mats, labels, time


def communities_of(W: np.ndarray, p: dict[str, Any], seed: int):
    """Fit one component's matrix; returns a :class:`NestedSBM` (Leiden partitions are wrapped)."""
    W = 0.5 * (W + W.T)
    np.fill_diagonal(W, 0.0)
    dc = _parse_dc(p["degree_corrected"])
    dense = _parse_dc(p["dense"])
    b = leiden(W, objective=p["objective"], resolution=float(p["resolution"]), seed=seed)
    if p["method"] == "sbm":
        res = fit_wsbm(W, degree_corrected=dc, dense=dense, n_init=int(p["restarts"]), seed=seed,
                       threshold=float(p["threshold"]), weights=str(p["weights"]))  # fmt: skip
        # the Leiden partition under the chosen code: how much shorter the SBM's description is
        ref = describe_partition(W, b, degree_corrected=res.degree_corrected,
                                 dense=topology_key(res.ensemble) != "ndc",
                                 threshold=float(p["threshold"]),
                                 weights=weight_code_of(res.ensemble))  # fmt: skip
        res.candidates["leiden"] = ref.description_length
        return res
    codes = model_variants(dc, dense)
    fits = [describe_partition(W, b, degree_corrected=c, dense=d, threshold=float(p["threshold"]),
                               weights=w)
            for c, d in codes for w in weight_codes(str(p["weights"]))]  # fmt: skip
    best = min(fits, key=lambda x: x.description_length)
    best.candidates = {k: v for x in fits for k, v in x.candidates.items()}
    return best


def overview(results: dict[int, Any], blocks: dict[int, np.ndarray], time: np.ndarray):
    """Activity of each (component, community) over windows: within-community mean affinity
    times the component's temporal loading. Returns ``activity (K, W)``, ``component (K,)``,
    ``community (K,)``."""
    rows, comp, comm = [], [], []
    for r, bm in blocks.items():
        for c in range(bm.shape[0]):
            rows.append(bm[c, c] * time[:, r])
            comp.append(r)
            comm.append(c)
    return np.array(rows).reshape(len(rows), time.shape[0]), np.array(comp), np.array(comm)


def run(input_path: Path, out: Path, params: CommunitiesParams | None = None, *, seed: int = 0,
        **kw: Any) -> Path:
    """Community detection on the components of an NTF output; writes ``out``.

    Parameters
    ----------
    input_path : Path
        ``neurodyn factorize`` output.
    out : Path
        Output HDF5 file.
    params : CommunitiesParams, optional
        The stage parameters (defaults when omitted); keywords override single fields.
    seed : int
        Random seed (component r uses ``seed + r``).
    """
    p = CommunitiesParams.build(params, **kw).to_dict()
    input_path, out = Path(input_path), Path(out)
    mats, labels, time = read_components(input_path)
    comps = select_components(p["components"], mats.shape[0])
    results, blocks = {}, {}
    for r in progress(comps, desc="communities"):
        res = communities_of(mats[r].copy(), p, seed + r)
        results[r] = res
        blocks[r] = block_matrix(mats[r], res.membership)
    comps_out = {
        r: result.ComponentCommunities(
            membership=results[r].membership.astype(np.int64), block_matrix=blocks[r],
            levels=list(results[r].level_memberships()),
            attrs=dict(
                description_length=float(results[r].description_length),
                description_length_bits=float(results[r].description_length / np.log(2.0)),
                degree_corrected=bool(results[r].degree_corrected),
                n_blocks=int(results[r].n_blocks), method=p["method"],
                ensemble=results[r].ensemble,
                **{f"description_length_{k}": float(v) for k, v in results[r].candidates.items()},
            ),
        )
        for r in comps
    }
    ov = None
    if time is not None:
        act, comp, comm = overview(results, blocks, time)
        ov = {"activity": act, "component": comp, "community": comm}
    with atomic_h5(out, stage=result.STAGE, params=p, inputs=[input_path], seed=seed) as f:
        result.write(f, result.CommunitiesResult(labels, comps_out, ov))
    return out


def summary(path: Path) -> list[str]:
    """One line per component of a communities output: blocks, levels, code, description length."""
    lines = []
    for r, c in result.read(path).components.items():
        a = c.attrs
        others = {k[len("description_length_"):]: float(v) for k, v in a.items()
                  if k.startswith("description_length_") and k != "description_length_bits"}
        rest = ", ".join(f"{k} +{v - a['description_length']:.1f}" for k, v in others.items()
                         if k != a["ensemble"])
        lines.append(
            f"component {r}: {a['n_blocks']} communities, {len(c.levels)} levels, "
            f"code {a['ensemble']}, description length {a['description_length']:.1f} nats "
            f"({a['description_length_bits']:.1f} bits)" + (f"; {rest} nats" if rest else "")
        )
    return lines
