"""Parameters of the ``affinity`` stage (one definition for the CLI, pipelines and provenance)."""

from __future__ import annotations

from dataclasses import dataclass

from neurodyn.params import Choice, StageParams, param


class Kernel(Choice):
    """Pairwise affinity kernels (see :mod:`neurodyn.affinity.kernels`)."""

    differential = "differential"
    pearson = "pearson"
    gaussian = "gaussian"


class Align(Choice):
    """How neurons are matched across animals."""

    union = "union"
    intersection = "intersection"


KERNEL_HELP = (
    "differential: sqrt(max(0, d_i d_j)) * exp(-(d_i - d_j)^2 / (2 sigma^2)) on smoothed "
    "derivatives divided by 1.4826*MAD; a documented stand-in for the differential affinity of "
    "Dyballa et al. 2024 (exact published formula not used). pearson: rectified windowed Pearson "
    "correlation of smoothed values. gaussian: exp(-(z_i - z_j)^2 / (2 sigma^2)) on robust z-scores."
)


@dataclass(frozen=True)
class AffinityParams(StageParams):
    """Windowed pairwise affinities between the neurons of every animal."""

    stage = "affinity"

    kernel: Kernel = param(Kernel.differential, KERNEL_HELP)
    window: float = param(8.0, "Window width.", unit="s", gt=0)
    step: float = param(4.0, "Window step; 8 s / 4 s gives ~300 windows for 20 min.", unit="s", gt=0)
    smooth: float = param(0.5, "Gaussian smoothing s.d. before derivatives/values.", unit="s", ge=0)
    sigma: float = param(2.0, "Kernel width in robust-scale units (differential, gaussian).", gt=0)
    min_fraction: float = param(
        0.5, "Fraction of a window's samples both neurons need observed, else the entry is masked.",
        gt=0, le=1)
    align: Align = param(Align.union, "union: neurons in any animal (absent ones masked); "
                         "intersection: only neurons in all animals.")
    keep_unlabelled: bool = param(
        False, "Keep unlabelled ROIs, each as its own per-animal neuron '<animal>:<roi>'.")
    fs: float | None = param(
        None, "Resample every recording to this rate. Default: keep a shared regular rate, "
        "else resample all to the lowest rate.", unit="Hz", gt=0)
    recordings: tuple[str, ...] = param(
        (), "Use only these recording ids (repeat or comma-separate; default all).",
        aliases=("recording",))

