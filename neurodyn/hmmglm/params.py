"""Parameters of the ``states`` stage (one definition for the CLI, pipelines and provenance)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neurodyn.params import Choice, ParamError, StageParams, param
from neurodyn.workers import check_jobs


class Prior(Choice):
    """Prior on the state-specific weights (:mod:`neurodyn.hmmglm.priors`)."""

    none = "none"
    gaussian = "gaussian"
    onehot = "onehot"


class Observation(Choice):
    """Observation model of each neuron given its drive."""

    auto = "auto"
    poisson = "poisson"
    bernoulli = "bernoulli"
    gaussian = "gaussian"


class Features(Choice):
    """What the states are fitted to."""

    auto = "auto"
    glm = "glm"
    bandpower = "bandpower"
    tde = "tde"


class Covariance(Choice):
    auto = "auto"
    full = "full"
    diag = "diag"


class Link(Choice):
    """Link of the Poisson observation model."""

    softplus = "softplus"
    exp = "exp"
    sigmoid = "sigmoid"


def parse_range(text: str) -> list[int]:
    """``"2-8"`` -> [2..8]; ``"2,4,6"`` -> [2, 4, 6]; ``ValueError`` in plain words otherwise."""
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            vals = list(range(lo, hi + 1))
        else:
            vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"cannot parse {text!r} (use 2-8 or 2,4,6)") from None
    if not vals or min(vals) < 1:
        raise ValueError(f"{text!r} gives no valid state counts (>= 1)")
    return vals


DEFAULT_BANDS = "delta=1-4,theta=4-8,alpha=8-13,beta=13-30"


def parse_bands(text: str) -> list[tuple[str, float, float]]:
    """``"alpha=8-13,beta=13-30"`` (names optional: ``"8-13,13-30"``) -> [(name, lo, hi)].

    Raises ``ValueError`` on malformed text or bands with ``lo >= hi`` or ``lo <= 0``.
    """
    out = []
    for part in (x.strip() for x in str(text).split(",") if x.strip()):
        name, _, rng = part.rpartition("=")
        try:
            lo, hi = (float(v) for v in rng.split("-", 1))
        except ValueError:
            raise ValueError(f"cannot parse band {part!r} (use e.g. alpha=8-13)") from None
        if not 0 < lo < hi:
            raise ValueError(f"band {part!r} needs 0 < low < high (Hz)")
        out.append((name.strip() or f"{lo:g}-{hi:g}Hz", lo, hi))
    if not out:
        raise ValueError(f"no band in {text!r}")
    return out


def _bands(text: str) -> str:
    if not isinstance(text, str):
        raise ValueError(f"expected text such as alpha=8-13,beta=13-30, got {text!r}")
    parse_bands(text)
    return text


def _range(text: str) -> str:
    if not isinstance(text, str):
        raise ValueError(f"expected text such as 2-8 or 2,4,6, got {text!r}")
    parse_range(text)
    return text


def _states(value: int | str) -> int | str:
    """An integer >= 1 or ``"auto"`` (also as text)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value!r} is neither an integer nor 'auto'")
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is neither an integer nor 'auto'") from None
    if k < 1:
        raise ValueError(f"must be >= 1 or 'auto', got {k}")
    return k


PRIOR_HELP = ("Weight prior: none (each state's W free), gaussian (W_k ~ N(W0, sigma^2), shared W0 "
              "learned), onehot (W_k = class * strength, classes inh/none/exc with a learned "
              "prior table shared by states; exact per-pair conditional class posteriors).")
OBSERVATION_HELP = (
    "auto (spikes: poisson; calcium/other: gaussian), poisson, bernoulli (events = count > 0) or "
    "gaussian (identity link on z-scored traces; used for calcium unless deconvolved events are "
    "given as a spikes recording).")
JOINT_HELP = (
    "--joint: ONE model (shared W_k, biases, transitions, initial distribution, basis, prior) "
    "fitted to all selected recordings, e.g. trials or animals of one set recorded with the same "
    "channels; each recording keeps its own sequences (history and held-out blocks never cross "
    "recordings) and gets its own posterior and Viterbi path, parameters are written once under "
    "/joint. Needs identical channel labels in the same order and one observation model; a neuron "
    "is dropped only if silent in every recording. --per-recording (default): an independent "
    "model per recording.")


