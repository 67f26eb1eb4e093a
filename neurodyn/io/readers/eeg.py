"""Scalp EEG through MNE-Python: EDF/EDF+, BDF, EEGLAB, BrainVision, FIF and the HBN layout.

Every reader returns one :class:`~neurodyn.recording.Recording` per file with modality
``"eeg"``, traces in volts (MNE's scaling), the file's channel names, ``channel_info``
(``type`` in eeg/ecg/eog/emg/misc..., electrode position ``x, y, z`` in metres where the file
or an applied montage has one) and the file's annotations as events (``onset``, ``offset =
onset + duration`` in seconds from the first sample, ``label``).

Trigger (stim) channels, such as BioSemi's ``Status``, are not kept as traces: their
codes become point events (label = the code) and ``meta["trigger_channels"]`` names them.

Data are read with ``preload=False`` and copied in chunks into one float32 array, so reading
needs about the float32 size of the recording plus one chunk, not MNE's float64 copy.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodyn.errors import InputError
from neurodyn.io.formats import register
from neurodyn.io.readers._util import is_hdf5, is_matlab_v5
from neurodyn.params import ParamError
from neurodyn.recording import Recording, empty_events
from neurodyn.signal.recordings import events_within

log = logging.getLogger(__name__)

CHUNK_SECONDS = 30.0
FIF_MAGIC = b"\x00\x00\x00\x64\x00\x00\x00\x1f\x00\x00\x00\x14"
HBN_EYES = {"20": "eyes_open", "30": "eyes_closed"}
_TYPE_PREFIX = re.compile(r"^(ECG|EKG|EOG|VEOG|HEOG|EMG)\b", re.IGNORECASE)


# -- content sniffing -----------------------------------------------------------------------
def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _sniff_edf(path: Path) -> bool:
    return _head(path, 8) == b"0       "


def _sniff_bdf(path: Path) -> bool:
    return _head(path, 8) == b"\xffBIOSEMI"


def _sniff_fif(path: Path) -> bool:
    head = _head(path, 12)
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            head = fh.read(12)
    return head == FIF_MAGIC


def _sniff_vhdr(path: Path) -> bool:
    first = _head(path, 64).decode("latin-1").lstrip("\ufeff\xef\xbb\xbf").strip()
    return first.startswith(("Brain Vision Data Exchange Header", "BrainVision Data Exchange Header"))


def _sniff_set(path: Path) -> bool:
    return is_matlab_v5(path) or is_hdf5(path)


# -- file checks MNE does not make ----------------------------------------------------------
def _check_edf_size(path: Path, bytes_per_sample: int) -> None:
    """Compare the EDF/BDF header's declared data size with the file size.

    MNE silently reads a truncated EDF as a shorter recording; we refuse it instead.
    """
    size = path.stat().st_size
    head = _head(path, 256)
    if len(head) < 256:
        raise InputError(path, f"truncated header ({size} bytes, EDF/BDF headers have >= 256)")
    try:
        header_bytes = int(head[184:192].decode("ascii").strip())
        n_records = int(head[236:244].decode("ascii").strip())
        n_signals = int(head[252:256].decode("ascii").strip())
    except ValueError:
        raise InputError(path, "malformed EDF/BDF header (non-numeric size fields)") from None
    if n_records == 0:
        raise InputError(path, "zero-length recording (the header declares 0 data records)")
    ext = _head(path, header_bytes)
    if len(ext) < header_bytes:
        raise InputError(path, f"truncated header: declares {header_bytes} bytes, file has {size}")
    off = 256 + n_signals * 216
    try:
        per_record = sum(
            int(ext[off + 8 * i: off + 8 * i + 8].decode("ascii").strip()) for i in range(n_signals)
        )
    except ValueError:
        raise InputError(path, "malformed EDF/BDF header (samples per record)") from None
    if n_records > 0:
        expected = header_bytes + n_records * per_record * bytes_per_sample
        if size < expected:
            raise InputError(
                path,
                f"truncated: the header declares {n_records} data records ({expected} bytes), "
                f"the file has {size} bytes",
            )


# -- generic conversion Raw -> Recording ----------------------------------------------------
def _infer_type(name: str, mne_type: str) -> str:
    """Channel type, refining MNE's default 'eeg' from name prefixes (ECG, EOG, EMG)."""
    if mne_type != "eeg":
        return mne_type
    m = _TYPE_PREFIX.match(name.strip())
    if not m:
        return mne_type
    key = m.group(1).upper()
    return {"EKG": "ecg", "VEOG": "eog", "HEOG": "eog"}.get(key, key.lower())


