"""Parameters of the ``factorize`` stage (one definition for the CLI, pipelines and provenance)."""

from __future__ import annotations

from dataclasses import dataclass

from neurodyn.params import StageParams, param
from neurodyn.workers import check_jobs


def parse_ranks(spec: str | list[int] | tuple[int, ...]) -> list[int]:
    """``"2-8"``, ``"2,3,5"`` or a sequence of ints -> sorted list of ranks >= 1.

    Raises ``ValueError`` in plain words when the text cannot be read or a rank is below 1.
    """
    if not isinstance(spec, str):
        if not isinstance(spec, (list, tuple)) or not all(isinstance(r, int) for r in spec):
            raise ValueError(f"expected e.g. '2-8', '2,3,5' or a list of integers, got {spec!r}")
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
            raise ValueError(f"expected e.g. '2-8' or '2,3,5', got {spec!r}") from None
    if not out or min(out) < 1:
        raise ValueError(f"ranks must be >= 1, got {spec!r}")
    return sorted(set(out))


def _ranks(spec: str | list[int]) -> str:
    ranks = parse_ranks(spec)
    return spec if isinstance(spec, str) else ",".join(map(str, ranks))


def _rank(value: str | int) -> str | int:
    """``"auto"`` or an integer >= 1 (also as text)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise ValueError(f"expected 'auto' or an integer, got {value!r}")
    try:
        rank = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected 'auto' or an integer, got {value!r}") from None
    if rank < 1:
        raise ValueError(f"must be >= 1 or 'auto', got {rank}")
    return rank


@dataclass(frozen=True)
class FactorizeParams(StageParams):
    """Non-negative CP decomposition of the affinity tensor with rank selection."""

    stage = "factorize"

    rank: int | str = param("auto", "Number of components, or 'auto' to choose from --ranks.",
                            check=_rank, metavar="INT|auto")
    ranks: str = param("1-8", "Candidate ranks for --rank auto, e.g. 1-8 or 2,4,6.", check=_ranks,
                       metavar="LIST")
    restarts: int = param(5, "Random initialisations per rank (best kept; seeds recorded).", ge=1)
    max_iter: int = param(200, "Maximum HALS sweeps per fit.", ge=1)
    tol: float = param(1e-5, "Stop when the relative error improves by less than this in a "
                       "sweep.", ge=0)
    scan_animals: int = param(
        100, "--rank auto on a tensor of more animals than this: scan the ranks on this many "
        "animals drawn with --seed (recorded), then fit the chosen rank on all of them from "
        "the scan's best fit. 0: scan on all.", ge=0)
    heldout: float = param(
        0.1, "Fraction of observed entries held out to score each rank, in blocks: each animal "
        "hides a share of its pairs (the square root: 32 percent for 0.1) in as large a "
        "share of its windows.", gt=0, lt=1)
    heldout_starts: int = param(
        2, "Initialisations of each rank's held-out fit; the one with the lowest error on the "
        "fitted entries is scored (one start lets a local optimum make the curve jagged).", ge=1)
    min_stability: float = param(
        0.8, "Restart similarity (factor match score) a rank needs to be chosen.", ge=0, le=1)
    jobs: int = param(1, "Parallel processes for the restarts and candidate ranks (-1: all "
                      "cores); results do not depend on it.", check=check_jobs, short="-j")
    solver: str = param(
        "hals", "hals: neurodyn's masked HALS (skips missing entries; 2-3x faster per sweep). tensorly: tensorly's non_negative_parafac_hals from the same starts, to "
        "cross-check; needs a complete tensor and a fixed --rank.", choices=("hals", "tensorly"))
    slack: float = param(
        0.1, "Slack on the lowest held-out error, as a fraction of the scan's improvement over its "
        "smallest rank (the elbow).", ge=0, aliases=("tolerance",))