@dataclass(frozen=True)
class StatesParams(StageParams):
    """HMM-GLM state switching, per recording or jointly."""

    stage = "states"

    states: int | str = param(5, "Number of states, or 'auto' (held-out CV over --states-range).",
                              check=_states, short="-k", metavar="INT|auto")
    states_range: str = param("2-8", "Candidates for --states auto: 2-8 or 2,4,6.", check=_range,
                              metavar="LIST")
    prior: Prior = param(Prior.none, PRIOR_HELP)
    observation: Observation = param(Observation.auto, OBSERVATION_HELP)
    link: Link = param(Link.softplus, "Poisson link: softplus, exp, or sigmoid (rate-capped, as in "
                       "Li et al. 2024).")
    rate_cap: float = param(5.0, "Maximum rate of the sigmoid link.", unit="counts/bin", gt=0)
    history: float | None = param(
        None, "Span of the normalised exponential history basis, converted to whole bins with "
        "each recording's bin width (at least 1 bin); default: 5 bins.", unit="s", gt=0,
        metavar="SECONDS")
    decay: float = param(0.0, "Time constant of the basis; 0 = half the history. With "
                         "--learn-basis, the starting value.", unit="s", ge=0)
    learn_basis: bool = param(
        False, "Learn the basis decay tau inside EM (one tau shared by all neurons and states; "
        "Newton steps in log tau after each M-step, bounded to 0.05 bins .. 100 x the history). Use when the "
        "history time scale is unknown; the learned tau, basis and its trace are saved.",
        flag="--learn-basis/--fixed-basis")
    self_history: bool = param(True, "Let each neuron's own history drive it.",
                               flag="--self-history/--no-self-history")
    restarts: int = param(3, "EM restarts (k-means initialisations drawn from --seed).", ge=1)
    max_iter: int = param(100, "EM iteration cap.", ge=1)
    tol: float = param(1e-5, "Convergence: relative change of the EM objective.", ge=0)
    mstep_iter: int = param(25, "Cap on Newton steps per M-step (each (state, neuron) GLM stops "
                            "on its own Newton decrement).", ge=1)
    sticky: float = param(10.0, "Extra Dirichlet pseudo-count on self-transitions.", ge=0)
    sigma: float = param(0.1, "Gaussian prior sd of W_k around W0; 0 = learn it.", ge=0)
    l2: float = param(1e-2, "Ridge on W for --prior none.", ge=0)
    test_fraction: float = param(0.2, "Last fraction of every trial held out for the bits/spike "
                                 "score.", ge=0, lt=1)
    folds: int = param(3, "Time-block folds for --states auto.", ge=2)
    trial_duration: float = param(
        0.0, "Duration of each trial when a recording holds equal-length trials back to back, "
        "converted to bins with the recording's bin width (0: the recording's meta "
        "sequence_length, else one sequence).", unit="s", ge=0)
    recordings: tuple[str, ...] = param((), "Recording ids to fit (repeat or comma-separate; "
                                        "default all).")
    jobs: int = param(1, "Parallel processes for the --states auto scan (candidates x folds; -1: "
                      "all cores). Results do not depend on it.", check=check_jobs, short="-j")
    # -- Gaussian HMM on oscillation features (EEG/MEG/LFP) --------------------------------------
    features: Features = param(
        Features.auto, "Model: glm (HMM-GLM on the traces), bandpower (Gaussian HMM on log "
        "band-power envelopes per channel and band, in --window windows), tde (Gaussian HMM on the "
        "time-delay embedded signal, +-embed lags, PCA-reduced: osl-dynamics / HMM-MAR), auto "
        "(bandpower for EEG recordings, glm otherwise).")
    bands: str = param(DEFAULT_BANDS, "Frequency bands for bandpower features and the power maps: "
                       "name=lo-hi,...", unit="Hz", check=_bands, metavar="BANDS")
    window: float = param(0.1, "bandpower: window over which band power is averaged; one model "
                          "time step.", unit="s", gt=0)
    embed_span: float = param(
        0.028, "tde: span of the time-delay embedding on each side of every sample, converted to "
        "whole samples with the recording's rate (0.028 s: 7 lags at 250 Hz, as osl-dynamics' 15 "
        "embeddings).", unit="s", ge=0)
    pca: int = param(0, "Principal components kept (0: tde 2 x channels, bandpower all features).",
                     ge=0)
    covariance: Covariance = param(Covariance.auto, "Gaussian state covariance: full, diag, or auto "
                                   "(tde full, bandpower diag).")
    min_dwell: float = param(0.0, "Minimum time a state lasts once entered (exact, by an expanded "
                             "state chain); 0 = none.", unit="s", ge=0)
    joint: bool = param(False, JOINT_HELP, flag="--joint/--per-recording")
    # -- former options in bins, kept (hidden) for one release ----------------------------------
    lags: int | None = param(None, "History length of the basis.", unit="bins", ge=1,
                             deprecated="--history (seconds)")
    tau: float | None = param(None, "Decay of the basis.", unit="bins", ge=0,
                              deprecated="--decay (seconds)")
    trial_length: int | None = param(None, "Length of each trial.", unit="bins", ge=0,
                                     deprecated="--trial-duration (seconds)")
    embed: int | None = param(None, "tde: lags on each side of every sample.", unit="samples",
                              ge=0, deprecated="--embed-span (seconds)")

    def check(self) -> None:
        for new, old in (("history", "lags"), ("decay", "tau"), ("trial_duration", "trial_length"),
                         ("embed_span", "embed")):
            if getattr(self, old) is not None and getattr(self, new) != self.spec(new).default:
                raise ParamError(old, f"give {new} (seconds) or its former form {old} (bins), "
                                      "not both")

    def in_bins(self, fs: float) -> TimeBins:
        """The history span, basis decay and trial length in bins of a recording sampled at
        ``fs`` Hz (the former bin-valued fields win when set)."""
        return time_bins(self.to_dict(), fs)


