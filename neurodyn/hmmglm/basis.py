"""Temporal basis and spike-history filtering."""

from __future__ import annotations

import dataclasses

import numba as nb
import numpy as np

#: Range (bins) a learned decay constant is kept in: below 0.05 the basis is lag 1 only,
#: above 100 x n_lags it is flat (the objective no longer changes with tau).
TAU_MIN = 0.05
TAU_MAX_PER_LAG = 100.0


def exp_basis(n_lags: int = 5, tau: float | None = None) -> np.ndarray:
    """Normalised exponential filter over ``n_lags`` past bins.

    Parameters
    ----------
    n_lags : int
        Number of past bins (lag 1 .. n_lags).
    tau : float, optional
        Decay constant in bins (default ``n_lags / 2``).

    Returns
    -------
    array (n_lags,)
        Weights for lags 1..n_lags, summing to 1.
    """
    if n_lags < 1:
        raise ValueError("n_lags must be >= 1")
    tau = n_lags / 2.0 if tau is None else float(tau)
    if tau <= 0:
        raise ValueError("tau must be > 0")
    w = np.exp(-np.arange(n_lags) / tau)
    return w / w.sum()


@nb.njit(cache=True)
def _filter(y, starts, stops, basis):
    T, N = y.shape
    L = basis.shape[0]
    h = np.zeros((T, N), dtype=np.float32)
    for s in range(starts.shape[0]):
        a, b = starts[s], stops[s]
        for t in range(a + 1, b):
            for lag in range(min(L, t - a)):
                w = basis[lag]
                src = t - 1 - lag
                for n in range(N):
                    h[t, n] += w * y[src, n]
    return h


def filter_history(
    y: np.ndarray,
    basis: np.ndarray,
    starts: np.ndarray | None = None,
    stops: np.ndarray | None = None,
) -> np.ndarray:
    """Filtered spike history ``h[t, n] = sum_l basis[l] * y[t - 1 - l, n]``.

    History never crosses a sequence boundary (bins before a sequence start count as 0).

    Parameters
    ----------
    y : array (T, N)
        Counts (or traces) per bin.
    basis : array (L,)
        Weights of lags 1..L.
    starts, stops : int arrays (S,), optional
        Sequence ranges; default one sequence.

    Returns
    -------
    array (T, N) float32
    """
    T = y.shape[0]
    if starts is None:
        starts, stops = np.array([0]), np.array([T])
    return _filter(np.ascontiguousarray(y, dtype=np.float32), np.asarray(starts, np.int64),
                   np.asarray(stops, np.int64), np.asarray(basis, np.float64))


@dataclasses.dataclass(frozen=True)
class HistorySpec:
    """How the history ``h`` is made from the observations, and whether its decay is learned.

    Parameters
    ----------
    n_lags : int
        Lags of the normalised exponential basis (:func:`exp_basis`).
    tau : float
        Decay constant in bins (the starting value when ``learn`` is True).
    starts, stops : int arrays (S,)
        Sequences the history is filtered within (history never crosses their boundaries);
        the full sequences, also when only parts of them are fitted.
    learn : bool
        Learn one ``tau`` shared by all neurons and states inside EM
        (:mod:`neurodyn.hmmglm.learn_basis`).
    """

    n_lags: int
    tau: float
    starts: np.ndarray
    stops: np.ndarray
    learn: bool = False

    @property
    def tau_bounds(self) -> tuple[float, float]:
        """Range (bins) of a learned ``tau``."""
        return TAU_MIN, TAU_MAX_PER_LAG * self.n_lags

    def basis(self, tau: float | None = None) -> np.ndarray:
        """Basis (n_lags,) for decay ``tau`` (default: the starting ``tau``)."""
        return exp_basis(self.n_lags, self.tau if tau is None else tau)

    def filter(self, y: np.ndarray, tau: float | None = None) -> np.ndarray:
        """History (T, N) float32 of ``y`` (T, N) with decay ``tau``."""
        return filter_history(y, self.basis(tau), self.starts, self.stops)
