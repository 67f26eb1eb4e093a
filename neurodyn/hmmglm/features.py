"""Features for Gaussian state models of oscillatory signals (EEG/MEG/LFP).

Two feature families, as the field uses them:

``bandpower``
    Per channel and frequency band, the log of the mean squared Hilbert envelope of the
    band-passed signal in non-overlapping windows (power envelopes; Baker et al. 2014).
``tde``
    Time-delay embedding: every channel with its ``2 L + 1`` lagged copies, reduced by PCA
    (Vidaurre et al. 2018, HMM-MAR; osl-dynamics). The states' covariances then encode the
    channels' auto- and cross-spectra.

All functions take and return plain arrays; time runs along axis 0.
"""

from __future__ import annotations

import dataclasses
import logging

import mne
import numpy as np
from scipy.fft import next_fast_len
from scipy.signal import hilbert

from neurodyn.hmmglm.params import parse_bands as parse_bands  # defined with the stage parameters

log = logging.getLogger("neurodyn.hmmglm")

def band_envelopes(x: np.ndarray, fs: float, bands: list[tuple[str, float, float]]) -> np.ndarray:
    """Instantaneous band power (squared Hilbert envelope) (T, C, B) float64.

    Each band is filtered with MNE's zero-phase FIR band-pass (``mne.filter.filter_data``).
    """
    x = np.asarray(x, np.float64).T.copy()  # (C, T)
    T = x.shape[1]
    nyq = fs / 2.0
    out = np.empty((T, x.shape[0], len(bands)))
    n = next_fast_len(T)
    for b, (name, lo, hi) in enumerate(bands):
        if hi >= nyq:
            raise ValueError(f"band {name} ({lo:g}-{hi:g} Hz) reaches the Nyquist frequency "
                             f"({nyq:g} Hz) of {fs:g} Hz data")
        xb = mne.filter.filter_data(x, fs, lo, hi, verbose="error")
        env = hilbert(xb, N=n, axis=1)[:, :T]
        out[:, :, b] = (env.real ** 2 + env.imag ** 2).T
    return out


def window_mean(a: np.ndarray, width: int) -> np.ndarray:
    """Means of ``a`` (T, ...) over consecutive non-overlapping windows of ``width`` rows
    (a trailing partial window is dropped)."""
    W = a.shape[0] // width
    return a[: W * width].reshape(W, width, *a.shape[1:]).mean(axis=1)


def time_delay_embed(x: np.ndarray, lags: int) -> np.ndarray:
    """Every channel with lags ``-lags..lags``: (T - 2 lags, C * (2 lags + 1)).

    Row ``i`` is centred on sample ``i + lags``; columns are channel-major.
    """
    T, C = x.shape
    n = T - 2 * lags
    if n < 1:
        raise ValueError(f"{T} samples are too few for {lags} lags on each side")
    cols = [x[lags + d: lags + d + n] for d in range(-lags, lags + 1)]
    return np.stack(cols, axis=2).reshape(n, C * (2 * lags + 1))