def _channel_info(raw: Any) -> pd.DataFrame:
    names = list(raw.ch_names)
    types = [_infer_type(n, t) for n, t in zip(names, raw.get_channel_types())]
    locs = np.array([ch["loc"][:3] for ch in raw.info["chs"]], dtype=np.float64)
    missing = ~np.isfinite(locs).all(axis=1) | (np.abs(locs).sum(axis=1) == 0)
    locs[missing] = np.nan
    return pd.DataFrame(
        {"channel": names, "type": types, "x": locs[:, 0], "y": locs[:, 1], "z": locs[:, 2]}
    )


def _events(raw: Any) -> pd.DataFrame:
    ann = raw.annotations
    if len(ann) == 0:
        return empty_events()
    onset = np.asarray(ann.onset, dtype=np.float64) - float(raw.first_time)
    return pd.DataFrame(
        {
            "onset": onset,
            "offset": onset + np.asarray(ann.duration, dtype=np.float64),
            "label": [str(d).strip() for d in ann.description],
        }
    )


def _stim_events(raw: Any) -> tuple[pd.DataFrame, list[str]]:
    """Trigger (stim) channels become point events labelled by their code; their names."""
    import mne

    names = [n for n, t in zip(raw.ch_names, raw.get_channel_types()) if t == "stim"]
    if not names:
        return empty_events(), []
    with mne.utils.use_log_level("ERROR"):
        found = mne.find_events(raw, stim_channel=names, shortest_event=1, consecutive=True)
    onset = (found[:, 0] - raw.first_samp) / raw.info["sfreq"] if len(found) else np.zeros(0)
    ev = pd.DataFrame({"onset": onset.astype(np.float64), "offset": onset.astype(np.float64),
                       "label": [str(int(c)) for c in found[:, 2]]})
    return ev, names


def read_chunked(raw: Any, spans: list[tuple[int, int]] | None = None,
                 chunk_seconds: float = CHUNK_SECONDS) -> np.ndarray:
    """Copy an MNE Raw's data into a float32 (T, N) array chunk by chunk.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        Opened with ``preload=False`` (or preloaded).
    spans : list of (start, stop) sample ranges, optional
        Read only these ranges, concatenated (default: everything).
    chunk_seconds : float
        Seconds read per call to ``raw.get_data``; peak extra memory is one float64 chunk.

    Returns
    -------
    array (T, N) float32, volts for EEG-like channels; T = total length of the spans.
    """
    n_times, n_ch = int(raw.n_times), len(raw.ch_names)
    spans = [(0, n_times)] if spans is None else spans
    out = np.empty((sum(b - a for a, b in spans), n_ch), dtype=np.float32)
    step = max(1, int(chunk_seconds * raw.info["sfreq"]))
    row = 0
    for start, stop in spans:
        for a in range(start, stop, step):
            b = min(stop, a + step)
            out[row:row + b - a] = raw.get_data(start=a, stop=b).T
            row += b - a
    return out


def interval_spans(intervals: pd.DataFrame, fs: float, n_times: int
                   ) -> tuple[list[tuple[int, int]], list[list[float]]]:
    """Sample ranges ``[a, b)`` of the samples ``k`` with ``onset <= k / fs < offset``.

    Returns the non-empty ranges and their ``[onset, offset]`` intervals (seconds).
    """
    spans, segs = [], []
    for on, off in zip(intervals["onset"], intervals["offset"]):
        a = max(0, int(np.ceil(on * fs - 1e-9)))
        b = min(n_times, int(np.ceil(off * fs - 1e-9)))
        if b > a:
            spans.append((a, b))
            segs.append([float(on), float(off)])
    return spans, segs


def _apply_montage(raw: Any, montage: str | None, path: Path) -> None:
    if not montage:
        return
    import mne

    try:
        mont = mne.channels.make_standard_montage(montage)
    except ValueError as exc:
        raise ParamError("reader_options", "montage: " + str(exc).splitlines()[0]) from None
    # Match names with the type prefix stripped ("EEG Fp1" -> "Fp1"), case-insensitively.
    by_lower = {n.lower(): n for n in mont.ch_names}
    positions = mont.get_positions()["ch_pos"]
    n_set = 0
    for ch in raw.info["chs"]:
        key = re.sub(r"^(EEG)\s+", "", ch["ch_name"].strip(), flags=re.IGNORECASE).lower()
        if key in by_lower:
            ch["loc"][:3] = positions[by_lower[key]]
            n_set += 1
    log.info("%s: montage %s placed %d of %d channels", path, montage, n_set, len(raw.ch_names))


