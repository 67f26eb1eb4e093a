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
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from neurodyn.errors import InputError
from neurodyn.hmmglm.basis import exp_basis, filter_history
from neurodyn.hmmglm.fit import fit_hmmglm, posterior_and_path
from neurodyn.hmmglm.model import ModelSpec
from neurodyn.hmmglm.priors import PRIORS
from neurodyn.hmmglm.select import heldout_bits, holdout_split, select_states

log = logging.getLogger("neurodyn.hmmglm")

DEFAULTS: dict[str, Any] = dict(
    states="5", states_range="2-8", prior="none", observation="auto", link="softplus",
    rate_cap=5.0, lags=5, tau=0.0, self_history=True, restarts=3, max_iter=100, tol=1e-5,
    mstep_iter=25, sticky=10.0, sigma=0.1, l2=1e-2, test_fraction=0.2, folds=3,
    trial_length=0, recordings="",
)


def parse_range(text: str) -> list[int]:
    """``"2-8"`` -> [2..8]; ``"2,4,6"`` -> [2, 4, 6]."""
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            vals = list(range(lo, hi + 1))
        else:
            vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError("--states-range", f"cannot parse {text!r} (use 2-8 or 2,4,6)") from None
    if not vals or min(vals) < 1:
        raise InputError("--states-range", f"{text!r} gives no valid state counts (>= 1)")
    return vals


def prepare(rec, observation: str, source: Path) -> tuple[np.ndarray, ModelSpec | str, list[str], list[str]]:
    """Observations (T, N) float32, resolved observation name, kept and dropped labels."""
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


def fit_recording(y: np.ndarray, starts: np.ndarray, stops: np.ndarray, spec: ModelSpec,
                  p: dict[str, Any], seed: int, where: str) -> dict[str, Any]:
    """Fit one recording; returns the tree written to its output group."""
    T, N = y.shape
    basis = exp_basis(int(p["lags"]), float(p["tau"]) or None)
    h = filter_history(y, basis, starts, stops)
    train, test = holdout_split(starts, stops, float(p["test_fraction"]))
    n_train = int(np.sum(train[1] - train[0]))
    fit_kw = dict(spec=spec, prior=p["prior"], sigma=p["sigma"] or None, l2=p["l2"],
                  sticky=p["sticky"], restarts=p["restarts"], max_iter=p["max_iter"],
                  tol=p["tol"], mstep_iter=p["mstep_iter"])
    tree: dict[str, Any] = {}
    if str(p["states"]) == "auto":
        ks = parse_range(str(p["states_range"]))
        if max(ks) > n_train:
            raise InputError("--states-range", f"up to {max(ks)} states but {where} has only "
                                               f"{n_train} training bins")
        sel = select_states(y, h, train[0], train[1], ks, folds=int(p["folds"]), seed=seed,
                            **fit_kw)
        K = sel["best"]
        tree["model_selection"] = {"k_values": sel["k_values"], "heldout_bits": sel["scores"],
                                   "mean_heldout_bits": sel["mean"], "@best": K,
                                   "@folds": int(p["folds"])}
    else:
        try:
            K = int(p["states"])
        except ValueError:
            raise InputError("--states", f"{p['states']!r} is neither an integer nor 'auto'") from None
        if K < 1:
            raise InputError("--states", "needs at least 1 state")
        if K > n_train:
            raise InputError("--states", f"{K} states but {where} has only {n_train} training bins")
    res = fit_hmmglm(y, h, K, starts=train[0], stops=train[1], seed=seed, **fit_kw)
    post, path, ll_all = posterior_and_path(y, h, res.params, spec, starts, stops)
    pr = res.prior
    tree.update({
        "posterior": post.astype(np.float32), "viterbi": path.astype(np.int16),
        "weights": res.params.W, "bias": res.params.bias, "basis": basis,
        "transition": res.params.P, "initial": res.params.pi0,
        "loglik_trace": res.loglik_trace, "restart_objectives": res.restart_scores,
        "sequence_starts": starts, "sequence_stops": stops,
        "@n_states": K, "@n_iter": res.n_iter, "@converged": bool(res.converged),
        "@loglik": ll_all, "@prior": pr.kind,
    })
    if spec.observation == "gaussian":
        tree["noise_var"] = res.params.noise_var
    if len(test[0]):
        bits = heldout_bits(y, h, res.params, spec, train, test)
        tree["@heldout_bits_per_spike"] = bits
        tree["@heldout_unit"] = "bits/spike" if spec.observation != "gaussian" else "bits/observation"
    if pr.kind == "gaussian":
        tree["W0"] = pr.W0
        tree["@sigma"] = float(np.sqrt(pr.sigma2))
    if pr.kind == "onehot":
        tree["adjacency"] = pr.adjacency
        tree["adjacency_prob"] = pr.adjacency_prob.astype(np.float32)
        tree["adjacency_prior"] = pr.table
        tree["strength"] = pr.strength
        tree["@adjacency_classes"] = "inhibitory,none,excitatory"
    return tree


