"""EEG readers (MNE): real EDF, fixtures written by MNE, HBN layout, broken inputs."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import mne
import numpy as np
import pytest
from conftest import shared_file

from neurodyn.errors import InputError
from neurodyn.io import store
from neurodyn.io.registry import find_reader, read

mne.set_log_level("ERROR")

EDF_NAMES = [f"EEG {n}" for n in "Fp1 Fp2 F3 F4 F7 F8 T3 T4 C3 C4 T5 T6 P3 P4 O1 O2 Fz Cz Pz".split()]
EDF_NAMES += ["EEG A2-A1", "ECG ECG"]


def make_raw(n_ch: int = 4, fs: float = 250.0, seconds: float = 10.0, seed: int = 0,
             names: list[str] | None = None, types: list[str] | None = None):
    rng = np.random.default_rng(seed)
    names = names or ["Fp1", "Fp2", "Cz", "ECG"][:n_ch] + [f"X{i}" for i in range(n_ch - 4)]
    types = types or ["eeg"] * (len(names) - 1) + ["ecg"]
    x = rng.normal(size=(len(names), int(seconds * fs))) * 2e-5
    raw = mne.io.RawArray(x, mne.create_info(names, fs, types))
    raw.set_annotations(mne.Annotations([1.0, 3.0], [0.5, 2.0], ["stim", "rest"]))
    return raw


def export(raw, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.suffix == ".fif":
            raw.save(path, overwrite=True)
        else:
            mne.export.export_raw(path, raw, overwrite=True)
    return path


# -- the real file --------------------------------------------------------------------------
def test_real_edf_matches_provenance():
    path = shared_file("eeg-eegmat-rest/Subject00_1.edf")
    assert find_reader(path).name == "eeg-edf"
    [rec] = read(path)
    assert rec.modality == "eeg" and rec.units == "V"
    assert rec.n_channels == 21 and rec.n_samples == 91_000
    assert rec.fs == 500.0 and rec.duration == pytest.approx(182.0)
    assert list(rec.labels) == EDF_NAMES
    assert len(rec.events) == 0
    types = dict(zip(rec.channel_info["channel"], rec.channel_info["type"]))
    assert types["ECG ECG"] == "ecg" and types["EEG Fp1"] == "eeg"
    # MNE scales uV to V: sd of Fp1 about 9.2e-6 V (PROVENANCE.md)
    assert rec.data[:, 0].std() == pytest.approx(9.2e-6, rel=0.05)
    assert rec.data.dtype == np.float32


def test_real_edf_montage_option_places_1020_channels():
    path = shared_file("eeg-eegmat-rest/Subject00_1.edf")
    [rec] = read(path, montage="standard_1020")
    placed = rec.channel_info.set_index("channel")[["x", "y", "z"]].notna().all(axis=1)
    assert placed["EEG Fp1"] and placed["EEG Cz"] and placed["EEG T3"]
    assert not placed["ECG ECG"] and not placed["EEG A2-A1"]


# -- round trips through MNE ----------------------------------------------------------------
def test_fif_round_trip_within_float32(tmp_path):
    raw = make_raw()
    path = export(raw, tmp_path / "x_raw.fif")
    assert find_reader(path).name == "eeg-fif"
    [rec] = read(path)
    x = raw.get_data().T
    np.testing.assert_allclose(rec.data, x, rtol=1e-6, atol=1e-12)
    assert list(rec.labels) == raw.ch_names and rec.fs == 250.0
    assert list(rec.channel_info["type"]) == ["eeg", "eeg", "eeg", "ecg"]
    np.testing.assert_allclose(rec.events["onset"], [1.0, 3.0])
    np.testing.assert_allclose(rec.events["offset"], [1.5, 5.0])
    assert list(rec.events["label"]) == ["stim", "rest"]


def test_fif_cropped_events_relative_to_first_sample(tmp_path):
    raw = make_raw().crop(0.5, None)  # first_samp > 0
    path = export(raw, tmp_path / "c_raw.fif")
    [rec] = read(path)
    np.testing.assert_allclose(rec.events["onset"], [0.5, 2.5])
    assert rec.n_samples == raw.n_times


def test_edf_round_trip_within_16bit_resolution(tmp_path):
    raw = make_raw()
    path = export(raw, tmp_path / "x.edf")
    [rec] = read(path)
    x = raw.get_data().T
    # edfio stores each channel as int16 over its physical range: one step of resolution
    step = (x.max(axis=0) - x.min(axis=0)) / 65535
    err = np.abs(rec.data - x).max(axis=0)
    assert np.all(err <= step * 1.01 + 1e-12)
    assert err.max() > 0  # it really went through 16-bit quantisation
    np.testing.assert_allclose(rec.events["onset"], [1.0, 3.0], atol=1e-6)
    assert list(rec.events["label"]) == ["stim", "rest"]


def test_eeglab_round_trip_with_positions(tmp_path):
    raw = make_raw(names=["Fp1", "Fp2", "Cz", "Oz"], types=["eeg"] * 4)
    raw.set_montage(mne.channels.make_standard_montage("standard_1020"))
    path = export(raw, tmp_path / "x.set")
    assert find_reader(path).name == "eeg-eeglab"
    [rec] = read(path)
    np.testing.assert_allclose(rec.data, raw.get_data().T, rtol=1e-5, atol=1e-11)
    pos = rec.channel_info[["x", "y", "z"]].to_numpy()
    assert np.isfinite(pos).all()
    assert np.linalg.norm(pos[2] - raw.info["chs"][2]["loc"][:3]) < 1e-3  # Cz
    assert list(rec.events["label"]) == ["stim", "rest"]


def write_brainvision(stem: Path, x_uv: np.ndarray, fs: float, names: list[str]) -> Path:
    """Minimal BrainVision triplet: float32 multiplexed data in microvolts, one marker."""
    vhdr, vmrk, eeg = (stem.with_suffix(s) for s in (".vhdr", ".vmrk", ".eeg"))
    chans = "\n".join(f"Ch{i + 1}={n},,1,µV" for i, n in enumerate(names))
    vhdr.write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={eeg.name}\nMarkerFile={vmrk.name}\nDataFormat=BINARY\n"
        f"DataOrientation=MULTIPLEXED\nNumberOfChannels={len(names)}\n"
        f"SamplingInterval={1e6 / fs:g}\n\n[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n\n"
        f"[Channel Infos]\n{chans}\n", encoding="utf-8")
    vmrk.write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={eeg.name}\n\n[Marker Infos]\nMk1=New Segment,,1,1,0\n"
        f"Mk2=Stimulus,S  1,{int(fs) + 1},1,0\n", encoding="utf-8")
    x_uv.astype("<f4").tofile(eeg)
    return vhdr


def test_brainvision_reads_values_and_markers(tmp_path):
    x = np.random.default_rng(1).normal(size=(500, 3)) * 20
    path = write_brainvision(tmp_path / "bv", x, 250.0, ["Fp1", "Fp2", "Cz"])
    assert find_reader(path).name == "eeg-brainvision"
    [rec] = read(path)
    np.testing.assert_allclose(rec.data, x * 1e-6, rtol=1e-6)
    stim = rec.events[rec.events["label"].str.contains("S  1")]
    assert len(stim) == 1 and stim["onset"].iloc[0] == pytest.approx(1.0)


def write_bdf(path: Path, x_uv: np.ndarray, fs: int, names: list[str],
              n_records: int | None = None) -> Path:
    """Minimal BDF writer (24-bit, one-second records, +-1000 uV, 1 digital unit = 1 nV)."""
    T, N = x_uv.shape
    recs = T // fs
    dig = np.round(x_uv[: recs * fs] * 1000).astype(np.int32)

    def f(v, n):
        return str(v).ljust(n)[:n].encode("latin-1")

    head = b"\xffBIOSEMI" + f("X", 80) + f("Y", 80) + f("01.01.20", 8) + f("00.00.00", 8)
    head += f(256 * (N + 1), 8) + f("24BIT", 44) + f(recs if n_records is None else n_records, 8)
    head += f(1, 8) + f(N, 4)
    for field, width in [(names, 16), (["AgAgCl"] * N, 80), (["uV"] * N, 8),
                         (["-1000"] * N, 8), (["1000"] * N, 8), (["-1000000"] * N, 8),
                         (["1000000"] * N, 8), ([""] * N, 80), ([fs] * N, 8), ([""] * N, 32)]:
        head += b"".join(f(v, width) for v in field)
    body = bytearray()
    for r in range(recs):
        for j in range(N):
            for v in dig[r * fs:(r + 1) * fs, j]:
                body += struct.pack("<i", int(v))[:3]
    path.write_bytes(head + bytes(body))
    return path


def test_bdf_reads_24bit_values(tmp_path):
    x = np.random.default_rng(2).normal(size=(256, 2)) * 50
    path = write_bdf(tmp_path / "x.bdf", x, 128, ["Fp1", "EOG left"])
    assert find_reader(path).name == "eeg-bdf"
    [rec] = read(path)
    np.testing.assert_allclose(rec.data, x * 1e-6, atol=1e-9)  # 1 nV resolution
    assert list(rec.channel_info["type"]) == ["eeg", "eog"]
    assert rec.fs == 128.0


# -- HBN layout -----------------------------------------------------------------------------
HBN_NAMES = [f"E{i}" for i in range(1, 129)] + ["Cz"]


@pytest.fixture
def hbn_set(tmp_path) -> Path:
    rng = np.random.default_rng(3)
    raw = mne.io.RawArray(rng.normal(size=(129, 6000)) * 1e-5, mne.create_info(HBN_NAMES, 100., "eeg"))
    raw.set_annotations(mne.Annotations([2, 12, 32, 42], [0] * 4, ["20  ", "30  ", "20  ", "30  "]))
    return export(raw, tmp_path / "NDARAA000HBN.set")


def test_hbn_layout_intervals_and_montage(hbn_set):
    [rec] = read(hbn_set)
    assert rec.meta["layout"] == "hbn-rest" and rec.n_channels == 129
    assert np.isfinite(rec.channel_info[["x", "y", "z"]].to_numpy()).all()
    iv = rec.events[rec.events["label"].isin(["eyes_open", "eyes_closed"])]
    assert list(iv["label"]) == ["eyes_open", "eyes_closed", "eyes_open", "eyes_closed"]
    np.testing.assert_allclose(iv["onset"], [2, 12, 32, 42])
    np.testing.assert_allclose(iv["offset"], [12, 32, 42, 60])


def test_hbn_eyes_closed_only(hbn_set):
    [full] = read(hbn_set)
    [rec] = read(hbn_set, format="hbn-rest", eyes_closed_only="true")
    assert rec.n_samples == (20 + 18) * 100
    assert rec.meta["segments"] == [[12.0, 32.0], [42.0, 60.0]]
    t = rec.times
    assert t[0] == pytest.approx(12.0) and np.diff(t).max() == pytest.approx(10.01)
    np.testing.assert_array_equal(rec.data[:2000], full.data[1200:3200])


def test_hbn_format_rejects_other_layouts(tmp_path):
    path = export(make_raw(), tmp_path / "small.set")
    with pytest.raises(InputError, match="129 channels"):
        read(path, format="hbn-rest")


# -- broken inputs through the CLI ----------------------------------------------------------
def _expect_exit2(cli, path: Path, out: Path, *extra: str) -> str:
    res = cli("ingest", path, "--out", out, *extra)
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.tmp*"))
    return lines[0]


def test_broken_edf_truncated(tmp_path, cli):
    src = export(make_raw(), tmp_path / "x.edf").read_bytes()
    bad = tmp_path / "trunc.edf"
    bad.write_bytes(src[: len(src) // 2])
    assert "truncated" in _expect_exit2(cli, bad, tmp_path / "o.h5")


def test_broken_edf_wrong_header(tmp_path, cli):
    src = export(make_raw(), tmp_path / "x.edf").read_bytes()
    bad = tmp_path / "hdr.edf"
    bad.write_bytes(b"GARBAGE!" + src[8:])
    assert "no reader recognises" in _expect_exit2(cli, bad, tmp_path / "o.h5")


def test_broken_edf_zero_length(tmp_path, cli):
    src = bytearray(export(make_raw(), tmp_path / "x.edf").read_bytes())
    hb = int(src[184:192].decode().strip())
    src[236:244] = b"0".ljust(8)
    bad = tmp_path / "zero.edf"
    bad.write_bytes(bytes(src[:hb]))
    assert "zero-length" in _expect_exit2(cli, bad, tmp_path / "o.h5")


def test_broken_bdf_truncated(tmp_path, cli):
    x = np.zeros((256, 2))
    bad = write_bdf(tmp_path / "x.bdf", x, 128, ["A", "B"], n_records=5)
    assert "truncated" in _expect_exit2(cli, bad, tmp_path / "o.h5")


def test_broken_fif_truncated(tmp_path, cli):
    src = export(make_raw(), tmp_path / "x_raw.fif").read_bytes()
    bad = tmp_path / "t_raw.fif"
    bad.write_bytes(src[: len(src) // 2])
    _expect_exit2(cli, bad, tmp_path / "o.h5")


def test_fif_nan_channel_is_error_or_masked(tmp_path, cli):
    raw = make_raw()
    raw._data[1, 100:200] = np.nan
    path = export(raw, tmp_path / "nan_raw.fif")
    assert "non-finite" in _expect_exit2(cli, path, tmp_path / "o.h5")
    [rec] = read(path, nan="mask")
    assert rec.mask is not None and (~rec.mask).sum() == 100 and not rec.mask[150, 1]
    raw._data[2, :] = np.nan
    path = export(raw, tmp_path / "nan2_raw.fif")
    assert "no finite sample" in _expect_exit2(cli, path, tmp_path / "o.h5",
                                               "--reader-options", "nan=mask")


def test_broken_eeglab_truncated_and_missing_fdt(tmp_path, cli):
    src = export(make_raw(), tmp_path / "x.set").read_bytes()
    bad = tmp_path / "trunc.set"
    bad.write_bytes(src[: len(src) // 2])
    _expect_exit2(cli, bad, tmp_path / "o.h5")


def test_broken_brainvision_missing_data_file(tmp_path, cli):
    path = write_brainvision(tmp_path / "bv", np.zeros((10, 2)), 250.0, ["A", "B"])
    path.with_suffix(".eeg").unlink()
    _expect_exit2(cli, path, tmp_path / "o.h5")


def test_cli_ingest_eeg_end_to_end(tmp_path, cli, hbn_set):
    out = tmp_path / "rec.h5"
    res = cli("ingest", hbn_set, "--out", out, "--reader-options", "eyes_closed_only=true")
    assert res.exit_code == 0, res.output
    [rec] = store.read_recordings(out)
    assert rec.n_samples == 3800 and rec.units == "V"
    assert "eyes_closed" in set(rec.events["label"])


def test_bundled_sample_copy_reads_like_provenance():
    from conftest import SAMPLE

    [rec] = read(SAMPLE / "eeg" / "Subject00_1.edf")
    assert (rec.n_samples, rec.n_channels, rec.fs) == (91_000, 21, 500.0)
    assert list(rec.labels) == EDF_NAMES


def test_hbn_raw_mat_eeg_struct(hbn_set, tmp_path):
    """HBN's raw RestingState.mat holds an EEGLAB ``EEG`` struct; read it as hbn-rest."""
    import scipy.io

    m = scipy.io.loadmat(hbn_set)
    keys = [k for k in m if not k.startswith("__")]
    struct_ = np.empty((1, 1), dtype=[(k, object) for k in keys])
    for k in keys:
        struct_[0, 0][k] = m[k]
    path = tmp_path / "NDARAB123XYZ" / "EEG" / "raw" / "mat_format" / "RestingState.mat"
    path.parent.mkdir(parents=True)
    scipy.io.savemat(path, {"EEG": struct_})
    [rec] = read(path, format="hbn-rest", eyes_closed_only=True)
    [ref] = read(hbn_set, eyes_closed_only=True)
    np.testing.assert_array_equal(rec.data, ref.data)
    assert rec.source_file == str(path) and rec.dataset == "HBN"
    assert rec.subject == "NDARAB123XYZ" and rec.id == "HBN/NDARAB123XYZ"


def test_broken_input_exit_code_in_a_real_process(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"0       " + b"x" * 100)
    out = tmp_path / "o.h5"
    cmd = [sys.executable, "-c", "from neurodyn.cli import main; main()",
           "ingest", str(bad), "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().startswith(f"error: {bad}") and len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_bdf_status_channel_becomes_events(tmp_path):
    x = np.random.default_rng(4).normal(size=(256, 2)) * 50
    status = np.zeros((256, 1))
    status[64:70] = 5.0 / 1000  # digital code 5 (writer scales uV -> 1000 units)
    status[200:210] = 7.0 / 1000
    path = write_bdf(tmp_path / "s.bdf", np.hstack([x, status]), 128, ["Fp1", "Fp2", "Status"])
    [rec] = read(path)
    assert list(rec.labels) == ["Fp1", "Fp2"] and rec.meta["trigger_channels"] == ["Status"]
    assert list(rec.events["label"]) == ["5", "7"]
    np.testing.assert_allclose(rec.events["onset"], [64 / 128, 200 / 128])
