"""The ``states`` stage: fit an HMM-GLM to every recording of a recordings file.

Input handling (documented in ``neurodyn states --help``):

* ``spikes`` recordings are spike counts per bin (Poisson by default, or ``bernoulli``
  events = count > 0). Values must be non-negative integers.
* ``calcium`` (and ``eeg``/``other``) traces use the Gaussian observation model (identity
  link, per-neuron noise variance) on per-neuron z-scored traces; a Poisson or Bernoulli
  model on calcium requires deconvolved events stored as a ``spikes`` recording.
* Neurons with no spikes (or constant traces) are dropped with a warning and listed in the
  output (``dropped``); a recording left with none is an error.
* Unobserved samples (NaN / mask False), ``K`` larger than the training bins, and a
  recording whose length is not a multiple of the trial length are errors.
* ``joint=True`` fits one model over all selected recordings (:mod:`neurodyn.hmmglm.joint`):
  same labels in the same order and the same observation model are required, and a neuron
  is dropped only when silent in every recording.
* ``learn_basis=True`` learns the decay of the history basis inside EM
  (:mod:`neurodyn.hmmglm.learn_basis`), starting from ``tau``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np

from neurodyn.errors import InputError
from neurodyn.hmmglm import gaussian_stage, result
from neurodyn.hmmglm.basis import HistorySpec
from neurodyn.hmmglm.fit import FitResult, decode, fit_budget, fit_hmmglm
from neurodyn.hmmglm.joint import JOINT_GROUP, Stacked, stack
from neurodyn.hmmglm.model import ModelSpec
from neurodyn.hmmglm.params import StatesParams, TimeBins, parse_range, time_bins
from neurodyn.hmmglm.priors import NoPrior, prior_class
from neurodyn.hmmglm.select import heldout_bits, holdout_split, score_unit, select_states
from neurodyn.io.groups import events_tree
from neurodyn.io.store import atomic_h5, read_recordings
from neurodyn.params import ParamError
from neurodyn.progress import bar
from neurodyn.selection import emit, gain_warning

log = logging.getLogger("neurodyn.hmmglm")

def resolve_features(rec, features: str) -> str:
    """``auto``: ``bandpower`` for EEG recordings, the HMM-GLM (``glm``) otherwise."""
    if features == "auto":
        return "bandpower" if rec.modality == "eeg" else "glm"
    return features


def states_choice(p: dict[str, Any]) -> tuple[list[int] | None, int]:
    """Candidates (``states="auto"``) or the fixed number of states (checked by StatesParams)."""
    if str(p["states"]) == "auto":
        return parse_range(str(p["states_range"])), 0
    return None, int(p["states"])


def observations(rec, observation: str, source: Path) -> tuple[np.ndarray, str, np.ndarray]:
    """Checked observations (T, N) float32 of all channels, resolved observation name, and
    which channels are active (N,) bool (any spike, or non-constant trace)."""
    where = f"{source} [{rec.id}]"
    if rec.mask is not None and not rec.mask.all():
        raise InputError(where, "has unobserved (NaN) samples; the HMM-GLM needs complete data "
                                "(crop the recording or select channels first)")
    y = rec.data
    if not np.all(np.isfinite(y)):
        raise InputError(where, "traces contain NaN or infinity")
    obs = observation
    if obs == "auto":
        obs = "poisson" if rec.modality == "spikes" else "gaussian"
    if obs in ("poisson", "bernoulli"):
        if rec.modality != "spikes":
            raise InputError(where, f"{rec.modality} traces need --observation gaussian, or "
                                    "deconvolved events stored as a spikes recording")
        if np.any(y < 0) or np.any(y != np.round(y)):
            raise InputError(where, "spike counts must be non-negative integers")
        if obs == "bernoulli":
            y = (y > 0).astype(np.float32)
        alive = y.sum(axis=0) > 0
    else:
        sd = y.std(axis=0)
        alive = sd > 0
        y = ((y - y.mean(axis=0)) / np.where(sd > 0, sd, 1.0)).astype(np.float32)
    return np.asarray(y, np.float32), obs, np.asarray(alive, bool)


def prepare(rec, observation: str, source: Path) -> tuple[np.ndarray, str, list[str], list[str]]:
    """Observations (T, N) float32, resolved observation name, kept and dropped labels."""
    where = f"{source} [{rec.id}]"
    y, obs, alive = observations(rec, observation, source)
    labels = list(rec.labels)
    dropped = [lab for lab, a in zip(labels, alive) if not a]
    if dropped:
        log.warning("%s: dropping %d silent neuron(s): %s", where, len(dropped),
                    ", ".join(dropped[:10]))
    if not alive.any():
        raise InputError(where, "no neuron has any spike (or variance)")
    return np.ascontiguousarray(y[:, alive]), obs, [x for x, a in zip(labels, alive) if a], dropped


def sequences(T: int, trial_length: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Sequence ranges of equal-length trials (one sequence when ``trial_length`` is 0)."""
    if trial_length <= 0:
        return np.array([0], np.int64), np.array([T], np.int64)
    if T % trial_length:
        raise InputError(where, f"mismatched trial lengths: {T} bins is not a multiple of the "
                                f"trial length {trial_length}")
    starts = np.arange(0, T, trial_length, dtype=np.int64)
    return starts, starts + trial_length


