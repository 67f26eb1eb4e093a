"""Parameters of the ``preprocess`` stage (one definition for the CLI, pipelines and provenance).

Steps run in the fixed order of :data:`neurodyn.preprocess.STEPS`, each only when its
parameter asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from neurodyn.params import Choice, ParamError, StageParams, param, parse_floats


class Detrend(Choice):
    linear = "linear"
    constant = "constant"


class Normalize(Choice):
    none = "none"
    zscore = "zscore"
    dff = "dff"


def _text(values: list[float | None]) -> str:
    return ",".join("" if v is None else f"{v:g}" for v in values)


def _bandpass(value: str | list | None) -> str | None:
    """``"1,40"``, ``",40"``, ``[1, 40]`` -> canonical ``"LO,HI"`` text (one side may be empty)."""
    if value is None:
        return None
    band = parse_floats(value)
    if len(band) != 2 or all(b is None for b in band):
        raise ValueError(f"expected LO,HI in Hz (one side may be empty), got {value!r}")
    lo, hi = band
    if (lo is not None and lo <= 0) or (hi is not None and hi <= 0) or (
            lo is not None and hi is not None and lo >= hi):
        raise ValueError(f"needs 0 < LO < HI (Hz), got {value!r}")
    return _text(band)


def _notch(value: str | float | list | None) -> str | None:
    """``50``, ``"50,100"``, ``[50, 100]`` -> canonical ``"50,100"`` text."""
    if value is None:
        return None
    freqs = [f for f in parse_floats(value) if f is not None]
    if not freqs or min(freqs) <= 0:
        raise ValueError(f"expected positive frequencies in Hz, e.g. 50 or 50,100, got {value!r}")
    return _text(freqs)


@dataclass(frozen=True)
class PreprocessParams(StageParams):
    """Crop, fill gaps, re-reference, filter, detrend, resample, normalise, differentiate."""

    stage = "preprocess"

    recordings: tuple[str, ...] = param((), "Process only these recording ids (repeat or "
                                        "comma-separate; default all).", aliases=("ids", "id"))
    crop: str | None = param(None, "START:STOP seconds, or an event label (e.g. eyes_closed) "
                             "whose intervals are kept.", metavar="START:STOP|LABEL")
    max_gap: float = param(0.0, "Interpolate missing runs up to this long; longer runs stay "
                           "masked.", unit="s", ge=0, aliases=("max_gap_s",))
    reference: str | None = param(None, "EEG re-reference: 'average' or channel names, e.g. "
                                  "'EEG A1,EEG A2'.", metavar="average|CHANNELS")
    bandpass: str | None = param(None, "EEG band-pass LO,HI (',40' low-pass, '1,' high-pass).",
                                 unit="Hz", check=_bandpass, metavar="LO,HI")
    notch: str | None = param(None, "EEG notch frequencies, e.g. 50 or 50,100.", unit="Hz",
                              check=_notch, metavar="F[,F...]")
    filter_order: int = param(4, "Butterworth order of the band-pass.", ge=1)
    notch_q: float = param(30.0, "Quality factor of the notch filter.", gt=0)
    detrend: Detrend | None = param(None, "Remove a linear or constant trend per channel.")
    fs: float | None = param(None, "Resample every recording to this rate.", unit="Hz", gt=0,
                             aliases=("resample_hz",))
    normalize: Normalize = param(Normalize.none, "none, zscore (per channel) or dff ((F - F0)/F0, "
                                 "F0 a low percentile per channel).")
    dff_percentile: float = param(8.0, "Percentile of each channel used as the dF/F baseline F0.",
                                  ge=0, le=100)
    derivative: bool = param(False, "Replace traces by their time derivative (units/s).")

    def check(self) -> None:
        if self.normalize is Normalize.dff and self.detrend is not None:
            raise ParamError("normalize", "dff needs the raw baseline; do not combine it with "
                             "detrend")
