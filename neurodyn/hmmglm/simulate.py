"""Ground-truth data from the HMM-GLM generative model (incl. the published synthetic setting).

Published setting (Li et al., ICLR 2024): K = 5 states, N = 20 neurons, 50 sequences of 2,000
bins, adjacency classes inhibitory / none / excitatory drawn per pair with probabilities about
0.1 / 0.8 / 0.1. Here a shared "connectome" class matrix is drawn once; each state keeps it
and redraws a fraction ``resample`` of its pairs from the same class probabilities, so the
states share structure (what the gaussian / onehot priors exploit) yet differ.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from neurodyn.hmmglm.basis import exp_basis
from neurodyn.hmmglm.model import ModelSpec, Params


@nb.njit(cache=True)
def _draw(z, starts, stops, bias, W, basis, code, cap, noise_sd, rng):
    T = z.shape[0]
    K, N = bias.shape
    L = basis.shape[0]
    y = np.zeros((T, N), dtype=np.float32)
    h = np.zeros(N)
    for s in range(starts.shape[0]):
        a, b = starts[s], stops[s]
        for t in range(a, b):
            h[:] = 0.0
            for lag in range(min(L, t - a)):
                for m in range(N):
                    h[m] += basis[lag] * y[t - 1 - lag, m]
            k = z[t]
            for n in range(N):
                eta = bias[k, n]
                for m in range(N):
                    eta += W[k, n, m] * h[m]
                if code == 0:
                    r = eta if eta > 30 else np.log1p(np.exp(eta))
                    y[t, n] = rng.poisson(r)
                elif code == 1:
                    y[t, n] = rng.poisson(np.exp(min(eta, 10.0)))
                elif code == 2:
                    y[t, n] = rng.poisson(cap / (1.0 + np.exp(-eta)))
                elif code == 3:
                    y[t, n] = 1.0 if rng.random() < 1.0 / (1.0 + np.exp(-eta)) else 0.0
                else:
                    y[t, n] = eta + noise_sd * rng.standard_normal()
    return y


def random_params(n_states: int = 5, n_neurons: int = 20, *, class_prob=(0.1, 0.8, 0.1),
                  resample: float = 0.2, strength: tuple[float, float] = (0.3, 0.6),
                  bias_mean: float = -0.5, bias_state_sd: float = 0.5, stay: float = 0.99,
                  self_history: bool = True, seed: int = 0) -> tuple[Params, dict]:
    """Draw HMM-GLM parameters with a shared connectome.

    Returns
    -------
    params : Params
    extra : dict
        ``adjacency`` (K, N, N) int8 classes -1/0/+1, ``connectome`` (N, N) shared classes,
        ``strength`` (N, N) magnitudes (``W[k] = adjacency[k] * strength``).
    """
    rng = np.random.default_rng(seed)
    K, N = n_states, n_neurons
    p = np.asarray(class_prob, float) / np.sum(class_prob)
    base = rng.choice([-1, 0, 1], size=(N, N), p=p)
    adj = np.repeat(base[None], K, axis=0)
    redraw = rng.random((K, N, N)) < resample
    adj[redraw] = rng.choice([-1, 0, 1], size=int(redraw.sum()), p=p)
    if not self_history:
        adj[:, np.arange(N), np.arange(N)] = 0
        base[np.arange(N), np.arange(N)] = 0
    S = rng.uniform(*strength, size=(N, N))
    W = adj * S[None]
    bias = bias_mean + rng.uniform(-0.5, 0.5, size=N)[None] + rng.normal(0, bias_state_sd, (K, N))
    P = np.full((K, K), (1 - stay) / max(K - 1, 1))
    np.fill_diagonal(P, stay if K > 1 else 1.0)
    params = Params(pi0=np.full(K, 1.0 / K), P=P, bias=bias, W=W, noise_var=np.ones(N))
    return params, {"adjacency": adj.astype(np.int8), "connectome": base.astype(np.int8),
                    "strength": S}


def simulate_states(params: Params, n_sequences: int, seq_len: int, seed: int = 0) -> np.ndarray:
    """Markov state paths, concatenated: (n_sequences * seq_len,) int64."""
    rng = np.random.default_rng(seed)
    K = params.n_states
    z = np.empty(n_sequences * seq_len, dtype=np.int64)
    cum = np.cumsum(params.P, axis=1)
    for s in range(n_sequences):
        a = s * seq_len
        z[a] = rng.choice(K, p=params.pi0)
        u = rng.random(seq_len)
        for t in range(1, seq_len):
            z[a + t] = min(int(np.searchsorted(cum[z[a + t - 1]], u[t])), K - 1)
    return z


def simulate_observations(params: Params, z: np.ndarray, starts: np.ndarray, stops: np.ndarray,
                          spec: ModelSpec, basis: np.ndarray, seed: int = 0) -> np.ndarray:
    """Observations (T, N) float32 given states ``z`` (T,), drawn bin by bin with history."""
    noise_sd = float(np.sqrt(np.mean(params.noise_var)))
    return _draw(np.asarray(z, np.int64), np.asarray(starts, np.int64), np.asarray(stops, np.int64),
                 params.bias, params.W, np.asarray(basis, np.float64), spec.code, spec.rate_cap,
                 noise_sd, np.random.default_rng(seed))


def simulate_hmmglm(n_states: int = 5, n_neurons: int = 20, n_sequences: int = 50,
                    seq_len: int = 2000, *, spec: ModelSpec | None = None, n_lags: int = 5,
                    tau: float | None = None, seed: int = 0, **param_kw) -> tuple[np.ndarray, dict]:
    """Simulate spike counts from an HMM-GLM with a shared connectome.

    Parameters
    ----------
    n_states, n_neurons, n_sequences, seq_len : int
        Defaults are the published setting (K=5, N=20, 50 x 2,000 bins).
    spec : ModelSpec, optional
        Observation model (default Poisson with softplus link).
    n_lags : int
        Length of the normalised exponential history basis.
    tau : float, optional
        Its decay constant in bins (default ``n_lags / 2``).
    seed : int
    **param_kw
        Passed to :func:`random_params` (class_prob, resample, strength, stay...).

    Returns
    -------
    y : array (n_sequences * seq_len, N) float32
        Sequences concatenated in time.
    truth : dict
        ``states`` (T,), ``bias``, ``weights`` (K, N, N), ``transition``, ``initial``,
        ``adjacency`` (K, N, N), ``connectome`` (N, N), ``strength`` (N, N), ``basis`` (L,),
        ``starts``, ``stops`` (sequence ranges).
    """
    spec = spec or ModelSpec()
    ss = np.random.SeedSequence(seed)
    s1, s2, s3 = (int(c.generate_state(1)[0]) for c in ss.spawn(3))
    params, extra = random_params(n_states, n_neurons, self_history=spec.self_history, seed=s1,
                                  **param_kw)
    z = simulate_states(params, n_sequences, seq_len, seed=s2)
    starts = np.arange(n_sequences, dtype=np.int64) * seq_len
    stops = starts + seq_len
    basis = exp_basis(n_lags, tau)
    y = simulate_observations(params, z, starts, stops, spec, basis, seed=s3)
    truth = {"states": z, "bias": params.bias, "weights": params.W, "transition": params.P,
             "initial": params.pi0, "basis": basis, "starts": starts, "stops": stops, **extra}
    return y, truth


def _narrowband(rng: np.random.Generator, T: int, C: int, fs: float, lo: float, hi: float
                ) -> np.ndarray:
    """Unit-variance Gaussian noise (T, C) with a flat spectrum on [lo, hi] Hz only."""
    f = np.fft.rfftfreq(T, 1.0 / fs)
    spec = rng.normal(size=(f.size, C)) + 1j * rng.normal(size=(f.size, C))
    spec[(f < lo) | (f > hi)] = 0.0
    x = np.fft.irfft(spec, n=T, axis=0)
    return x / x.std(axis=0)


def simulate_oscillatory_states(
    n_states: int = 3, n_channels: int = 8, duration_s: float = 60.0, fs: float = 100.0, *,
    mean_dwell_s: float = 1.0, bands=((8.0, 13.0), (13.0, 30.0)), contrast: float = 3.0,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """EEG-like signals whose band power (alpha, beta by default) switches with a hidden state.

    The state sequence is Markov with geometric dwell times of mean ``mean_dwell_s``; each
    state gives every channel and band an amplitude drawn from ``{1, contrast}`` (distinct
    patterns across states), on top of unit broadband noise.

    Returns
    -------
    x : array (T, C) float32
    truth : dict
        ``states`` (T,) int, ``amplitude`` (K, C, B), ``fs``, ``bands`` (B, 2).
    """
    rng = np.random.default_rng(seed)
    T = int(round(duration_s * fs))
    K, C, B = n_states, n_channels, len(bands)
    amp = np.ones((K, C, B))
    for k in range(K):  # state k raises band k % B on a channel subset; states then differ
        amp[k, :, k % B] = np.where(rng.random(C) < 0.5, contrast, 1.0)
        amp[k, : max(1, C // 4), k % B] = contrast
        if k >= B:
            amp[k, :, (k + 1) % B] = np.where(rng.random(C) < 0.5, contrast, 1.0)
    stay = 1.0 - 1.0 / max(mean_dwell_s * fs, 1.0)
    z = np.empty(T, np.int64)
    z[0] = rng.integers(K)
    for t in range(1, T):
        z[t] = z[t - 1] if rng.random() < stay or K == 1 else rng.choice(
            [j for j in range(K) if j != z[t - 1]])
    x = rng.normal(size=(T, C))
    for b, (lo, hi) in enumerate(bands):
        x += amp[z, :, b] * _narrowband(rng, T, C, fs, lo, hi)
    return x.astype(np.float32), {"states": z, "amplitude": amp, "fs": fs,
                                  "bands": np.asarray(bands, float)}