def run(input_path: Path, out: Path, *, seed: int = 0, **params: Any) -> Path:
    """Fit the HMM-GLM to each recording of ``input_path`` and write ``out``.

    Parameters
    ----------
    input_path : Path
        A recordings file (``/recordings/<id>``).
    out : Path
        Output HDF5: one group per recording (id with ``/`` as ``|``) holding ``posterior``
        (T, K), ``viterbi`` (T,), ``weights`` (K, N, N) [post, pre], ``bias`` (K, N),
        ``basis`` (L,), ``transition`` (K, K), ``initial`` (K,), ``loglik_trace``, ``labels``,
        ``time`` (s), ``W0`` (gaussian) or ``adjacency`` / ``adjacency_prob`` /
        ``adjacency_prior`` / ``strength`` (onehot), held-out bits/spike and
        ``model_selection`` (``states="auto"``).
    seed : int
    **params
        See :data:`DEFAULTS` (names = CLI options with underscores).
    """
    from neurodyn.io.store import atomic_h5, read_recordings, write_tree

    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown parameters {sorted(unknown)}")
    p = {**DEFAULTS, **params}
    if p["prior"] not in PRIORS:
        raise InputError("--prior", f"{p['prior']!r}; one of {PRIORS}")
    if p["observation"] not in ("auto", "poisson", "bernoulli", "gaussian"):
        raise InputError("--observation", f"{p['observation']!r}; auto, poisson, bernoulli or gaussian")
    if not 0 <= float(p["test_fraction"]) < 1:
        raise InputError("--test-fraction", "must be in [0, 1)")
    input_path = Path(input_path)
    ids = [x for x in str(p["recordings"]).split(",") if x] or None
    recs = read_recordings(input_path, ids)
    results = []
    for rec in recs:
        where = f"{input_path} [{rec.id}]"
        y, obs, labels, dropped = prepare(rec, p["observation"], input_path)
        try:
            spec = ModelSpec(observation=obs, link=p["link"], rate_cap=float(p["rate_cap"]),
                             self_history=bool(p["self_history"]))
        except ValueError as exc:
            raise InputError("--link", str(exc)) from None
        trial = int(p["trial_length"]) or int(rec.meta.get("sequence_length", 0) or 0)
        starts, stops = sequences(y.shape[0], trial, where)
        if np.any(stops - starts < 2):
            raise InputError(where, "sequences must have at least 2 bins")
        tree = fit_recording(y, starts, stops, spec, p, seed, where)
        ev = rec.events
        tree["events"] = {"onset": ev["onset"].to_numpy(np.float64),
                          "offset": ev["offset"].to_numpy(np.float64),
                          "label": np.array([str(x) for x in ev["label"]], dtype=object)}
        tree.update({"labels": np.array(labels, dtype=object), "time": rec.times,
                     "dropped": np.array(dropped, dtype=object), "@id": rec.id,
                     "@observation": obs, "@link": spec.link, "@seed": seed})
        results.append((rec.id, tree))
    with atomic_h5(out, stage="states", params=p, inputs=[input_path], seed=seed) as f:
        for rid, tree in results:
            write_tree(f.create_group(rid.replace("/", "|")), tree)
    return Path(out)