@dataclasses.dataclass
class Fitted:
    """A fitted model on stacked sequences, before it is split into output groups.

    Attributes
    ----------
    shared : dict
        Tree of the parameters and scores (``weights``, ``bias``, ``basis``, ...).
    result : FitResult
    h : array (T, N)
        History the parameters go with.
    posterior : array (T, K) float32
    viterbi : array (T,) int16
    seq_loglik : array (S,)
        Log-likelihood (nats) per sequence.
    train, test : tuples of int arrays
        Training and held-out blocks.
    baseline : FitResult or None
        The 1-state fit on the same training blocks (None without held-out blocks).
    """

    shared: dict[str, Any]
    result: FitResult
    h: np.ndarray
    posterior: np.ndarray
    viterbi: np.ndarray
    seq_loglik: np.ndarray
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    baseline: FitResult | None = None


def fit_model(y: np.ndarray, starts: np.ndarray, stops: np.ndarray, spec: ModelSpec,
              p: dict[str, Any], seed: int, where: str, tb: TimeBins) -> Fitted:
    """Choose K (``states="auto"``), fit, decode and score the sequences ``[starts, stops)``;
    ``tb`` holds the history span and decay in bins."""
    history = HistorySpec(tb.lags, tb.tau, starts, stops, learn=bool(p["learn_basis"]))
    h = history.filter(y)
    train, test = holdout_split(starts, stops, float(p["test_fraction"]))
    n_train = int(np.sum(train[1] - train[0]))
    fit_kw = dict(spec=spec, prior=p["prior"], sigma=p["sigma"] or None, l2=p["l2"],
                  sticky=p["sticky"], restarts=p["restarts"], max_iter=p["max_iter"],
                  tol=p["tol"], mstep_iter=p["mstep_iter"], history=history)
    tree: dict[str, Any] = {}
    ks, K = states_choice(p)
    folds = int(p["folds"])
    budget = fit_budget(int(p["restarts"]), int(p["max_iter"]),
                        prior_class(str(p["prior"])) is not NoPrior)
    n_fits = 1 + (len(test[0]) > 0) + (0 if ks is None else folds * len(set(ks) | {1}))
    pbar = bar(n_fits * budget, desc=f"states {where}", unit="EM it")
    try:
        if ks is not None:
            if max(ks) > n_train:
                raise ParamError("states_range", f"up to {max(ks)} states but {where} has only "
                                                 f"{n_train} training bins")
            sel = select_states(y, h, train[0], train[1], ks, folds=folds, seed=seed,
                                jobs=int(p["jobs"]), tick=pbar.update, **fit_kw)
            K = sel.chosen
            tree["model_selection"] = sel.tree()
            emit(sel, where)
        if K > n_train:
            raise ParamError("states", f"{K} states but {where} has only {n_train} training bins")
        res = fit_hmmglm(y, h, K, starts=train[0], stops=train[1], seed=seed, tick=pbar.update,
                         **fit_kw)
        base = None
        if len(test[0]):
            base = fit_hmmglm(y, h, 1, starts=train[0], stops=train[1], seed=seed,
                              tick=pbar.update, **fit_kw)
    finally:
        pbar.close()
    h = res.h
    post, path, seq_ll = decode(y, h, res.params, spec, starts, stops)
    pr = res.prior
    tree.update({
        "weights": res.params.W, "bias": res.params.bias, "basis": res.basis,
        "transition": res.params.P, "initial": res.params.pi0,
        "loglik_trace": res.loglik_trace, "restart_objectives": res.restart_scores,
        "@n_states": K, "@n_iter": res.n_iter, "@converged": bool(res.converged),
        "@loglik": float(seq_ll.sum()), "@prior": pr.kind,
        "@tau": float(res.tau), "@basis_learned": history.learn,
        "@tau_s": float(res.tau) * tb.dt, **tb.provenance(),
    })
    if history.learn:
        tree["tau_trace"] = res.tau_trace
    if spec.observation == "gaussian":
        tree["noise_var"] = res.params.noise_var
    if base is not None:
        tree.update(_heldout(y, h, base.h, res, base, spec, train, test))
        if K > 1 and tree["@heldout_gain"] <= 0:
            log.warning("%s: %s", where, gain_warning(tree["@heldout_gain"], 0.0,
                                                      tree["@heldout_unit"], f"{K} states",
                                                      "1 state (no switching)"))
    tree.update(pr.outputs())
    return Fitted(tree, res, h, post.astype(np.float32), path.astype(np.int16), seq_ll,
                  train, test, base)


