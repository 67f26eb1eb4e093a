"""Parameters of the ``communities`` stage (one definition for the CLI, pipelines and provenance)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from neurodyn.params import Choice, StageParams, param


class Method(Choice):
    sbm = "sbm"
    leiden = "leiden"


class Auto(Choice):
    """A yes/no choice that can also be decided by description length."""

    auto = "auto"
    yes = "yes"
    no = "no"


class WeightCode(Choice):
    auto = "auto"
    exponential = "exponential"
    lognormal = "lognormal"
    split = "split"


class Objective(Choice):
    modularity = "modularity"
    cpm = "cpm"


def parse_components(spec: str) -> int | list[int] | None:
    """``all`` -> None; ``top-K`` -> K; ``0,2,5`` -> [0, 2, 5]; ``ValueError`` in plain words."""
    s = str(spec).strip().lower()
    if s == "all":
        return None
    m = re.fullmatch(r"top-?(\d+)", s)
    if m:
        if int(m.group(1)) < 1:
            raise ValueError("top-K needs K >= 1")
        return int(m.group(1))
    try:
        idx = [int(x) for x in s.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise ValueError(f"expected all, top-K or a list like 0,2,5; got {spec!r}") from None
    if not idx:
        raise ValueError("empty component list")
    return sorted(set(idx))


def _components(spec: str) -> str:
    if not isinstance(spec, str):
        raise ValueError(f"expected all, top-K or a list like 0,2,5; got {spec!r}")
    parse_components(spec)
    return spec.strip().lower()


@dataclass(frozen=True)
class CommunitiesParams(StageParams):
    """Communities of neurons in each NTF component's affinity pattern."""

    stage = "communities"

    method: Method = param(Method.sbm, "sbm: nested weighted SBM, minimum description length; "
                           "leiden: Leiden baseline (leidenalg).")
    components: str = param("all", "Components to analyse: all, top-K (the K heaviest) or a list "
                            "such as 0,2,5.", check=_components, metavar="all|top-K|LIST")
    degree_corrected: Auto = param(Auto.auto, "sbm: auto fits both variants (degree-corrected, "
                                   "and not) and keeps the shorter description length; yes; no.")
    dense: Auto = param(Auto.auto, "sbm: edge code of the non-degree-corrected variant: yes = simple "
                        "graph (binomial per block pair), no = multigraph (graph-tool's default), "
                        "auto = yes (never longer on the simple graphs built here).")
    weights: WeightCode = param(WeightCode.exponential, "sbm: weight code: exponential per "
                                "block pair (graph-tool's real-exponential); lognormal = "
                                "log-weights less node factors, normal per block pair (for "
                                "strength-driven weights; on affinity patterns it splits "
                                "co-active groups); split = lognormal with an internal and an "
                                "external factor per node (weighted LFR strengths); auto = all "
                                "three, the shortest kept.")
    restarts: int = param(1, "sbm: searches from single neurons per variant, besides the Leiden "
                          "starts (best kept).", ge=1, aliases=("n_init",))
    threshold: float = param(0.0, "Affinities at or below this are treated as absent edges.")
    objective: Objective = param(Objective.modularity, "leiden: modularity (weighted, RB "
                                 "configuration) or cpm.")
    resolution: float = param(1.0, "leiden: resolution parameter.", gt=0)
