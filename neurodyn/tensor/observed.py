"""A (pair, window, animal) tensor stored by its observed entries only, one block per animal.

At collection scale each animal observes only its own neurons' pairs (~2 % of the tensor), so
the dense ``(P, W, A)`` array and mask are never built: animal ``k`` contributes the rows
``offsets[k]:offsets[k + 1]``, each row one observed pair ``pair_index[row]`` with its values
over all ``W`` windows (windows are shared) and a per-row window mask (a pair can still miss
windows: a recording shorter than the others, or gaps below the affinity stage's
``min_fraction``). Memory is O(rows x W), proportional to the observed entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodyn.errors import InputError
from neurodyn.guard import check_alloc


@dataclass
class ObservedTensor:
    """Observed entries of a non-negative ``(P, W, A)`` tensor, as per-animal row blocks.

    Attributes
    ----------
    shape : tuple of 3 ints
        ``(P, W, A)`` of the dense tensor it stands for.
    pair_index : int64 array (E,)
        Pair (first-mode index) of each row; rows of one animal are contiguous.
    offsets : int64 array (A + 1,)
        Rows of animal ``k`` are ``offsets[k]:offsets[k + 1]``.
    values : float32 array (E, W)
        Values of each row over the windows (0 where ``mask`` is False).
    mask : bool array (E, W)
        True where observed. Entries of pairs without a row are unobserved.
    """

    shape: tuple[int, int, int]
    pair_index: np.ndarray
    offsets: np.ndarray
    values: np.ndarray
    mask: np.ndarray

    def __post_init__(self) -> None:
        self.shape = tuple(int(s) for s in self.shape)
        self.pair_index = np.ascontiguousarray(self.pair_index, dtype=np.int64)
        self.offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        self.values = np.ascontiguousarray(self.values, dtype=np.float32)
        self.mask = np.ascontiguousarray(self.mask, dtype=bool)
        P, W, A = self.shape
        E = self.pair_index.shape[0]
        if self.values.shape != (E, W) or self.mask.shape != (E, W):
            raise InputError(None, f"observed values {self.values.shape} / mask {self.mask.shape} "
                                   f"differ from ({E}, {W}) rows x windows")
        if (self.offsets.shape != (A + 1,) or self.offsets[0] != 0 or self.offsets[-1] != E
                or np.any(np.diff(self.offsets) < 0)):
            raise InputError(None, f"observed offsets must rise from 0 to {E} over {A} animals")
        if E and (self.pair_index.min() < 0 or self.pair_index.max() >= P):
            raise InputError(None, f"observed pair index outside 0..{P - 1}")

    @property
    def n_rows(self) -> int:
        return int(self.pair_index.shape[0])

    @property
    def nnz(self) -> int:
        """Number of observed entries."""
        return int(np.count_nonzero(self.mask))

    @property
    def observed_fraction(self) -> float:
        size = float(np.prod(self.shape))
        return self.nnz / size if size else 0.0

    def animal_index(self) -> np.ndarray:
        """Animal of each row, int64 (E,)."""
        return np.repeat(np.arange(self.shape[2], dtype=np.int64), np.diff(self.offsets))

    def with_mask(self, mask: np.ndarray) -> ObservedTensor:
        """The same rows with another (E, W) mask (values at newly masked entries zeroed)."""
        mask = np.asarray(mask, dtype=bool)
        return ObservedTensor(self.shape, self.pair_index, self.offsets,
                              np.where(mask, self.values, np.float32(0)), mask)

    def animals_subset(self, animals: np.ndarray) -> ObservedTensor:
        """The tensor of the given animals only (in the given order), their blocks copied."""
        animals = np.asarray(animals, dtype=np.int64)
        rows = [np.arange(self.offsets[k], self.offsets[k + 1]) for k in animals]
        return ObservedTensor.from_blocks(
            (self.shape[0], self.shape[1], len(animals)), [self.pair_index[r] for r in rows],
            [self.values[r] for r in rows], [self.mask[r] for r in rows])

    @classmethod
    def from_blocks(cls, shape: tuple[int, int, int], pair_index: list[np.ndarray],
                    values: list[np.ndarray], mask: list[np.ndarray]) -> ObservedTensor:
        """Concatenate per-animal blocks (``pair_index[k]`` (p_k,), ``values[k]`` and ``mask[k]``
        (p_k, W)), in animal order."""
        W = int(shape[1])
        counts = [len(p) for p in pair_index]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

        def cat(parts: list[np.ndarray], dtype: type, tail: tuple[int, ...]) -> np.ndarray:
            return (np.concatenate(parts).astype(dtype, copy=False) if parts
                    else np.zeros((0, *tail), dtype))

        vals = cat(values, np.float32, (W,))
        ok = cat(mask, bool, (W,))
        return cls(shape, cat(pair_index, np.int64, ()), offsets, np.where(ok, vals, 0), ok)

    @classmethod
    def from_dense(cls, x: np.ndarray, mask: np.ndarray | None = None) -> ObservedTensor:
        """Block form of a dense ``(P, W, A)`` tensor: one row per (pair, animal) with at least
        one observed window (every pair when ``mask`` is None)."""
        x = np.asarray(x)
        if x.ndim != 3:
            raise InputError(None, f"expected a 3-way tensor, got shape {x.shape}")
        if mask is None:
            mask = np.ones(x.shape, dtype=bool)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != x.shape:
            raise InputError(None, f"mask shape {mask.shape} differs from tensor {x.shape}")
        idx, vals, ok = [], [], []
        for k in range(x.shape[2]):
            m = mask[:, :, k]
            rows = np.flatnonzero(m.any(axis=1))
            idx.append(rows)
            vals.append(x[rows, :, k])
            ok.append(m[rows])
        return cls.from_blocks(x.shape, idx, vals, ok)

    def to_dense(self) -> tuple[np.ndarray, np.ndarray]:
        """Dense ``(P, W, A)`` float32 values (0 where unobserved) and bool mask; refused with
        :class:`neurodyn.params.ParamError` when they would not fit in memory."""
        check_alloc((*self.shape,), np.float32, "the dense affinity tensor and mask", copies=1.25)
        x = np.zeros(self.shape, dtype=np.float32)
        m = np.zeros(self.shape, dtype=bool)
        for k in range(self.shape[2]):
            lo, hi = self.offsets[k], self.offsets[k + 1]
            x[self.pair_index[lo:hi], :, k] = self.values[lo:hi]
            m[self.pair_index[lo:hi], :, k] = self.mask[lo:hi]
        return x, m
