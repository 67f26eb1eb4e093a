"""Preprocessing of recordings: the steps and the ``preprocess`` stage.

The array kernels live in :mod:`neurodyn.signal.kernels`.

Steps run in this fixed order; each runs only when its parameter asks for it:

1. ``crop``       keep ``"START:STOP"`` seconds, or the intervals of events with that label
                  (e.g. ``eyes_closed``); several intervals are concatenated, keeping their
                  time stamps (the gaps show in ``time``).
2. ``gaps``       missing samples (mask False / NaN): runs up to ``max_gap`` seconds are linearly
                  interpolated and marked observed; longer runs stay masked (their values are
                  filled by interpolation only so that filters see finite numbers).
3. ``reference``  EEG only: subtract the average of all EEG channels (``"average"``) or of
                  the named channels (``"A1,A2"``) from every EEG-type channel.
4. ``filter``     EEG only: zero-phase Butterworth band-pass (``bandpass="LO,HI"`` Hz; one
                  side may be empty for high/low-pass; order ``filter_order``) with
                  ``scipy.signal.sosfiltfilt``, then IIR notch(es) (``notch="50"`` or
                  ``"50,100"``; quality ``notch_q``) with ``filtfilt``.
5. ``detrend``    ``"linear"`` or ``"constant"`` (``scipy.signal.detrend``).
6. ``resample``   to ``fs`` Hz: regular recordings with a rational rate ratio use
                  polyphase filtering (``scipy.signal.resample_poly``); spike counts with an
                  integer down-sampling factor are summed into wider bins (counts kept);
                  irregular (calcium) recordings are linearly interpolated.
7. ``normalize``  ``"zscore"`` (per channel, observed samples) or ``"dff"`` (``(F - F0)/F0``,
                  F0 the ``dff_percentile`` percentile per channel; not with ``detrend``).
8. ``derivative`` replace traces by their time derivative (``numpy.gradient``, units/s).

Recordings with gaps in ``time`` (after an interval crop) are processed per contiguous
segment. Every step is channel-wise, so steps work in float64 on blocks of
:data:`~neurodyn.signal.kernels.CHANNEL_BLOCK` channels and store float32
(:func:`~neurodyn.signal.kernels.by_channels`): the peak memory of a
step is about the float32 input plus its output, not several float64 copies of the recording. What each step did is appended to ``meta["preprocess"]`` of every recording and
summarised in the output's root attribute ``preprocess_log``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal

from neurodyn.errors import InputError
from neurodyn.guard import check_alloc
from neurodyn.io import store
from neurodyn.params import ParamError, parse_crop, parse_floats
from neurodyn.progress import progress
from neurodyn.recording import Recording
from neurodyn.signal.kernels import (
    apply_sos,
    bandpass_sos,
    by_channels,
    channel_mean,
    derivative,
    dff_baseline,
    fill_gaps,
    is_regular,
    notch,
    rate_ratio,
    rebin_sum,
    resample_linear,
    resample_polyphase,
    segments,
    zscore,
)
from neurodyn.signal.params import PreprocessParams
from neurodyn.signal.recordings import concat_intervals

STEPS = ("crop", "gaps", "reference", "filter", "detrend", "resample", "normalize", "derivative")


def _src(rec: Recording) -> str:
    return rec.id or rec.source_file


def _with(rec: Recording, x: np.ndarray, **changes: Any) -> Recording:
    return rec.replace(traces=np.asarray(x, dtype=np.float32), **changes)


def _per_segment(rec: Recording, fn: Any) -> np.ndarray:
    """``fn(x_segment, slice)`` on each contiguous segment, by channel blocks (float32 out)."""
    segs = segments(rec.times, rec.fs)

    def block(xb: np.ndarray, cols: slice) -> np.ndarray:
        for sl in segs:
            xb[sl] = fn(xb[sl], sl)
        return xb

    return by_channels(rec.data, block)


# == the steps ============================================================================
def step_crop(rec: Recording, crop: str) -> tuple[Recording, dict]:
    if ":" in crop:
        start, stop = parse_crop(crop)
        out = rec.crop(start, stop)
        return out, {"step": "crop", "start": start, "stop": stop,
                     "samples_kept": out.n_samples, "samples_before": rec.n_samples}
    ev = rec.events[rec.events["label"].astype(str).str.strip() == crop.strip()]
    if ev.empty:
        labels = sorted(set(rec.events["label"].astype(str)))[:10]
        raise InputError(_src(rec), f"no events labelled {crop!r} to crop to (labels: {labels})")
    out = concat_intervals(rec, ev)
    return out, {"step": "crop", "label": crop, "intervals": len(out.meta["segments"]),
                 "samples_kept": out.n_samples, "samples_before": rec.n_samples}


def step_gaps(rec: Recording, max_gap_s: float) -> tuple[Recording, dict]:
    if rec.mask is None:
        return rec, {"step": "gaps", "interpolated": 0, "masked": 0}
    max_gap = int(np.floor(max_gap_s * rec.fs + 1e-9))
    obs = rec.mask.copy()
    segs = segments(rec.times, rec.fs)
    n_i = 0

    def block(xb: np.ndarray, cols: slice) -> np.ndarray:
        nonlocal n_i
        for sl in segs:
            xb[sl], obs[sl, cols], n, _ = fill_gaps(xb[sl], obs[sl, cols], max_gap)
            n_i += n
        return xb

    x = by_channels(rec.data, block)
    n_m = int((~obs).sum())
    out = _with(rec, x, mask=None if obs.all() else obs)
    return out, {"step": "gaps", "max_gap_s": max_gap_s, "max_gap_samples": max_gap,
                 "interpolated": int(n_i), "masked": n_m}


def _eeg_channels(rec: Recording) -> np.ndarray:
    info = rec.channel_info
    if info is not None and "type" in info.columns:
        return np.flatnonzero(info["type"].astype(str).to_numpy() == "eeg")
    return np.arange(rec.n_channels)


def step_reference(rec: Recording, reference: str) -> tuple[Recording, dict]:
    targets = _eeg_channels(rec)
    if targets.size == 0:
        raise InputError(_src(rec), "re-referencing needs EEG channels; channel_info lists none")
    if reference.strip().lower() == "average":
        ref = targets
        names = "average"
    else:
        wanted = [x.strip() for x in reference.split(",") if x.strip()]
        index = {name: i for i, name in enumerate(rec.labels)}
        unknown = [w for w in wanted if w not in index]
        if unknown:
            raise ParamError("reference", f"{_src(rec)} has no channels {unknown[:5]}")
        ref = np.array([index[w] for w in wanted])
        names = wanted
    r = channel_mean(rec.data, np.asarray(ref))
    is_target = np.zeros(rec.n_channels, dtype=bool)
    is_target[targets] = True
    y = by_channels(rec.data, lambda xb, cols: xb - r[:, None] * is_target[cols])
    return _with(rec, y), {"step": "reference", "reference": names, "channels": int(targets.size)}


def step_filter(rec: Recording, bandpass: list[float | None], notches: list[float],
                order: int, q: float) -> tuple[Recording, dict]:
    rep: dict[str, Any] = {"step": "filter"}
    try:
        sos = bandpass_sos(rec.fs, *bandpass, order=order) if bandpass else None

        def one(xs: np.ndarray, sl: slice) -> np.ndarray:
            if sos is not None:
                xs = apply_sos(xs, sos)
            for f in notches:
                xs = notch(xs, rec.fs, f, q)
            return xs

        x = _per_segment(rec, one)
    except ValueError as exc:
        raise ParamError("bandpass" if bandpass else "notch", f"{_src(rec)}: {exc}") from None
    if bandpass:
        rep.update(bandpass_hz=bandpass, order=order, method="butterworth sosfiltfilt")
    if notches:
        rep.update(notch_hz=notches, notch_q=q, method_notch="iirnotch filtfilt")
    return _with(rec, x), rep


def step_detrend(rec: Recording, kind: str) -> tuple[Recording, dict]:
    y = _per_segment(rec, lambda xs, sl: scipy.signal.detrend(xs, axis=0, type=kind))
    return _with(rec, y), {"step": "detrend", "type": kind}


def step_resample(rec: Recording, target: float) -> tuple[Recording, dict]:
    if abs(target - rec.fs) < 1e-9 * rec.fs and (rec.time is None or is_regular(rec.time, rec.fs)):
        return rec, {"step": "resample", "method": "none (already at rate)", "fs": target}
    t = rec.times
    ratio = rate_ratio(rec.fs, target)
    regular = all(is_regular(t[sl], rec.fs) for sl in segments(t, rec.fs))
    counts = rec.modality == "spikes" and rec.units == "counts"
    polyphase = regular and ratio is not None
    if polyphase:
        up, down = ratio
        rebin = counts and up == 1
        method = (f"sum of {down} bins (counts kept)" if rebin
                  else f"polyphase resample_poly up={up} down={down}")
    else:
        method = "linear interpolation"
    segs = segments(t, rec.fs)
    n_after = sum(np.floor((t[sl][-1] - t[sl][0]) * target) + 1 for sl in segs if sl.stop > sl.start)
    check_alloc((n_after, rec.n_channels), np.float64, "the resampled traces", param="fs",
                copies=2)
    times: list[np.ndarray] = []

    def one(xs: np.ndarray, sl: slice) -> np.ndarray:
        if not polyphase:
            return resample_linear(t[sl], xs, target)[1]
        if rebin:
            return rebin_sum(xs, down)
        y = resample_polyphase(xs, up, down)
        return y * (rec.fs / target) if counts else y  # counts: expected count per new bin

    def block(xb: np.ndarray, cols: slice) -> np.ndarray:
        parts = [one(xb[sl], sl) for sl in segs]
        if not times:  # the new time stamps, once
            for sl, part in zip(segs, parts):
                times.append(t[sl][0] + np.arange(part.shape[0]) / target)
        return np.concatenate(parts)

    y = by_channels(rec.data, block)
    new_t = np.concatenate(times) if times else t[:0]
    masks = []
    for sl, grid in zip(segs, times) if rec.mask is not None else ():
        ts = t[sl]
        if regular:
            near = np.clip(np.round((grid - ts[0]) * rec.fs).astype(int), 0, len(ts) - 1)
        else:
            near = np.clip(np.searchsorted(ts, grid), 0, len(ts) - 1)
        masks.append(rec.mask[sl][near])
    mask = np.concatenate(masks) if masks else None
    one_segment = len(times) == 1
    out = _with(rec, y, fs=float(target), time=None if one_segment and rec.time is None else new_t,
                mask=mask, meta={**rec.meta, "resampled_from_hz": rec.fs})
    return out, {"step": "resample", "from_hz": rec.fs, "to_hz": target, "method": method,
                 "samples_before": rec.n_samples, "samples_after": out.n_samples}


def step_normalize(rec: Recording, how: str, percentile: float) -> tuple[Recording, dict]:
    obs = rec.mask
    if how == "zscore":
        y = by_channels(rec.data, lambda xb, c: zscore(xb, None if obs is None else obs[:, c]))
        return _with(rec, y, units="z"), {"step": "normalize", "method": "zscore"}
    baselines = []

    def block(xb: np.ndarray, cols: slice) -> np.ndarray:
        f0b = dff_baseline(xb, percentile, None if obs is None else obs[:, cols])
        zero = np.abs(f0b) < 1e-12
        if zero.any():
            names = [rec.labels[cols.start + j] for j in np.flatnonzero(zero)[:5]]
            raise InputError(_src(rec), f"dF/F baseline F0 is zero in channels {names}; "
                                        "use --normalize zscore or offset the traces")
        baselines.append(f0b)
        return (xb - f0b) / f0b

    y = by_channels(rec.data, block)
    f0 = np.concatenate(baselines)
    return _with(rec, y, units="dF/F"), {
        "step": "normalize", "method": "dff", "percentile": percentile,
        "f0_median": float(np.median(f0))}


def step_derivative(rec: Recording) -> tuple[Recording, dict]:
    t = rec.times
    y = _per_segment(rec, lambda xs, sl: derivative(xs, t[sl]))
    return _with(rec, y, units=f"{rec.units}/s"), {"step": "derivative", "method": "numpy.gradient"}


def preprocess_recording(rec: Recording, params: PreprocessParams | None = None,
                         **kw: Any) -> Recording:
    """Apply the requested steps to one recording in the fixed order of :data:`STEPS`.

    ``params`` (defaults when omitted; keywords override single fields) are the
    :class:`~neurodyn.signal.params.PreprocessParams`. Returns a new Recording whose
    ``meta["preprocess"]`` lists one report per step run.
    """
    p = PreprocessParams.build(params, **kw)
    rec = rec.load()
    log: list[dict] = []
    if p.crop:
        rec, r = step_crop(rec, p.crop)
        log.append(r)
    if rec.mask is not None:
        rec, r = step_gaps(rec, p.max_gap)
        log.append(r)
    eeg = rec.modality == "eeg"
    band = parse_floats(p.bandpass)
    notches = [f for f in parse_floats(p.notch) if f is not None]
    if p.reference:
        if eeg:
            rec, r = step_reference(rec, p.reference)
        else:
            r = {"step": "reference", "skipped": f"modality {rec.modality} is not eeg"}
        log.append(r)
    if band or notches:
        if eeg:
            rec, r = step_filter(rec, band, notches, p.filter_order, p.notch_q)
        else:
            r = {"step": "filter", "skipped": f"modality {rec.modality} is not eeg"}
        log.append(r)
    if p.detrend:
        rec, r = step_detrend(rec, p.detrend.value)
        log.append(r)
    if p.fs:
        rec, r = step_resample(rec, p.fs)
        log.append(r)
    if p.normalize.value != "none":
        rec, r = step_normalize(rec, p.normalize.value, p.dff_percentile)
        log.append(r)
    if p.derivative:
        rec, r = step_derivative(rec)
        log.append(r)
    prior = list(rec.meta.get("preprocess", []))
    return rec.replace(meta={**rec.meta, "preprocess": prior + log})


def run(input_path: str | os.PathLike, out: str | os.PathLike,
        params: PreprocessParams | None = None, *, seed: int = 0, **kw: Any) -> Path:
    """The ``preprocess`` stage: read a recordings file, apply the steps, write a new one.

    Parameters
    ----------
    input_path : path-like
        A recordings file (output of ``ingest`` or ``simulate``).
    out : path-like
        Output recordings file; connectomes and other root groups of the input (such as
        ``/ground_truth``) are copied unchanged.
    params : PreprocessParams, optional
        The stage parameters (defaults when omitted); keywords override single fields.
        Steps run in the order of :data:`STEPS`.
    seed : int
        Recorded only (every step is deterministic).

    Returns
    -------
    Path of the written file. Its root attribute ``preprocess_log`` (JSON) maps each
    recording id to the list of step reports; each recording's ``meta["preprocess"]`` too.
    """
    p = PreprocessParams.build(params, **kw)
    # each recording is loaded when it is processed
    recs = store.read_recordings(input_path, list(p.recordings) or None, lazy=True)
    with store.open_h5(input_path) as f:
        cons = [store.read_connectome(g) for g in f["connectome"].values()] if "connectome" in f else []
        # other root groups (e.g. /ground_truth of simulated data) are carried over unchanged
        carried = {k: store.read_tree(g) for k, g in f.items()
                   if k not in ("recordings", "connectome") and hasattr(g, "keys")}
    logs: dict[str, list] = {}

    def processed():  # one recording in memory at a time: each is written as it is done
        for rec in progress(recs, desc="preprocess"):
            n_before = len(rec.meta.get("preprocess", []))
            new = preprocess_recording(rec, p)
            logs[new.id] = new.meta["preprocess"][n_before:]
            yield new

    return store.write_recordings(
        out, processed(), cons, params={**p.to_dict(), "order": list(STEPS)}, inputs=[input_path],
        seed=seed, stage="preprocess",
        extra=lambda: {**carried, "@preprocess_log": json.dumps(logs)},
    )