def raw_to_recording(
    raw: Any,
    path: Path,
    *,
    dataset: str = "",
    subject: str | None = None,
    nan: str = "error",
    fmt: str = "",
    extra_events: pd.DataFrame | None = None,
    keep: pd.DataFrame | None = None,
    meta: dict | None = None,
) -> Recording:
    """Convert an opened MNE Raw into a Recording (see the module docstring).

    Parameters
    ----------
    raw : mne.io.BaseRaw
    path : Path
        Source file (named in errors, kept as ``source_file``).
    nan : {"error", "mask"}
        Non-finite samples are an error, or are masked (``mask`` False there).
    extra_events : DataFrame, optional
        Rows appended to the file's events (e.g. derived intervals).
    keep : DataFrame[onset, offset], optional
        Read only the samples inside these intervals (seconds from the first sample); they
        are concatenated with their own time stamps and listed in ``meta["segments"]``.
    meta : dict, optional
        Extra metadata.
    """
    if raw.n_times == 0 or len(raw.ch_names) == 0:
        raise InputError(path, "zero-length recording (no samples or no channels)")
    stim_events, stim_names = _stim_events(raw)
    if stim_names:
        raw = raw.copy().pick([n for n in raw.ch_names if n not in stim_names])
    if len(raw.ch_names) == 0:
        raise InputError(path, "no data channels (only trigger channels)")
    fs = float(raw.info["sfreq"])
    spans, time, segs = None, None, None
    if keep is not None:
        spans, segs = interval_spans(keep, fs, int(raw.n_times))
        if not spans:
            raise InputError(path, "no sample inside the requested intervals")
        time = np.concatenate([np.arange(a, b) for a, b in spans]) / fs
    data = read_chunked(raw, spans)
    finite = np.isfinite(data)
    mask = None
    if not finite.all():
        bad = [raw.ch_names[i] for i in np.flatnonzero(~finite.all(axis=0))]
        if nan != "mask":
            raise InputError(
                path,
                f"non-finite samples in {len(bad)} channels ({', '.join(bad[:5])}); "
                "pass --reader-options nan=mask to keep them as missing",
            )
        empty = [raw.ch_names[i] for i in np.flatnonzero(~finite.any(axis=0))]
        if empty:
            raise InputError(path, f"channels with no finite sample: {', '.join(empty[:5])}")
        mask = finite
    del finite
    stem = path.name.split(".")[0]
    subj = subject or stem
    frames = [f for f in (_events(raw), stim_events, extra_events) if f is not None and len(f)]
    events = pd.concat(frames, ignore_index=True) if frames else empty_events()
    extra_meta = dict(meta or {})
    if segs is not None:
        events = events_within(events, segs).reset_index(drop=True)
        extra_meta["segments"] = segs
    return Recording(
        traces=data,
        labels=list(raw.ch_names),
        modality="eeg",
        fs=float(raw.info["sfreq"]),
        units="V",
        id=f"{dataset or 'eeg'}/{subj if subject else stem}",
        subject=subj,
        dataset=dataset,
        source_file=str(path),
        time=time,
        events=events,
        mask=mask,
        channel_info=_channel_info(raw),
        meta={
            "format": fmt,
            "highpass_hz": float(raw.info["highpass"]),
            "lowpass_hz": float(raw.info["lowpass"]),
            "meas_date": str(raw.info["meas_date"]) if raw.info["meas_date"] else None,
            "trigger_channels": stim_names,
            **extra_meta,
        },
    )