def _heldout(y, h, hb, res: FitResult, base: FitResult, spec: ModelSpec, train, test
             ) -> dict[str, Any]:
    """Held-out gain of the fit and of the 1-state baseline over a constant rate, and their
    difference (the gain of switching), in bits per spike (bits per observation: Gaussian)."""
    score = heldout_bits(y, h, res.params, spec, train, test)
    b = heldout_bits(y, hb, base.params, spec, train, test)
    return {"@heldout_score": score, "@baseline_score": b, "@heldout_gain": score - b,
            "@heldout_unit": score_unit(spec), "@baseline": "1 state (no switching)",
            "@score": "held-out log-likelihood gain over a constant rate per neuron"}


def fit_recording(y: np.ndarray, starts: np.ndarray, stops: np.ndarray, spec: ModelSpec,
                  p: dict[str, Any], seed: int, where: str, tb: TimeBins) -> dict[str, Any]:
    """Fit one recording; returns the tree written to its output group."""
    fm = fit_model(y, starts, stops, spec, p, seed, where, tb)
    return {**fm.shared, "posterior": fm.posterior, "viterbi": fm.viterbi,
            "sequence_starts": starts, "sequence_stops": stops}


def split_joint(fm: Fitted, st: Stacked, y: np.ndarray, spec: ModelSpec
                ) -> list[dict[str, Any]]:
    """Per-recording trees of a joint fit: posterior, Viterbi path, local sequence ranges,
    log-likelihood and (when blocks were held out) held-out score of each recording."""
    out = []
    for r in range(len(st.bounds) - 1):
        a, b = st.part(r)
        seq = st.sequences_of(r)
        tree: dict[str, Any] = {
            "posterior": fm.posterior[a:b], "viterbi": fm.viterbi[a:b],
            "sequence_starts": st.starts[seq] - a, "sequence_stops": st.stops[seq] - a,
            "@loglik": float(fm.seq_loglik[seq].sum()), "@parameters": f"/{JOINT_GROUP}",
        }
        te = (fm.test[0] >= a) & (fm.test[1] <= b)
        tr = (fm.train[0] >= a) & (fm.train[1] <= b)
        if te.any() and tr.any() and fm.baseline is not None:
            tree.update(_heldout(y[a:b], fm.h[a:b], fm.baseline.h[a:b], fm.result, fm.baseline,
                                 spec,
                                 (fm.train[0][tr] - a, fm.train[1][tr] - a),
                                 (fm.test[0][te] - a, fm.test[1][te] - a)))
        out.append(tree)
    return out


def _spec(obs: str, p: dict[str, Any]) -> ModelSpec:
    try:
        return ModelSpec(observation=obs, link=p["link"], rate_cap=float(p["rate_cap"]),
                         self_history=bool(p["self_history"]))
    except ValueError as exc:
        raise ParamError("link", str(exc)) from None


