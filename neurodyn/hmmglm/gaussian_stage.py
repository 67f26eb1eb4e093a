"""``states --features bandpower|tde``: Gaussian HMM on band-power envelopes or time-delay
embedded signals of one recording, with held-out scoring against a 1-state baseline.

Output tree of a recording: written by :func:`neurodyn.hmmglm.stage.run`, on the model's
time grid (windows for ``bandpower``, samples for ``tde``); layout in
:mod:`neurodyn.hmmglm.result`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from neurodyn.errors import InputError
from neurodyn.hmmglm.features import (
    Features,
    bandpower_features,
    flat_fraction,
    parse_bands,
    power_maps,
    state_spectra,
    tde_features,
)
from neurodyn.hmmglm.gaussian_hmm import decode, fit_budget, fit_gaussian_hmm, heldout_loglik
from neurodyn.hmmglm.select import holdout_split, split_blocks
from neurodyn.params import ParamError
from neurodyn.progress import bar
from neurodyn.selection import Selection, emit, from_folds, gain_warning
from neurodyn.workers import map_tasks

log = logging.getLogger("neurodyn.hmmglm")
UNIT = "nats/sample"
FEATURES = ("bandpower", "tde")
BASELINE = "1 state (no switching)"


#: Channel types that record brain activity; ECG, EOG, EMG, respiration or stimulus channels
#: (typed by the EEG readers from MNE and the EDF label prefixes) are left out of the model.
BRAIN_TYPES = frozenset({"eeg", "meg", "mag", "grad", "seeg", "ecog", "dbs"})


def brain_channels(rec, where: str) -> tuple[Any, list[str]]:
    """The recording restricted to its brain channels, and the names left out (logged). A
    recording without channel types is kept whole."""
    info = rec.channel_info
    if info is None or "type" not in info.columns:
        return rec, []
    types = info["type"].astype(str).str.lower().to_numpy()
    keep = np.isin(types, list(BRAIN_TYPES))
    if keep.all():
        return rec, []
    if not keep.any():
        raise InputError(where, f"no EEG/MEG channel to model (channel types: "
                                f"{', '.join(sorted(set(types)))})")
    labels = list(rec.labels)
    out = [f"{labels[i]} ({types[i]})" for i in np.flatnonzero(~keep)]
    log.info("%s: %d non-brain channel(s) left out of the state model: %s", where, len(out),
             ", ".join(out))
    return rec.select([labels[i] for i in np.flatnonzero(keep)]), [labels[i] for i in
                                                                    np.flatnonzero(~keep)]


def embed_lags(p: dict[str, Any], fs: float) -> int:
    """Lags on each side of a sample for tde: ``embed_span`` seconds at ``fs`` Hz (at least 1),
    or the former sample-valued ``embed`` when set."""
    if p.get("embed") is not None:
        return int(p["embed"])
    return max(1, int(round(float(p["embed_span"]) * fs)))


def features(rec, p: dict[str, Any], where: str) -> Features:
    """The recording's features for ``p["features"]`` (bandpower or tde)."""
    if rec.fs is None:
        raise InputError(where, "needs a regular sampling rate for band filtering")
    if rec.mask is not None and not rec.mask.all():
        raise InputError(where, "has unobserved (NaN) samples; crop the recording first")
    x = np.asarray(rec.data, np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError(where, "traces contain NaN or infinity")
    bands = parse_bands(p["bands"])  # checked by StatesParams
    try:
        if p["features"] == "bandpower":
            return bandpower_features(x, float(rec.fs), bands, float(p["window"]), int(p["pca"]))
        return tde_features(x, float(rec.fs), embed_lags(p, float(rec.fs)), int(p["pca"]), bands)
    except ValueError as exc:
        raise InputError(where, str(exc)) from None


def _warn_flat(F: Features, where: str) -> None:
    frac = flat_fraction(F.power)
    if frac > 0:
        log.warning("%s: %.1f%% of the recording (%.1f s) is flat in most channels and bands "
                    "(power 30 dB below its median): crop it (ingest/preprocess --crop)", where,
                    100 * frac, frac * F.X.shape[0] / F.fs)


def _fit_kw(p: dict[str, Any], F: Features) -> dict[str, Any]:
    return dict(covariance=_covariance(p), sticky=float(p["sticky"]),
                min_dwell=max(1, int(round(float(p["min_dwell"]) * F.fs))),
                restarts=int(p["restarts"]), max_iter=int(p["max_iter"]), tol=float(p["tol"]))


def _covariance(p: dict[str, Any]) -> str:
    cov = str(p["covariance"])
    if cov == "auto":
        return "full" if p["features"] == "tde" else "diag"
    return cov


def _score_task(task, tick, X, kw):
    """Held-out log-likelihood (nats) and sample count of one (K, train, test, seed) fit."""
    K, train, test, seed = task
    fit = fit_gaussian_hmm(X, K, starts=train[0], stops=train[1], seed=seed, tick=tick, **kw)
    return heldout_loglik(fit.model, X, *test), int(np.sum(test[1] - test[0]))


def _cv_fn(X, kw):
    return lambda task, tick: _score_task(task, tick, X, kw)


def scan_states(X: np.ndarray, starts: np.ndarray, stops: np.ndarray, ks: list[int],
                folds: int, seed: int, kw: dict[str, Any], jobs: int, tick) -> Selection:
    """Time-block cross-validated held-out log-likelihood per sample of each K, with the
    1-state model as baseline (its gain paired by fold)."""
    values = [1] + [k for k in ks if k != 1]
    tasks = [(k, *split_blocks(starts, stops, folds, f), seed + f)
             for k in values for f in range(folds)]
    res = map_tasks(_cv_fn(X, kw), tasks, jobs=jobs, tick=tick)
    per = np.array([ll / max(n, 1) for ll, n in res]).reshape(len(values), folds)
    return from_folds(ks, per[[values.index(k) for k in ks]], per[0], unit=UNIT,
                      score_name=f"held-out log-likelihood, {folds}-fold CV",
                      parameter="states", option="--states-range",
                      baseline_name=BASELINE, lower_bound=2)


def dwell_stats(path: np.ndarray, K: int, dt: float) -> dict[str, Any]:
    """Switches, mean dwell (s) over all visits and per state, and occupancy of a state path."""
    change = np.flatnonzero(np.diff(path)) + 1
    bounds = np.r_[0, change, path.size]
    runs = np.diff(bounds)
    who = path[bounds[:-1]]
    per = np.array([runs[who == k].mean() * dt if np.any(who == k) else 0.0 for k in range(K)])
    occ = np.bincount(path, minlength=K) / max(path.size, 1)
    return {"dwell_s": per, "occupancy": occ, "@n_switches": int(change.size),
            "@mean_dwell_s": float(runs.mean() * dt)}


def fit_recording(rec, p: dict[str, Any], seed: int, where: str, ks: list[int] | None,
                  K: int = 0) -> dict[str, Any]:
    """Features, K (fixed, or chosen from ``ks``), fit, decode, held-out score against one
    state, power maps and spectra of one recording."""
    F = features(rec, p, where)
    _warn_flat(F, where)
    W = F.X.shape[0]
    kw = _fit_kw(p, F)
    starts, stops = np.array([0], np.int64), np.array([W], np.int64)
    train, test = holdout_split(starts, stops, float(p["test_fraction"]))
    n_train = int(np.sum(train[1] - train[0]))
    folds = int(p["folds"])
    budget = fit_budget(kw["restarts"], kw["max_iter"])
    n_fits = 1 + (len(test[0]) > 0) + (0 if ks is None else folds * (len(set(ks) | {1})))
    pbar = bar(n_fits * budget, desc=f"states {rec.id}", unit="EM it")
    tree: dict[str, Any] = {}
    try:
        if ks is not None:
            if max(ks) * kw["min_dwell"] > n_train // folds:
                raise ParamError("states_range", f"up to {max(ks)} states but {where} has "
                                                 f"only {n_train} training samples")
            sel = scan_states(F.X, *train, ks, folds, seed, kw, int(p["jobs"]), pbar.update)
            K = sel.chosen
            tree["model_selection"] = sel.tree()
            emit(sel, where)
            for line in sel.lines():
                log.info("%s: %s", where, line)
        if K > n_train:
            raise ParamError("states", f"{K} states but {where} has only {n_train} "
                                       "training samples")
        fit = fit_gaussian_hmm(F.X, K, starts=train[0], stops=train[1], seed=seed,
                               tick=pbar.update, **kw)
        if len(test[0]):
            base = fit_gaussian_hmm(F.X, 1, starts=train[0], stops=train[1], seed=seed,
                                    tick=pbar.update, **kw)
            n_test = float(np.sum(test[1] - test[0]))
            score = heldout_loglik(fit.model, F.X, *test) / n_test
            base_score = heldout_loglik(base.model, F.X, *test) / n_test
            tree.update({"@heldout_score": score, "@baseline_score": base_score,
                         "@heldout_gain": score - base_score, "@heldout_unit": UNIT,
                         "@baseline": BASELINE})
            w = gain_warning(score - base_score, 0.0, UNIT, f"{K} states",
                             BASELINE)
            if w and K > 1:
                log.warning("%s: %s", where, w)
    finally:
        pbar.close()
    post, path, seq_ll = decode(fit.model, F.X, starts, stops)
    m = fit.model
    tree.update(_maps(rec, F, post, p))
    tree.update(dwell_stats(path, K, 1.0 / F.fs))
    mid = (F.rows[:, 0] + F.rows[:, 1] - 1) / 2.0
    tree.update({
        "posterior": post.astype(np.float32), "viterbi": path.astype(np.int16),
        "time": float(rec.times[0]) + mid / float(rec.fs),
        "means": m.means, "covariances": m.covs, "transition": m.P, "initial": m.pi0,
        "loglik_trace": fit.loglik_trace, "restart_objectives": fit.restart_scores,
        "expected_dwell_s": m.mean_dwell() / F.fs,
        "@n_states": K, "@n_iter": fit.n_iter, "@converged": bool(fit.converged),
        "@loglik": float(seq_ll.sum()), "@features": F.kind, "@covariance": m.covariance,
        "@min_dwell_samples": m.dwell, "@model_rate_hz": F.fs, "@n_features": F.X.shape[1],
        "@variance_kept": F.variance_kept, "@observation": "gaussian",
        "sequence_starts": starts, "sequence_stops": stops,
    })
    if F.kind == "tde":
        tree["@embed_lags"] = embed_lags(p, float(rec.fs))  # --embed-span in samples
    return tree


def _maps(rec, F: Features, post: np.ndarray, p: dict[str, Any]) -> dict[str, Any]:
    """Power maps per state (dB) and posterior-weighted spectra per channel."""
    bands = parse_bands(p["bands"])
    T = rec.data.shape[0]
    weight = np.zeros((T, post.shape[1]))
    for (a, b), row in zip(F.rows, post):
        weight[a:b] = row
    freqs, spec = state_spectra(np.asarray(rec.data, np.float64), float(rec.fs), weight,
                                fmax=max(hi for _, _, hi in bands) * 1.5)
    return {"power_maps": power_maps(F.power, post).astype(np.float32),
            "bands": np.array([b[0] for b in bands], dtype=object),
            "band_edges": np.array([[lo, hi] for _, lo, hi in bands]),
            "spectra": spec.astype(np.float32), "frequencies": freqs}
