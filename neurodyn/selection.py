"""Model selection that reports itself: every candidate's score with its standard error,
the choice and why, a trivial baseline, and warnings a user must see.

Used by ``states --states auto`` (held-out log-likelihood by time-block cross-validation)
and ``factorize --rank auto`` (held-out entry error).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import numpy as np

log = logging.getLogger("neurodyn.selection")


def mean_se(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean over the last axis (NaN-aware; SE 0 for one value)."""
    s = np.asarray(scores, float)
    n = np.sum(np.isfinite(s), axis=-1)
    mean = np.nanmean(s, axis=-1)
    sd = np.nanstd(s, axis=-1, ddof=1) if s.shape[-1] > 1 else np.zeros(mean.shape)
    return mean, np.where(n > 1, sd / np.sqrt(np.maximum(n, 1)), 0.0)


@dataclasses.dataclass
class Selection:
    """What a scan over candidate values measured, what it chose and why.

    Attributes
    ----------
    parameter : str
        The chosen quantity, e.g. ``"states"`` or ``"rank"``.
    values : int array (M,)
        Candidates, ascending.
    mean, se : arrays (M,)
        Score of each candidate and its standard error.
    unit : str
        Unit of the scores, e.g. ``"nats/sample"``, ``"bits/spike"``, ``"relative error"``.
    higher_is_better : bool
    chosen : int
    reason : str
        One sentence saying why ``chosen`` won.
    score_name : str
        What the score is (``"held-out log-likelihood"``...).
    baseline : float or None
        Score of the trivial model (1 state, no switching; or a constant tensor).
    baseline_se : float
    baseline_name : str
    gain, gain_se : arrays (M,) or None
        Improvement of each candidate over the baseline (positive = better), paired by fold
        where folds exist.
    warnings : list of str
    scores : array (M, folds) or None
        Per-fold scores behind ``mean`` and ``se``.
    """

    parameter: str
    values: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    unit: str
    higher_is_better: bool
    chosen: int
    reason: str
    score_name: str = "held-out score"
    baseline: float | None = None
    baseline_se: float = 0.0
    baseline_name: str = "baseline"
    gain: np.ndarray | None = None
    gain_se: np.ndarray | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    scores: np.ndarray | None = None

    @property
    def index(self) -> int:
        return int(np.flatnonzero(self.values == self.chosen)[0])

    def lines(self) -> list[str]:
        """A table a user reads: one row per candidate, then the choice, reason and warnings."""
        head = f"{self.parameter:>8}  {self.score_name} ({self.unit})"
        if self.gain is not None:
            head += f"   gain over {self.baseline_name}"
        out = [head]
        for i, v in enumerate(self.values):
            row = f"{int(v):>8}  {self.mean[i]:+.4f} ± {self.se[i]:.4f}"
            if self.gain is not None:
                row += f"   {self.gain[i]:+.4f} ± {self.gain_se[i]:.4f}"
            out.append(row + ("   <- chosen" if v == self.chosen else ""))
        if self.baseline is not None:
            out.append(f"{self.baseline_name}: {self.baseline:+.4f} ± {self.baseline_se:.4f}")
        out.append(f"chosen {self.parameter} = {self.chosen}: {self.reason}")
        out += [f"warning: {w}" for w in self.warnings]
        return out

    def tree(self) -> dict[str, Any]:
        """The scan as an HDF5 tree (arrays and ``@`` attributes)."""
        t: dict[str, Any] = {
            "values": np.asarray(self.values), "mean": self.mean, "se": self.se,
            "@parameter": self.parameter, "@unit": self.unit, "@score": self.score_name,
            "@higher_is_better": self.higher_is_better, "@chosen": int(self.chosen),
            "@reason": self.reason, "@warnings": json.dumps(list(self.warnings)),
        }
        if self.baseline is not None:
            t.update({"@baseline": float(self.baseline), "@baseline_se": float(self.baseline_se),
                      "@baseline_name": self.baseline_name})
        if self.gain is not None:
            t.update({"gain": self.gain, "gain_se": self.gain_se})
        if self.scores is not None:
            t["scores"] = self.scores
        return t


def _strings(v: Any) -> list[str]:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str):
        v = json.loads(v) if v.startswith("[") else [v]
    return [str(w) for w in v if str(w)]


def from_tree(t: dict[str, Any]) -> Selection:
    """The :class:`Selection` written by :meth:`Selection.tree` (read back with ``read_tree``)."""
    gain = t.get("gain")
    return Selection(
        str(t["@parameter"]), np.asarray(t["values"]), np.asarray(t["mean"], float),
        np.asarray(t["se"], float), str(t["@unit"]), bool(t["@higher_is_better"]),
        int(t["@chosen"]), str(t["@reason"]), score_name=str(t.get("@score", "score")),
        baseline=None if "@baseline" not in t else float(t["@baseline"]),
        baseline_se=float(t.get("@baseline_se", 0.0)),
        baseline_name=str(t.get("@baseline_name", "baseline")),
        gain=None if gain is None else np.asarray(gain, float),
        gain_se=None if gain is None else np.asarray(t["gain_se"], float),
        warnings=_strings(t.get("@warnings", [])),
        scores=None if "scores" not in t else np.asarray(t["scores"], float))