def _sequences(rec, T: int, tb: TimeBins, where: str) -> tuple[np.ndarray, np.ndarray]:
    trial = tb.trial or int(rec.meta.get("sequence_length", 0) or 0)
    starts, stops = sequences(T, trial, where)
    if np.any(stops - starts < 2):
        raise InputError(where, "sequences must have at least 2 bins")
    return starts, stops


def _joint_bins(recs, p: dict[str, Any], source: Path) -> TimeBins:
    """The time parameters in bins, the same for every recording of a joint fit."""
    tbs = [time_bins(p, float(rec.fs)) for rec in recs]
    if any((t.lags, t.tau, t.trial) != (tbs[0].lags, tbs[0].tau, tbs[0].trial) for t in tbs):
        raise InputError(source, "--joint needs recordings with the same bin width (fs "
                                 f"{sorted({float(r.fs) for r in recs})} Hz)")
    return tbs[0]


def _record_info(rec) -> dict[str, Any]:
    return {"events": events_tree(rec.events), "time": rec.times, "@id": rec.id}


def run(input_path: Path, out: Path, params: StatesParams | None = None, *, seed: int = 0,
        **kw: Any) -> Path:
    """Fit the HMM-GLM to each recording of ``input_path`` (or one model to all) and write ``out``.

    Parameters
    ----------
    input_path : Path
        A recordings file (``/recordings/<id>``).
    out : Path
        Output HDF5: one group per recording and, with ``joint=True``, the shared
        parameters in ``/joint``; the layout is :mod:`neurodyn.hmmglm.result`.
    params : StatesParams, optional
        The stage parameters (defaults when omitted); keywords override single fields.
    seed : int
    """
    p = StatesParams.build(params, **kw).to_dict()
    input_path = Path(input_path)
    ids = list(p["recordings"]) or None
    recs = read_recordings(input_path, ids)
    groups: list[result.StatesFit] = []
    if p["joint"] and any(resolve_features(r, p["features"]) != "glm" for r in recs):
        raise ParamError("joint", "fits one HMM-GLM; use it with --features glm")
    if p["joint"]:
        tb = _joint_bins(recs, p, input_path)
        st = stack(recs, lambda rec: observations(rec, p["observation"], input_path),
                   lambda rec, T: _sequences(rec, T, tb, f"{input_path} [{rec.id}]"),
                   input_path)
        spec = _spec(st.observation, p)
        fm = fit_model(st.y, st.starts, st.stops, spec, p, seed, str(input_path), tb)
        shared = {**fm.shared, "labels": np.array(st.labels, dtype=object),
                  "dropped": np.array(st.dropped, dtype=object),
                  "@recordings": [rec.id for rec in recs], "@observation": st.observation,
                  "@link": spec.link, "@seed": seed}
        groups.append(result.StatesFit(JOINT_GROUP, shared))
        for rec, tree in zip(recs, split_joint(fm, st, st.y, spec)):
            groups.append(result.StatesFit(rec.id, {**tree, **_record_info(rec)}))
    else:
        for rec in recs:
            where = f"{input_path} [{rec.id}]"
            kind = resolve_features(rec, p["features"])
            if kind != "glm":
                rec, left_out = gaussian_stage.brain_channels(rec, where)
                tree = gaussian_stage.fit_recording(rec, {**p, "features": kind}, seed, where,
                                                    *states_choice(p))
                tree.update({"labels": np.array(list(rec.labels), dtype=object),
                             "dropped": np.array(left_out, dtype=object),
                             "@seed": seed, **_record_info(rec), "time": tree["time"]})
                groups.append(result.StatesFit(rec.id, tree))
                continue
            y, obs, labels, dropped = prepare(rec, p["observation"], input_path)
            spec = _spec(obs, p)
            tb = time_bins(p, float(rec.fs))
            starts, stops = _sequences(rec, y.shape[0], tb, where)
            tree = fit_recording(y, starts, stops, spec, p, seed, where, tb)
            tree.update({"labels": np.array(labels, dtype=object),
                         "dropped": np.array(dropped, dtype=object),
                         "@observation": obs, "@link": spec.link, "@seed": seed,
                         **_record_info(rec)})
            groups.append(result.StatesFit(rec.id, tree))
    with atomic_h5(out, stage=result.STAGE, params=p, inputs=[input_path], seed=seed) as f:
        result.write(f, groups)
    return Path(out)
