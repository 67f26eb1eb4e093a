"""MNE export: each EEG recording as ``<recording>_raw.fif`` with annotations.

Channels keep their names and types (``channel_info.type``, else EEG) and positions; data are
in volts. Annotations: the recording's events (their labels), the HMM-GLM Viterbi states
(``hmmglm_state/<k>``) and the bi-clustering states (``bicluster_state/<k>``), onsets in
seconds from the first sample. Read back with ``mne.io.read_raw_fif``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neurodyn.bicluster.result import PATH as BICLUSTER_PATH
from neurodyn.errors import InputError
from neurodyn.export.bundle import Bundle, Item, states_of
from neurodyn.hmmglm.result import PATH as STATES_PATH
from neurodyn.io.outputs import atomic_path


def write(bundle: Bundle, outdir: Path) -> list[Path]:
    eeg = [it for it in bundle.items if it.recording.modality == "eeg"]
    if not eeg:
        kinds = sorted({it.recording.modality for it in bundle.items})
        raise InputError(bundle.rundir, f"holds no EEG recording (it has {', '.join(kinds)}); "
                                        "--to mne exports EEG only")
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for item in eeg:
        raw = to_raw(item)
        path = outdir / f"{item.name}_raw.fif"
        with atomic_path(path, bundle.inputs) as tmp:
            fif = tmp.with_name(tmp.name + "_raw.fif")  # MNE wants its own file name ending
            try:
                raw.save(fif, overwrite=True, split_size="2GB", verbose="error")
                os.replace(fif, tmp)
            finally:
                fif.unlink(missing_ok=True)
        written.append(path)
    return written


def to_raw(item: Item):
    """The ``mne.io.RawArray`` of one EEG recording, annotated with events and states."""
    import mne

    rec = item.recording
    if rec.time is not None and np.ptp(np.diff(rec.times)) > 1e-6 / rec.fs:
        raise InputError(rec.id, "irregular time stamps; MNE needs a regular sampling rate")
    types = ["eeg"] * rec.n_channels
    info_df = rec.channel_info
    if info_df is not None and "type" in info_df.columns:
        valid = set(mne.io.get_channel_type_constants())
        types = [str(t) if str(t) in valid else "misc" for t in info_df["type"]]
    info = mne.create_info(list(rec.labels), sfreq=float(rec.fs), ch_types=types,
                           verbose="error")
    data = rec.data.T.astype(np.float64)
    if rec.mask is not None:
        data = np.where(rec.mask.T, data, 0.0)
    raw = mne.io.RawArray(data, info, first_samp=0, verbose="error")
    if info_df is not None and {"x", "y", "z"} <= set(info_df.columns):
        for ch, row in zip(raw.info["chs"], info_df[["x", "y", "z"]].to_numpy(float)):
            if np.all(np.isfinite(row)):
                ch["loc"][:3] = row
    t0 = float(rec.times[0])
    onset, duration, desc = [], [], []
    for row in rec.events.itertuples():
        onset.append(float(row.onset) - t0)
        duration.append(float(row.offset) - float(row.onset))
        desc.append(str(row.label))
    for prefix, ds, var in (("hmmglm_state", item.states, STATES_PATH),
                            ("bicluster_state", item.bicluster, BICLUSTER_PATH)):
        iv = states_of(ds, var, rec.fs)
        if iv is not None:
            onset += list(iv["start"] - t0)
            duration += list(iv["stop"] - iv["start"])
            desc += [f"{prefix}/{k}" for k in iv["state"]]
    if onset:
        raw.set_annotations(mne.Annotations(onset, duration, desc))
    return raw
