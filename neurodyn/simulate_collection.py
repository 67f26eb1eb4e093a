"""A stand-in for the Homogenized C. elegans collection in its published parquet layout.

:func:`simulate_worms` draws worms whose labelled neurons include planted functional groups
shared across worms (pure: arrays in, arrays out); :func:`write_collection_parquet` streams
them into the long-format parquet of ``shared/data/FORMATS.md`` section 1.1 (one row per worm x
neuron, the published columns), one row group per worm, so that a 900-worm file is written in
the memory of one worm and read back by the real reader
(:func:`neurodyn.io.readers.celegans_collection.read_collection_parquet`).

Per source set the worm count and mean (labelled, recorded) neurons are the published ones
(FORMATS.md table); native sampling intervals are rough guesses used only for the
``original_*`` columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from neurodyn.errors import InputError
from neurodyn.names import CANONICAL_NEURONS
from neurodyn.params import ParamError
from neurodyn.progress import progress

#: dataset -> (worms, mean labelled neurons, mean recorded neurons, native dt in s (approximate))
SOURCE_DATASETS: dict[str, tuple[int, int, int, float]] = {
    "Kato2015": (12, 42, 127, 0.344),
    "Nichols2017": (44, 34, 108, 0.344),
    "Skora2018": (12, 46, 129, 0.344),
    "Kaplan2020": (19, 36, 114, 0.344),
    "Nejatbakhsh2020": (21, 173, 175, 0.25),
    "Yemini2021": (49, 110, 110, 0.25),
    "Uzel2022": (6, 50, 138, 0.25),
    "Dag2023": (7, 100, 143, 0.6),
    "Leifer2023": (103, 63, 67, 0.167),
    "Lin2023": (577, 8, 8, 0.25),
    "Flavell2023": (40, 88, 136, 0.6),
    "Venkatachalam2024": (22, 187, 187, 0.5),
}
RESAMPLE_DT = 0.333  # s, the collection's resample_dt (about 3 Hz)


@dataclass(frozen=True)
class CollectionTruth:
    """What :func:`simulate_worms` planted.

    Attributes
    ----------
    groups : list of list of str
        Canonical neuron names of each planted group.
    segment_s : float
        Group ``g`` is active while ``floor(t / segment_s) % n_groups == g`` (t in s).
    """

    groups: list[list[str]]
    segment_s: float

    def membership(self, labels: Sequence[str]) -> np.ndarray:
        """Group index per neuron name (-1 = background), (N,) int."""
        where = {n: g for g, names in enumerate(self.groups) for n in names}
        return np.array([where.get(x, -1) for x in labels], dtype=np.int64)

    def to_json(self) -> str:
        return json.dumps({"groups": self.groups, "segment_s": self.segment_s})

    @classmethod
    def from_json(cls, text: str | bytes) -> CollectionTruth:
        d = json.loads(text)
        return cls(groups=[list(g) for g in d["groups"]], segment_s=float(d["segment_s"]))


def allocate_worms(n_worms: int, datasets: Sequence[str] | None = None) -> dict[str, int]:
    """Split ``n_worms`` over source sets in proportion to their published worm counts.

    Largest-remainder rounding, so 900 worms give (nearly) the published counts; with
    ``datasets`` only those sets are used.
    """
    names = list(datasets) if datasets else list(SOURCE_DATASETS)
    bad = [d for d in names if d not in SOURCE_DATASETS]
    if bad:
        raise ParamError("datasets", f"unknown source sets {bad}; one of {', '.join(SOURCE_DATASETS)}")
    if n_worms < 1:
        raise ParamError("worms", f"must be at least 1, got {n_worms}")
    w = np.array([SOURCE_DATASETS[d][0] for d in names], dtype=float)
    share = n_worms * w / w.sum()
    counts = np.floor(share).astype(int)
    for k in np.argsort(-(share - counts), kind="stable")[: n_worms - counts.sum()]:
        counts[k] += 1
    return {d: int(c) for d, c in zip(names, counts) if c > 0}


def _transients(rng: np.random.Generator, shape: tuple[int, int], dt: float, rate_hz: float,
                tau_s: float) -> np.ndarray:
    """Non-negative calcium-like transients (T, n): sparse gamma spikes through a rise-decay
    kernel ``exp(-t/tau) - exp(-t/(0.23 tau))``, as two first-order recursive filters."""
    amp = rng.gamma(4.0, 0.5, size=shape) * (rng.random(shape) < rate_hz * dt)
    slow, fast = np.exp(-dt / tau_s), np.exp(-dt / (0.23 * tau_s))
    return lfilter([1.0], [1.0, -slow], amp, axis=0) - lfilter([1.0], [1.0, -fast], amp, axis=0)


def simulate_worms(
    n_worms: int,
    *,
    datasets: Sequence[str] | None = None,
    frames: tuple[int, int] = (1000, 3000),
    n_groups: int = 4,
    group_size: int = 8,
    segment_s: float = 60.0,
    noise: float = 0.3,
    seed: int = 0,
) -> tuple[Iterator[dict], CollectionTruth]:
    """Simulate a collection worm by worm (an iterator, so memory stays one worm).

    Every worm labels ``n_lab`` canonical neurons (around its source set's mean, drawn with a
    fixed popularity over the 300 names, so common neurons are labelled in most worms) and
    records ``n_rec - n_lab`` unlabelled ROIs. A planted group's labelled members follow one
    shared transient train while the group is active (see :class:`CollectionTruth`); otherwise
    every neuron follows its own weaker transients. Traces are z-scored (the collection's
    ``standard`` normalisation).

    Parameters
    ----------
    n_worms : int
        Split over source sets by :func:`allocate_worms`.
    frames : (int, int)
        Range of resampled frames per worm (at ``RESAMPLE_DT``).
    n_groups, group_size : int
        Planted groups, drawn from the most popular neurons.
    segment_s : float
        Length of one group's active stretch; groups take turns.

    Returns
    -------
    worms : iterator of dict
        One per worm: ``source_dataset``, ``worm``, ``neurons`` (names; unlabelled ones are
        numeric strings), ``slots`` (N,), ``labelled`` (N,) bool, ``calcium`` (T, N) float32,
        ``time`` (T,), ``original_calcium`` (To, N) float32, ``original_time`` (To,).
    truth : CollectionTruth
    """
    lo, hi = frames
    if not 10 <= lo <= hi:
        raise ParamError("frames", f"need 10 <= min <= max, got {lo}-{hi}")
    if n_groups < 1 or group_size < 2 or n_groups * group_size > len(CANONICAL_NEURONS) // 2:
        raise ParamError("groups", f"{n_groups} groups of {group_size} neurons do not fit")
    alloc = allocate_worms(n_worms, datasets)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(CANONICAL_NEURONS))  # popularity rank -> slot
    log_pop = np.empty(len(CANONICAL_NEURONS))
    log_pop[order] = -1.5 * np.log1p(np.arange(len(CANONICAL_NEURONS)) / 20.0)
    planted = order[: n_groups * group_size]
    groups = [sorted(CANONICAL_NEURONS[s] for s in planted[g::n_groups]) for g in range(n_groups)]
    truth = CollectionTruth(groups=groups, segment_s=float(segment_s))
    group_of = np.full(len(CANONICAL_NEURONS), -1)
    for g in range(n_groups):
        group_of[planted[g::n_groups]] = g

    def worms() -> Iterator[dict]:
        for ds, count in alloc.items():
            _, n_lab_mean, n_rec_mean, dt_orig = SOURCE_DATASETS[ds]
            for w in range(count):
                wrng = np.random.default_rng([seed, list(SOURCE_DATASETS).index(ds), w])
                yield _worm(wrng, ds, f"worm{w}", n_lab_mean, n_rec_mean, dt_orig, lo, hi,
                            log_pop, group_of, n_groups, segment_s, noise)

    return worms(), truth


def _worm(rng, ds, name, n_lab_mean, n_rec_mean, dt_orig, lo, hi, log_pop, group_of, n_groups,
          segment_s, noise) -> dict:
    n_slots = len(log_pop)
    n_lab = int(np.clip(round(n_lab_mean * rng.uniform(0.85, 1.15)), 2, n_slots // 2))
    n_unl = max(0, int(round((n_rec_mean - n_lab_mean) * rng.uniform(0.85, 1.15))))
    gumbel = log_pop - np.log(-np.log(rng.random(n_slots)))
    ranked = np.argsort(-gumbel)
    lab_slots = np.sort(ranked[:n_lab])
    unl_slots = np.sort(rng.choice(ranked[n_lab:], size=min(n_unl, n_slots - n_lab), replace=False))
    slots = np.concatenate([lab_slots, unl_slots])
    T = int(rng.integers(lo, hi + 1))
    t = np.arange(T) * RESAMPLE_DT
    x = 0.4 * _transients(rng, (T, slots.size), RESAMPLE_DT, 0.05, 2.0)
    active = (np.floor(t / segment_s) % n_groups).astype(int)
    for g in range(n_groups):
        members = np.flatnonzero(group_of[lab_slots] == g)
        if members.size:
            shared = _transients(rng, (T, 1), RESAMPLE_DT, 0.15, 2.0)[:, 0] * (active == g)
            x[:, members] += shared[:, None] * rng.uniform(0.8, 1.2, members.size)
    x += noise * rng.standard_normal(x.shape)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-12)
    duration = T * RESAMPLE_DT
    to = np.arange(int(duration / dt_orig)) * dt_orig
    orig = np.stack([np.interp(to, t, x[:, k]) for k in range(slots.size)], axis=1)
    neurons = [CANONICAL_NEURONS[s] for s in lab_slots] + [str(k) for k in range(unl_slots.size)]
    return dict(
        source_dataset=ds, worm=name, neurons=neurons, slots=slots,
        labelled=np.arange(slots.size) < lab_slots.size, calcium=x.astype(np.float32),
        time=t.astype(np.float32), original_calcium=orig.astype(np.float32),
        original_time=to.astype(np.float32),
    )


def _worm_table(w: dict):  # noqa: ANN202 (a pyarrow Table)
    """One worm -> the published columns, one row per neuron."""
    import pyarrow as pa

    n = len(w["neurons"])
    T, To = w["calcium"].shape[0], w["original_calcium"].shape[0]

    def lists(values: np.ndarray, length: int) -> pa.Array:
        offsets = pa.array(np.arange(n + 1, dtype=np.int32) * length)
        return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(values).ravel()))

    ds = w["source_dataset"]
    return pa.table({
        "source_dataset": pa.array([ds] * n),
        "raw_data_file": pa.array([f"opensource_neural_data/{ds}/simulated.mat"] * n),
        "worm": pa.array([w["worm"]] * n),
        "neuron": pa.array(w["neurons"]),
        "slot": pa.array(w["slots"].astype(np.int64)),
        "is_labeled_neuron": pa.array(w["labelled"]),
        "smooth_method": pa.array(["moving"] * n),
        "interpolate_method": pa.array(["linear"] * n),
        "normalization_method": pa.array(["standard"] * n),
        "original_calcium_data": lists(w["original_calcium"].T, To),
        "calcium_data": lists(w["calcium"].T, T),
        "original_time_in_seconds": lists(np.tile(w["original_time"], n), To),
        "time_in_seconds": lists(np.tile(w["time"], n), T),
        "original_max_timesteps": pa.array(np.full(n, To, dtype=np.int64)),
        "max_timesteps": pa.array(np.full(n, T, dtype=np.int64)),
    })


def write_collection_parquet(path: str | Path, n_worms: int, *, seed: int = 0,
                             progress_desc: str = "simulate", **kw) -> CollectionTruth:
    """Simulate ``n_worms`` (:func:`simulate_worms`, keywords passed on) into one parquet file.

    Written to ``path`` as it is given (callers handle temporary names); one row group per
    worm. The planted truth is stored in the schema metadata under ``neurodyn_truth`` (JSON of
    :class:`CollectionTruth`); the published columns are untouched.
    """
    import pyarrow.parquet as pq


    worms, truth = simulate_worms(n_worms, seed=seed, **kw)
    writer = None
    try:
        for w in progress(worms, desc=progress_desc, total=n_worms, unit="worm"):
            table = _worm_table(w)
            if writer is None:
                meta = {b"neurodyn_truth": truth.to_json().encode()}
                writer = pq.ParquetWriter(str(path), table.schema.with_metadata(meta))
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
    finally:
        if writer is not None:
            writer.close()
    return truth


def read_truth(path: str | Path) -> CollectionTruth:
    """The planted truth of a file written by :func:`write_collection_parquet`."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(str(path)).metadata or {}
    if b"neurodyn_truth" not in meta:
        raise InputError(path, "no neurodyn_truth metadata (not a neurodyn simulation)")
    return CollectionTruth.from_json(meta[b"neurodyn_truth"])