def one_se_choice(values: np.ndarray, mean: np.ndarray, se: np.ndarray, higher_is_better: bool,
                  parameter: str, scores: np.ndarray | None = None) -> tuple[int, str]:
    """The smallest candidate whose score is within one standard error of the best one.

    The one-standard-error rule (Hastie et al., *Elements of Statistical Learning*, 7.10):
    among models the data cannot tell apart, the simplest. With per-fold ``scores``
    (M, folds) the standard error is that of the paired, fold-by-fold difference to the best
    candidate (folds differ in difficulty; the models are compared on the same folds).
    """
    sign = 1.0 if higher_is_better else -1.0
    m = sign * np.asarray(mean, float)
    b = int(np.nanargmax(m))
    if scores is not None and np.asarray(scores).shape[1] > 1:
        _, slack = mean_se(sign * (np.asarray(scores, float) - np.asarray(scores, float)[b]))
        how = "one paired standard error"
    else:
        slack = np.full(len(values), float(se[b]))
        how = "one standard error"
    ok = np.flatnonzero(m >= m[b] - slack)
    pick = int(ok[0]) if ok.size else b
    word = "highest" if higher_is_better else "lowest"
    if pick == b:
        reason = f"{word} mean score ({mean[b]:+.4f} ± {se[b]:.4f})"
        if b > 0:
            reason += f"; no smaller {parameter} is within {how} of it"
        return int(values[b]), reason
    return int(values[pick]), (
        f"smallest {parameter} within {how} of the {word} score "
        f"({parameter} {int(values[b])}: {mean[b]:+.4f}; {parameter} {int(values[pick])}: "
        f"{mean[pick]:+.4f}, difference {mean[pick] - mean[b]:+.4f} ± {slack[pick]:.4f})")


def edge_warnings(sel: Selection, option: str, lower_bound: int = 1) -> list[str]:
    """Warnings when the choice sits at an end of the scanned range (``option`` names the
    range flag); the lower end counts only above ``lower_bound``."""
    out = []
    v = sel.values
    if len(v) > 1 and sel.chosen == v.max():
        out.append(f"{sel.parameter} = {sel.chosen} is the largest candidate: the score may "
                   f"keep improving beyond the range; extend {option}")
    if len(v) > 1 and sel.chosen == v.min() and v.min() > lower_bound:
        out.append(f"{sel.parameter} = {sel.chosen} is the smallest candidate: fewer may do as "
                   f"well; extend {option} downwards")
    return out


def gain_warning(gain: float, gain_se: float, unit: str, what: str, baseline: str) -> str | None:
    """A warning when the held-out gain over the trivial baseline is not positive."""
    if np.isfinite(gain) and gain > 0:
        return None
    se = f" ± {gain_se:.4f}" if gain_se > 0 else ""
    return (f"{what} does not predict held-out data better than {baseline}: gain "
            f"{gain:+.4f}{se} {unit} <= 0")


def from_folds(values: list[int], scores: np.ndarray, baseline: np.ndarray, *, unit: str,
               score_name: str, parameter: str, option: str, baseline_name: str,
               what: str = "", lower_bound: int = 1) -> Selection:
    """Selection over candidates scored on the same folds as a trivial baseline.

    ``scores`` (M, folds) and ``baseline`` (folds,) are held-out scores (higher is better);
    the gain of each candidate over the baseline is paired by fold. The choice follows
    :func:`one_se_choice`; warnings: :func:`edge_warnings` (range flag ``option``) and
    :func:`gain_warning` for the chosen candidate. ``lower_bound``: the smallest value that
    needs no lower-edge warning (2 when the baseline is the value 1, e.g. one state).
    """
    kv = np.asarray(values)
    scores = np.asarray(scores, float)
    mean, se = mean_se(scores)
    gain, gain_se = mean_se(scores - np.asarray(baseline, float)[None])
    bmean, bse = mean_se(np.asarray(baseline, float)[None])
    chosen, reason = one_se_choice(kv, mean, se, True, parameter, scores)
    sel = Selection(parameter, kv, mean, se, unit, True, chosen, reason, score_name=score_name,
                    baseline=float(bmean[0]), baseline_se=float(bse[0]),
                    baseline_name=baseline_name, gain=gain, gain_se=gain_se, scores=scores)
    sel.warnings += edge_warnings(sel, option, lower_bound)
    w = gain_warning(float(gain[sel.index]), float(gain_se[sel.index]), unit,
                     what or f"{parameter} = {chosen}", baseline_name)
    if w:
        sel.warnings.append(w)
    return sel


def emit(sel: Selection, where: str = "") -> None:
    """Log the selection's warnings (WARNING level, so a user sees them by default)."""
    for w in sel.warnings:
        log.warning("%s%s", f"{where}: " if where else "", w)
