"""Held-out scoring (bits per spike) and choice of the number of states by time-block CV."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from neurodyn.hmmglm.fit import fit_hmmglm, heldout_loglik
from neurodyn.hmmglm.model import ModelSpec
from neurodyn.selection import Selection, from_folds
from neurodyn.workers import map_tasks


def split_blocks(starts: np.ndarray, stops: np.ndarray, n_blocks: int, test_block: int
                 ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Cut every sequence into ``n_blocks`` contiguous blocks; block ``test_block`` is held out.

    Returns ``(train_starts, train_stops), (test_starts, test_stops)``; the training blocks
    of one sequence on either side of its test block become separate sequences.
    """
    tr_a, tr_b, te_a, te_b = [], [], [], []
    for a, b in zip(starts, stops):
        edges = np.linspace(a, b, n_blocks + 1).round().astype(np.int64)
        lo, hi = edges[test_block], edges[test_block + 1]
        te_a.append(lo)
        te_b.append(hi)
        if lo > a:
            tr_a.append(a)
            tr_b.append(lo)
        if hi < b:
            tr_a.append(hi)
            tr_b.append(b)
    f = lambda v: np.asarray(v, np.int64)  # noqa: E731
    return (f(tr_a), f(tr_b)), (f(te_a), f(te_b))


def holdout_split(starts: np.ndarray, stops: np.ndarray, test_fraction: float
                  ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Hold out the last ``test_fraction`` of every sequence (``0`` holds out nothing)."""
    starts = np.asarray(starts, np.int64)
    stops = np.asarray(stops, np.int64)
    if test_fraction <= 0:
        empty = np.zeros(0, np.int64)
        return (starts, stops), (empty, empty)
    cut = stops - np.round((stops - starts) * test_fraction).astype(np.int64)
    cut = np.clip(cut, starts + 1, stops - 1)
    return (starts, cut), (cut, stops)


def _rows(starts, stops) -> np.ndarray:
    return np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])


def null_loglik(y: np.ndarray, train: tuple, test: tuple, spec: ModelSpec) -> float:
    """Log-likelihood (nats) of the test rows under a per-neuron constant model fitted on train."""
    ytr = np.asarray(y[_rows(*train)], np.float64)
    yte = np.asarray(y[_rows(*test)], np.float64)
    if spec.observation == "poisson":
        r = np.maximum(ytr.mean(0), 1e-6)
        return float(np.sum(yte * np.log(r) - r - gammaln(yte + 1)))
    if spec.observation == "bernoulli":
        p = np.clip(ytr.mean(0), 1e-6, 1 - 1e-6)
        return float(np.sum(yte * np.log(p) + (1 - yte) * np.log1p(-p)))
    m, v = ytr.mean(0), np.maximum(ytr.var(0), 1e-6)
    return float(np.sum(-0.5 * (yte - m) ** 2 / v - 0.5 * np.log(2 * np.pi * v)))


def heldout_bits(y: np.ndarray, h: np.ndarray, params, spec: ModelSpec, train: tuple,
                 test: tuple) -> float:
    """Held-out information gain over the constant model.

    Bits per spike for count / event models (``(LL - LL_null) / (n_spikes ln 2)``), bits per
    observation (bin x neuron) for the Gaussian model.
    """
    ll = heldout_loglik(y, h, params, spec, *test)
    ll0 = null_loglik(y, train, test, spec)
    yte = y[_rows(*test)]
    denom = float(np.sum(yte)) if spec.observation != "gaussian" else float(yte.size)
    return (ll - ll0) / (max(denom, 1.0) * math.log(2.0))


def _cv_fn(y, h, starts, stops, folds, seed, fit_kw):
    spec = fit_kw.get("spec") or ModelSpec()

    def one(task, tick):
        k, f = task
        train, test = split_blocks(starts, stops, folds, f)
        res = fit_hmmglm(y, h, k, starts=train[0], stops=train[1], seed=seed + f, tick=tick,
                         **fit_kw)
        hk = h if res.h is None else res.h  # the fold's learned basis, if learned
        return heldout_bits(y, hk, res.params, spec, train, test)

    return one


def score_unit(spec: ModelSpec) -> str:
    """Unit of :func:`heldout_bits` for an observation model."""
    return "bits/observation" if spec.observation == "gaussian" else "bits/spike"


def select_states(y: np.ndarray, h: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                  k_values, *, folds: int = 3, seed: int = 0, jobs: int = 1, tick=None,
                  **fit_kw) -> Selection:
    """Choose K by time-block cross-validated held-out information gain (bits per spike).

    Every sequence is cut into ``folds`` blocks; for each fold one block per sequence is held
    out and the model fitted on the rest. The 1-state model (one GLM, no switching) is fitted
    on the same folds as the baseline. The choice and warnings follow
    :func:`neurodyn.selection.from_folds`. ``jobs`` processes share the (K, fold) fits;
    ``tick`` receives their EM iterations (:func:`neurodyn.hmmglm.fit.fit_budget` per fit).
    """
    k_values = [int(k) for k in k_values]
    values = [1] + [k for k in k_values if k != 1]
    tasks = [(k, f) for k in values for f in range(folds)]
    res = map_tasks(_cv_fn(y, h, starts, stops, folds, seed, fit_kw), tasks, jobs=jobs,
                    tick=tick)
    per = np.asarray(res, float).reshape(len(values), folds)
    return from_folds(k_values, per[[values.index(k) for k in k_values]], per[0],
                      unit=score_unit(fit_kw.get("spec") or ModelSpec()),
                      score_name=f"held-out gain over a constant rate, {folds}-fold CV",
                      parameter="states", option="--states-range",
                      baseline_name="1 state (no switching)", lower_bound=2)