def _open(fn: Any, path: Path, *, shown: Path | None = None, **kw: Any) -> Any:
    """Call an MNE reader quietly, turning its failures into InputError naming the file
    (``shown``, default ``path``)."""
    import mne

    name = shown or path
    try:
        with mne.utils.use_log_level("ERROR"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(path, preload=False, **kw)
    except (InputError, ParamError):  # a bad reader option is reported as such
        raise
    except FileNotFoundError as exc:
        raise InputError(name, f"a companion file is missing: {exc.filename or exc}") from None
    except Exception as exc:  # MNE raises many types on malformed files
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InputError(name, f"cannot read ({type(exc).__name__}): {msg}") from None


def _finish(raw: Any, path: Path, fmt: str, dataset: str, subject: str | None,
            montage: str | None, nan: str, **kw: Any) -> list[Recording]:
    _apply_montage(raw, montage, path)
    try:
        return [raw_to_recording(raw, path, dataset=dataset, subject=subject, nan=nan, fmt=fmt,
                                 **kw)]
    except (InputError, ParamError):  # a bad reader option is reported as such
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(path, f"cannot read data ({type(exc).__name__}): {exc}") from None


_DOC_OPTIONS = """
    Options (``--reader-options KEY=VALUE``): ``dataset`` (id prefix, default "eeg"),
    ``subject`` (default: the file stem), ``montage`` (an MNE standard montage name, e.g.
    ``standard_1020``, matched on channel names without an "EEG " prefix), ``nan``
    ("error" or "mask").
"""


@register("eeg-edf", [".edf"], _sniff_edf, "EDF/EDF+ EEG (MNE)")
def read_edf(path: Path, dataset: str = "eeg", subject: str | None = None,
             montage: str | None = None, nan: str = "error") -> list[Recording]:
    """EDF/EDF+ file: one Recording in volts; EDF+ annotations become events."""
    import mne

    _check_edf_size(path, 2)
    raw = _open(mne.io.read_raw_edf, path, infer_types=False)
    return _finish(raw, path, "edf", dataset, subject, montage, nan)


@register("eeg-bdf", [".bdf"], _sniff_bdf, "BioSemi BDF EEG (MNE)")
def read_bdf(path: Path, dataset: str = "eeg", subject: str | None = None,
             montage: str | None = None, nan: str = "error") -> list[Recording]:
    """BDF (24-bit BioSemi) file: one Recording in volts."""
    import mne

    _check_edf_size(path, 3)
    raw = _open(mne.io.read_raw_bdf, path, infer_types=False)
    return _finish(raw, path, "bdf", dataset, subject, montage, nan)


@register("eeg-fif", [".fif", ".fif.gz"], _sniff_fif, "MNE FIF raw EEG")
def read_fif(path: Path, dataset: str = "eeg", subject: str | None = None,
             montage: str | None = None, nan: str = "error") -> list[Recording]:
    """FIF raw file (MNE's native format): one Recording with every channel of the file."""
    import mne

    raw = _open(mne.io.read_raw_fif, path)
    return _finish(raw, path, "fif", dataset, subject, montage, nan)


@register("eeg-brainvision", [".vhdr"], _sniff_vhdr, "BrainVision .vhdr/.vmrk/.eeg EEG (MNE)")
def read_brainvision(path: Path, dataset: str = "eeg", subject: str | None = None,
                     montage: str | None = None, nan: str = "error") -> list[Recording]:
    """BrainVision header (.vhdr) with its .vmrk markers and binary .eeg data."""
    import mne

    raw = _open(mne.io.read_raw_brainvision, path)
    return _finish(raw, path, "brainvision", dataset, subject, montage, nan)


# -- EEGLAB and the Healthy Brain Network layout -----------------------------------------
def _is_hbn_layout(raw: Any) -> bool:
    """129 channels named like an EGI HydroCel GSN 129 net (E1..E128 and Cz or E129)."""
    names = list(raw.ch_names)
    if len(names) != 129:
        return False
    expected = {f"E{i}" for i in range(1, 129)}
    return expected <= set(names) and ({"Cz"} <= set(names) or "E129" in names)


def eyes_intervals(events: pd.DataFrame, end: float) -> pd.DataFrame:
    """Eyes-open/eyes-closed intervals from HBN resting-state markers.

    Parameters
    ----------
    events : DataFrame
        Marker events (``onset`` seconds, ``label``); labels '20' (eyes open) and '30' (eyes
        closed), trailing spaces allowed. Other labels are ignored.
    end : float
        End of the recording in seconds.

    Returns
    -------
    DataFrame[onset, offset, label]: one interval per marker, running to the next eyes
    marker or to ``end``; labels ``eyes_open`` / ``eyes_closed``.
    """
    codes = events["label"].astype(str).str.strip()
    ev = events[codes.isin(list(HBN_EYES))].sort_values("onset")
    onsets = ev["onset"].to_numpy(dtype=np.float64)
    labels = [HBN_EYES[c.strip()] for c in ev["label"].astype(str)]
    offsets = np.append(onsets[1:], end) if len(onsets) else onsets
    keep = offsets > onsets
    return pd.DataFrame(
        {"onset": onsets[keep], "offset": offsets[keep],
         "label": [lab for lab, k in zip(labels, keep) if k]}
    )


@contextlib.contextmanager
def _as_set(path: Path) -> Iterator[Path]:
    """MNE reads EEGLAB only from a ``.set`` name; give a ``.mat`` (HBN raw) one via a link."""
    if path.suffix.lower() == ".set":
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="neurodyn-set-") as tmp:
        link = Path(tmp) / (path.stem + ".set")
        os.symlink(path.resolve(), link)
        yield link