@dataclass(frozen=True)
class TimeBins:
    """The stage's time parameters in bins of one recording, with the seconds they came from.

    Attributes
    ----------
    lags : int
        History span (bins, >= 1).
    tau : float
        Basis decay (bins, > 0).
    trial : int
        Trial length (bins); 0 = from the recording's meta, or one sequence.
    dt : float
        Bin width (s).
    """

    lags: int
    tau: float
    trial: int
    dt: float

    def provenance(self) -> dict[str, float | int]:
        """Both units, as recorded in each output group (``@history_bins``, ``@history_s``...)."""
        out: dict[str, float | int] = {
            "@bin_width_s": self.dt, "@history_bins": self.lags, "@history_s": self.lags * self.dt,
            "@decay_bins": self.tau, "@decay_s": self.tau * self.dt}
        if self.trial:
            out.update({"@trial_bins": self.trial, "@trial_s": self.trial * self.dt})
        return out


DEFAULT_LAGS = 5


def time_bins(p: Mapping[str, Any], fs: float) -> TimeBins:
    """:class:`TimeBins` from a parameter dict (``StatesParams.to_dict()``) and a rate ``fs`` (Hz).

    Seconds convert as ``round(seconds * fs)`` (history and trial) and ``seconds * fs`` (decay);
    a trial duration that is not a whole number of bins (to 1e-6) is a :class:`ParamError`.
    """
    if not (fs > 0 and math.isfinite(fs)):
        raise ParamError("", f"the recording has no valid sampling rate (fs = {fs})")
    if p.get("lags") is not None:
        lags = int(p["lags"])
    elif p.get("history") is not None:
        lags = max(1, int(round(float(p["history"]) * fs)))
    else:
        lags = DEFAULT_LAGS
    if p.get("tau") is not None:
        tau = float(p["tau"]) or lags / 2.0
    else:
        tau = float(p.get("decay") or 0.0) * fs or lags / 2.0
    if p.get("trial_length") is not None:
        trial = int(p["trial_length"])
    else:
        exact = float(p.get("trial_duration") or 0.0) * fs
        trial = int(round(exact))
        if abs(exact - trial) > 1e-6 * max(1.0, exact) or (exact > 0 and trial == 0):
            raise ParamError("trial_duration", f"{p['trial_duration']:g} s is {exact:.6g} bins at "
                                               f"{fs:g} Hz, not a whole number of bins")
    return TimeBins(lags, tau, trial, 1.0 / fs)