def standardize(X: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit variance (constant columns left at 0)."""
    sd = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def pca(X: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Projection of centred ``X`` (T, D) on its first ``n`` principal axes.

    Returns scores (T, n), axes (n, D) and the fraction of variance kept.
    """
    Xc = X - X.mean(axis=0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    n = min(n, vt.shape[0])
    var = s ** 2
    return Xc @ vt[:n].T, vt[:n], float(var[:n].sum() / max(var.sum(), 1e-300))


FLOOR = 1e-3  # band power is floored 30 dB below its median before the log (flat stretches)


def flat_fraction(power: np.ndarray) -> float:
    """Fraction of time points where most (half or more) channels and bands have power below
    ``FLOOR`` times its median (a flat, disconnected or clipped stretch)."""
    floor = FLOOR * np.median(power, axis=0, keepdims=True)
    low = (power < floor).reshape(power.shape[0], -1)
    return float(np.mean(low.mean(axis=1) >= 0.5))


@dataclasses.dataclass
class Features:
    """Observations of the Gaussian state model and how they map back to the signal.

    Attributes
    ----------
    X : array (W, D) float64
        Standardised features, one row per time point of the model.
    rows : int array (W, 2)
        Signal samples ``[start, stop)`` each row summarises (a window, or one sample).
    power : array (W, C, B)
        Band power (squared envelope, signal units^2) on the rows' grid, for power maps.
    fs : float
        Rows per second.
    kind : str
    variance_kept : float
        Fraction of variance kept by PCA (1 without PCA).
    """

    X: np.ndarray
    rows: np.ndarray
    power: np.ndarray
    fs: float
    kind: str
    variance_kept: float = 1.0


def bandpower_features(x: np.ndarray, fs: float, bands: list[tuple[str, float, float]],
                       window_s: float, n_pca: int = 0) -> Features:
    """Log band power per channel and band in windows of ``window_s`` seconds, standardised
    (power floored at ``FLOOR`` times its median, so flat stretches do not dominate)."""
    width = max(1, int(round(window_s * fs)))
    power = window_mean(band_envelopes(x, fs, bands), width)
    if power.shape[0] < 2:
        raise ValueError(f"{x.shape[0]} samples give fewer than 2 windows of {window_s:g} s")
    floor = FLOOR * np.median(power, axis=0, keepdims=True) + 1e-300
    X = standardize(np.log(np.maximum(power, floor)).reshape(power.shape[0], -1))
    kept = 1.0
    if n_pca and n_pca < X.shape[1]:
        X, _, kept = pca(X, n_pca)
        X = standardize(X)
    starts = np.arange(power.shape[0]) * width
    return Features(X, np.stack([starts, starts + width], 1), power, fs / width, "bandpower", kept)


def tde_features(x: np.ndarray, fs: float, lags: int, n_pca: int,
                 bands: list[tuple[str, float, float]]) -> Features:
    """Time-delay embedded, PCA-reduced (``n_pca`` components; 0 = 2 x channels) and
    standardised signal; band power at the native rate for the power maps."""
    xs = standardize(np.asarray(x, np.float64))
    E = time_delay_embed(xs, lags)
    n = n_pca or 2 * x.shape[1]
    X, _, kept = pca(E, min(n, E.shape[1]))
    X = standardize(X)
    power = band_envelopes(x, fs, bands)[lags: lags + X.shape[0]]
    idx = np.arange(lags, lags + X.shape[0])
    return Features(X, np.stack([idx, idx + 1], 1), power, fs, "tde", kept)


def power_maps(power: np.ndarray, post: np.ndarray) -> np.ndarray:
    """Posterior-weighted mean band power per state relative to the overall mean, in dB.

    ``power`` (W, C, B), ``post`` (W, K) -> (K, C, B).
    """
    w = post / np.maximum(post.sum(axis=0, keepdims=True), 1e-300)
    mean_k = np.einsum("wk,wcb->kcb", w, power)
    return 10.0 * np.log10(np.maximum(mean_k, 1e-300) / np.maximum(power.mean(axis=0), 1e-300))


def state_spectra(x: np.ndarray, fs: float, weight: np.ndarray, seg_s: float = 0.5,
                  fmax: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Power spectral density per state and channel, posterior-weighted Welch.

    ``x`` (T, C) signal; ``weight`` (T, K) state probability per sample (0 where unknown).
    The signal is cut into Hann-windowed segments of ``seg_s`` seconds with half overlap;
    each segment's periodogram counts for state k with the mean of ``weight[:, k]`` over it.

    Returns frequencies (F,) Hz and spectra (K, C, F) in signal units^2 / Hz.
    """
    x = np.asarray(x, np.float64)
    T, C = x.shape
    n = max(8, int(round(seg_s * fs)))
    if T < n:
        n = T
    hop = max(1, n // 2)
    starts = np.arange(0, T - n + 1, hop)
    win = np.hanning(n)
    scale = 1.0 / (fs * np.sum(win ** 2))
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    keep = freqs <= (fmax if fmax is not None else fs / 2)
    K = weight.shape[1]
    acc = np.zeros((K, C, int(keep.sum())))
    wsum = np.zeros(K)
    for a in range(0, len(starts), 256):  # bounded memory
        s = starts[a: a + 256]
        seg = np.stack([x[i: i + n] for i in s])  # (S, n, C)
        seg = seg - seg.mean(axis=1, keepdims=True)
        spec = np.abs(np.fft.rfft(seg * win[None, :, None], axis=1)) ** 2 * scale
        spec[:, 1:-1 if n % 2 == 0 else None] *= 2.0  # one-sided
        wk = np.stack([weight[i: i + n].mean(axis=0) for i in s])  # (S, K)
        acc += np.einsum("sk,sfc->kcf", wk, spec[:, keep])
        wsum += wk.sum(axis=0)
    return freqs[keep], acc / np.maximum(wsum, 1e-300)[:, None, None]