def _eeglab(path: Path, dataset: str, subject: str | None, montage: str | None, nan: str,
            layout: str, eyes_closed_only: bool) -> list[Recording]:
    import mne

    if path.suffix.lower() != ".set":
        with _as_set(path) as link:
            raw = _open(mne.io.read_raw_eeglab, link, shown=path)
            raw.load_data()  # the link disappears with the temporary folder
    else:
        raw = _open(mne.io.read_raw_eeglab, path)
    hbn = layout == "hbn" or (layout == "auto" and _is_hbn_layout(raw))
    if hbn and subject is None:
        # HBN files share generic names (RestingState.mat); the subject folder is NDAR...
        subject = next((p for p in reversed(path.parts[:-1]) if re.match(r"^NDAR[A-Z0-9]+$", p)),
                       None) or (path.stem if path.stem.startswith("NDAR") else None)
    if layout == "hbn" and len(raw.ch_names) != 129:
        raise InputError(path, f"HBN layout needs 129 channels, the file has {len(raw.ch_names)}")
    if hbn and montage is None:
        montage = "GSN-HydroCel-129"
        if not _is_hbn_layout(raw):
            montage = None
    if not hbn:
        if eyes_closed_only:
            raise InputError(path, "eyes_closed_only needs the HBN layout (129-channel EGI)")
        return _finish(raw, path, "eeglab", dataset, subject, montage, nan)
    intervals = eyes_intervals(_events(raw), raw.n_times / raw.info["sfreq"])
    keep = None
    if eyes_closed_only:
        keep = intervals[intervals["label"] == "eyes_closed"]
        if keep.empty:
            raise InputError(path, "no eyes-closed marker ('30') in the file")
    # only the kept samples are ever read, so cropping costs no extra memory
    return _finish(raw, path, "eeglab", dataset, subject, montage, nan, extra_events=intervals,
                   keep=keep, meta={"layout": "hbn-rest"})


@register("eeg-eeglab", [".set"], _sniff_set, "EEGLAB .set(/.fdt) EEG (MNE); HBN layout detected")
def read_eeglab(path: Path, dataset: str = "eeg", subject: str | None = None,
                montage: str | None = None, nan: str = "error", layout: str = "auto",
                eyes_closed_only: bool | str = False) -> list[Recording]:
    """EEGLAB .set file (data inline or in a .fdt beside it).

    With ``layout="auto"`` a 129-channel EGI HydroCel file (E1..E128 + Cz) is treated as
    an HBN resting-state recording (see :func:`read_hbn_rest`).
    """
    return _eeglab(path, dataset, subject, montage, nan, layout, _flag(eyes_closed_only))


@register("hbn-rest", [".set", ".mat"], lambda p: False,
          "Healthy Brain Network resting EEG (EEGLAB, 129-ch EGI); use --format hbn-rest")
def read_hbn_rest(path: Path, dataset: str = "HBN", subject: str | None = None,
                  montage: str | None = None, nan: str = "error",
                  eyes_closed_only: bool | str = False) -> list[Recording]:
    """HBN resting-state EEG: 129 EGI HydroCel channels, eyes-open/closed markers.

    Reads EEGLAB ``.set`` files and the raw ``RestingState.mat`` (an EEGLAB ``EEG`` struct).

    The GSN-HydroCel-129 montage gives electrode positions. Markers '20' / '30' (trailing
    spaces allowed) become intervals ``eyes_open`` / ``eyes_closed`` added to the events,
    each running to the next marker or to the end. ``eyes_closed_only=True`` keeps only the
    eyes-closed samples (time stamps kept, so the segments show as gaps in ``time``).
    """
    return _eeglab(path, dataset, subject, montage, nan, "hbn", _flag(eyes_closed_only))


def _flag(value: bool | str) -> bool:
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off", ""):
            return False
        raise ParamError("reader_options", f"expected true/false, got {value!r}")
    return bool(value)


for _fn in (read_edf, read_bdf, read_fif, read_brainvision, read_eeglab):
    _fn.__doc__ = (_fn.__doc__ or "") + _DOC_OPTIONS
