"""Non-negative CP decomposition of a 3-way tensor with missing entries (masked HALS).

Our solver (:func:`fit_ntf`) is hierarchical alternating least squares (HALS, Cichocki & Phan
2009) with two structural shortcuts for a C-contiguous ``(I, J, K)`` tensor:

* the three MTTKRPs of one sweep cost two BLAS GEMMs, not three: ``X_(0) @ (B kr C)`` for the
  first mode, then ``Y = A^T X_(0)`` (an ``R x J x K`` array) from which the second and third
  modes' MTTKRPs follow by small contractions; no unfolding copy of the tensor is ever made;
* the GEMMs run in float32 (the tensor's dtype) while every update is done in float64, and the
  loss comes from Gram matrices instead of a full reconstruction.

Missing entries (``mask == False``, or the entries a tensor given as its observed row blocks,
:class:`neurodyn.tensor.observed.ObservedTensor`, does not hold) are fitted by *exact* masked
HALS: each factor row is updated by coordinate descent on the least-squares loss over its own
observed entries, with its own ``R x R`` Gram matrix. With the blocks' window masks grouped
into a few patterns (one per recording length, typically), the Grams of a sweep cost
``O(rows x R^2)`` and the right-hand sides three float32 GEMMs over the observed rows, so
memory and time are proportional to the observed entries and the dense tensor is never
formed. A small ridge on every factor (:data:`RIDGE`) pins the scale of components whose
mass would otherwise drift onto entries no animal observes. It replaces expectation-
maximisation imputation (refilling missing entries with the model), whose convergence rate is
the missing fraction: at 2 % observed (a worm collection) EM was still far from its optimum
after 200 sweeps (rank 6, 100 worms: relative error 0.253 after 200 EM sweeps and 24 s; 0.244
after 10 exact sweeps and 0.7 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange
from threadpoolctl import threadpool_limits

from neurodyn.errors import InputError
from neurodyn.guard import check_alloc
from neurodyn.params import ParamError
from neurodyn.tensor.observed import ObservedTensor
from neurodyn.workers import map_tasks

#: Ridge of the masked fit, as a fraction of the observed sum of squares at a balanced model:
#: exact masked least squares leaves the scale of a component free where its mass sits on
#: entries no animal observes, and HALS then grows it without bound (weights of 1e18 at 100
#: worms, ranks 6 and 10); 1e-4 keeps the weights sane at no cost in error (100 worms: 0.229
#: against 0.232 at rank 6, 0.2225 against 0.2230 at rank 10).
RIDGE = 1e-4
#: A tensor as the solvers take it: dense (with an optional mask) or its observed blocks.
Tensor = np.ndarray | ObservedTensor


@dataclass
class CPResult:
    """A fitted non-negative CP model ``X ~ sum_r w_r a_r o b_r o c_r``.

    Attributes
    ----------
    weights : array (R,)
        Component weights, descending.
    factors : list of 3 arrays (I, R), (J, R), (K, R)
        Non-negative factors with unit-L2-norm columns, ordered like ``weights``.
    relative_error : float
        ``||M * (X - Xhat)|| / ||M * X||`` over observed entries.
    errors : array (n_iter,)
        Relative error after each sweep.
    n_iter : int
    seed : int
        Seed of the random initialisation.
    """

    weights: np.ndarray
    factors: list[np.ndarray]
    relative_error: float
    errors: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_iter: int = 0
    seed: int = 0

    @property
    def rank(self) -> int:
        return int(self.weights.shape[0])

    def full(self) -> np.ndarray:
        """Reconstructed tensor (I, J, K) float64."""
        a, b, c = self.factors
        return np.einsum("r,ir,jr,kr->ijk", self.weights, a, b, c)


def khatri_rao(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Column-wise Kronecker product, row ``j * K + k`` = ``b[j] * c[k]``; (J*K, R)."""
    return (b[:, None, :] * c[None, :, :]).reshape(-1, b.shape[1])


@njit(cache=True)
def _entry(a: np.ndarray, b: np.ndarray, c: np.ndarray, p: int, w: int, k: int) -> float:
    """Model value ``sum_r a[p, r] b[w, r] c[k, r]``."""
    m = 0.0
    for r in range(a.shape[1]):
        m += a[p, r] * b[w, r] * c[k, r]
    return m


@njit(parallel=True, cache=True)
def _observed_sq_error(values: np.ndarray, mask: np.ndarray, pair: np.ndarray,
                       animal: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per row (E,): squared error of the model and squared value over observed entries."""
    E, W = values.shape
    err = np.zeros(E)
    tot = np.zeros(E)
    for e in prange(E):
        p, k = pair[e], animal[e]
        for w in range(W):
            if mask[e, w]:
                v = values[e, w]
                d = v - _entry(a, b, c, p, w, k)
                err[e] += d * d
                tot[e] += v * v
    return err, tot


@njit(parallel=True, cache=True)
def model_where(mask: np.ndarray, pair: np.ndarray, animal: np.ndarray, a: np.ndarray,
                 b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The model at the True entries of a row-block ``mask`` (E, W), in the order of
    ``values[mask]``; float64 (n,)."""
    E, W = mask.shape
    start = np.zeros(E + 1, dtype=np.int64)
    for e in range(E):
        n = 0
        for w in range(W):
            n += mask[e, w]
        start[e + 1] = start[e] + n
    out = np.empty(start[E])
    for e in prange(E):
        i = start[e]
        for w in range(W):
            if mask[e, w]:
                out[i] = _entry(a, b, c, pair[e], w, animal[e])
                i += 1
    return out


@njit(parallel=True, cache=True)
def _hals_rows(f: np.ndarray, h: np.ndarray, gram: np.ndarray, eps: float, n_inner: int,
               ridge: float = 0.0, stop: float = 1e-4) -> None:
    """Exact HALS of every row of ``f`` (n, R) in place, each with its own right-hand side
    ``h[i]`` and Gram ``gram[i]`` (R, R), plus ``ridge`` on the diagonal (the penalty
    ``ridge / 2 * ||f||^2``): up to ``n_inner`` coordinate-descent passes over the columns,
    fewer once a pass moves the row (squared) by under ``stop`` times what the first did.
    A row without data or ridge (zero Gram diagonal) is set to ``eps``."""
    n, R = f.shape
    for i in prange(n):
        first = 0.0
        for sweep in range(n_inner):
            moved = 0.0
            for r in range(R):
                g = gram[i, r, r] + ridge
                if g <= 0.0:
                    f[i, r] = eps
                    continue
                s = h[i, r] - ridge * f[i, r]
                for q in range(R):
                    s -= gram[i, r, q] * f[i, q]
                new = max(eps, f[i, r] + s / g)
                moved += (new - f[i, r]) ** 2
                f[i, r] = new
            if sweep == 0:
                first = moved
            elif moved <= stop * first:
                break


@njit(parallel=True, cache=True)
def _pair_stats(xb: np.ndarray, animal: np.ndarray, group: np.ndarray, by_pair: np.ndarray,
                starts: np.ndarray, c: np.ndarray, m: np.ndarray, h: np.ndarray,
                gram: np.ndarray) -> None:
    """First-mode right-hand sides ``h[p] = sum_e xb[e] * c[animal[e]]`` and Grams
    ``gram[p] = sum_e m[group[e]]`` over the rows ``e`` of pair ``p`` (``by_pair[starts[p]:
    starts[p + 1]]``), written into ``h`` (P, R) and ``gram`` (P, R, R)."""
    R = xb.shape[1]
    for p in prange(starts.shape[0] - 1):
        for r in range(R):
            h[p, r] = 0.0
            for q in range(r, R):
                gram[p, r, q] = 0.0
        for i in range(starts[p], starts[p + 1]):
            e = by_pair[i]
            k, g = animal[e], group[e]
            for r in range(R):
                h[p, r] += xb[e, r] * c[k, r]
                for q in range(r, R):
                    gram[p, r, q] += m[g, r, q]
        for r in range(R):
            for q in range(r):
                gram[p, r, q] = gram[p, q, r]


@njit(parallel=True, cache=True)
def _group_outer(a: np.ndarray, pair: np.ndarray, by_group: np.ndarray, starts: np.ndarray
                 ) -> np.ndarray:
    """``S[g] = sum over rows e of group g of outer(a[pair[e]], a[pair[e]])`` (rows of group
    ``g``: ``by_group[starts[g]:starts[g + 1]]``); (n_groups, R, R)."""
    R = a.shape[1]
    n_groups = starts.shape[0] - 1
    out = np.zeros((n_groups, R, R))
    for g in prange(n_groups):
        for i in range(starts[g], starts[g + 1]):
            p = pair[by_group[i]]
            for r in range(R):
                v = a[p, r]
                for q in range(r, R):
                    out[g, r, q] += v * a[p, q]
        for r in range(R):
            for q in range(r):
                out[g, r, q] = out[g, q, r]
    return out


@njit(parallel=True, cache=True)
def _animal_rhs(xb: np.ndarray, a: np.ndarray, pair: np.ndarray, offsets: np.ndarray
                ) -> np.ndarray:
    """Third-mode right-hand sides ``h[k] = sum over rows e of animal k of a[pair[e]] * xb[e]``."""
    A, R = offsets.shape[0] - 1, xb.shape[1]
    h = np.zeros((A, R))
    for k in prange(A):
        for e in range(offsets[k], offsets[k + 1]):
            p = pair[e]
            for r in range(R):
                h[k, r] += a[p, r] * xb[e, r]
    return h


def _order(index: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by ``index`` (stable) and the start of each of the ``n`` values' runs."""
    order = np.argsort(index, kind="stable")
    starts = np.searchsorted(index[order], np.arange(n + 1))
    return order.astype(np.int64), starts.astype(np.int64)


@dataclass
class RowGroups:
    """Rows of an :class:`ObservedTensor` grouped by (animal, window mask); rows of one
    recording share a mask, so there are about as many groups as animals.

    ``group`` (E,): each row's group; ``animal`` (n_groups,) and ``mask`` (n_groups, W) float64:
    each group's animal and windows; ``row_animal`` (E,); ``by_pair``/``pair_starts`` and
    ``by_group``/``group_starts``: the rows sorted by pair / group and where each run starts.
    """

    group: np.ndarray
    animal: np.ndarray
    mask: np.ndarray
    row_animal: np.ndarray
    by_pair: np.ndarray
    pair_starts: np.ndarray
    by_group: np.ndarray
    group_starts: np.ndarray

    @classmethod
    def of(cls, t: ObservedTensor) -> RowGroups:
        packed = np.ascontiguousarray(np.packbits(t.mask, axis=1))
        key = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first, pattern = np.unique(key, return_index=True, return_inverse=True)
        animal = t.animal_index()
        combo = animal * len(first) + pattern.ravel()
        _, g_first, group = np.unique(combo, return_index=True, return_inverse=True)
        group = group.ravel().astype(np.int64)
        return cls(group, animal[g_first], t.mask[g_first].astype(np.float64), animal,
                   *_order(t.pair_index, t.shape[0]), *_order(group, len(g_first)))

    def animal_system(self, t: ObservedTensor, a: np.ndarray, b: np.ndarray,
                      s_a: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Right-hand sides (A, R) and Grams (A, R, R) of the animal factor's masked least
        squares given the pair and window factors (``s_a``: :func:`_group_outer` of ``a``)."""
        if s_a is None:
            s_a = _group_outer(a, t.pair_index, self.by_group, self.group_starts)
        bg = np.einsum("gw,wr,ws->grs", self.mask, b, b)
        xb = (t.values @ b.astype(np.float32)).astype(np.float64)
        h = _animal_rhs(xb, a, t.pair_index, t.offsets)
        gram = np.zeros((t.shape[2], a.shape[1], a.shape[1]))
        np.add.at(gram, self.animal, s_a * bg)
        return h, gram


def animal_loadings(t: ObservedTensor, a: np.ndarray, b: np.ndarray, *, n_inner: int = 100,
                    eps: float = 1e-12) -> np.ndarray:
    """The non-negative animal factor (A, R) that best fits ``t``'s observed entries given
    the pair factor ``a`` (P, R) and window factor ``b`` (W, R): per-animal masked
    non-negative least squares, by ``n_inner`` HALS passes from zero."""
    rows = RowGroups.of(t)
    with threadpool_limits(limits=1, user_api="blas"):
        h, gram = rows.animal_system(t, np.asarray(a, np.float64), np.asarray(b, np.float64))
    c = np.full((t.shape[2], a.shape[1]), eps)
    _hals_rows(c, h, gram, eps, n_inner, 0.0, 0.0)
    return c


def _hals_update(f: np.ndarray, mt: np.ndarray, v: np.ndarray, eps: float, n_inner: int) -> None:
    """HALS sweeps over the columns of ``f`` in place, given MTTKRP ``mt`` and Gram ``v``.

    Up to ``n_inner`` sweeps (the MTTKRP is reused, so extra sweeps are cheap); stops early
    when a sweep moves the factor by less than 1 % of what the first sweep did (squared norms).
    """
    first = 0.0
    for sweep in range(n_inner):
        moved = 0.0
        for r in range(f.shape[1]):
            if v[r, r] <= 0:
                continue
            new = np.maximum(eps, f[:, r] + (mt[:, r] - f @ v[:, r]) / v[r, r])
            moved += float(np.sum((new - f[:, r]) ** 2))
            f[:, r] = new
        if sweep == 0:
            first = moved
        elif moved <= 1e-2 * first:
            break


def _balance(factors: list[np.ndarray]) -> None:
    """Rescale columns so every mode has the same column norm (model unchanged)."""
    norms = np.stack([np.linalg.norm(f, axis=0) for f in factors])
    norms = np.where(norms > 0, norms, 1.0)
    geo = np.exp(np.log(norms).mean(axis=0))
    for f, n in zip(factors, norms, strict=True):
        f *= geo / n


def _checked_norm2(x: np.ndarray) -> float:
    """Sum of squares of a float32 tensor in float64, block by block over the first mode (no
    float64 copy of the whole tensor); :class:`InputError` on a negative or non-finite entry."""
    total = 0.0
    step = max(1, (1 << 22) // max(1, x[0].size))
    for i0 in range(0, x.shape[0], step):
        b = x[i0:i0 + step].astype(np.float64)
        sq = float(np.dot(b.ravel(), b.ravel()))
        if not np.isfinite(sq) or (b.size and float(b.min()) < 0):
            raise InputError(None, "NTF needs a finite non-negative tensor")
        total += sq
    return total


def random_init(shape: tuple[int, int, int], rank: int, seed: int, norm_x: float) -> list[np.ndarray]:
    """Uniform [0, 1) factors scaled so that the model's norm roughly matches ``norm_x``."""
    rng = np.random.default_rng(seed)
    factors = [rng.random((n, rank)) for n in shape]
    grams = [f.T @ f for f in factors]
    norm_model = np.sqrt(max(float(np.sum(grams[0] * grams[1] * grams[2])), 1e-300))
    scale = (norm_x / norm_model) ** (1.0 / 3.0) if norm_x > 0 else 1.0
    return [f * scale for f in factors]


def normalise(factors: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Unit-norm columns, weights = product of norms, components sorted by weight (desc)."""
    norms = np.stack([np.linalg.norm(f, axis=0) for f in factors])
    weights = np.prod(norms, axis=0)
    safe = np.where(norms > 0, norms, 1.0)
    unit = [f / s for f, s in zip(factors, safe, strict=True)]
    order = np.argsort(-weights, kind="stable")
    return weights[order], [u[:, order] for u in unit]


def fit_ntf(
    x: Tensor,
    rank: int,
    mask: np.ndarray | None = None,
    *,
    n_iter_max: int = 200,
    tol: float = 1e-6,
    seed: int = 0,
    init: list[np.ndarray] | None = None,
    eps: float = 1e-12,
    n_inner: int = 5,
) -> CPResult:
    """Non-negative CP decomposition by masked HALS.

    Parameters
    ----------
    x : array (I, J, K) or ObservedTensor
        Non-negative data (float32 recommended; copied to float32 C order), or its observed
        entries as row blocks (fitted in memory and time proportional to them). A dense
        tensor with missing entries is fitted in that form too: the same iterates.
    rank : int
        Number of components R.
    mask : bool array (I, J, K), optional
        True where observed; unobserved entries (and their values) do not enter the loss.
        Dense ``x`` only.
    n_iter_max : int
        Maximum number of sweeps.
    tol : float
        Stop when the relative error improves by less than ``tol`` (absolute) between sweeps.
    seed : int
        Seed of the random initialisation (ignored when ``init`` is given).
    init : list of 3 arrays (I, R), (J, R), (K, R), optional
        Initial factors.
    eps : float
        Floor of factor entries (keeps columns from dying at exactly zero).
    n_inner : int
        Maximum HALS sweeps per mode and outer iteration (reusing the mode's MTTKRP).

    Returns
    -------
    CPResult
    """
    if rank < 1:
        raise ParamError("rank", f"must be >= 1, got {rank}")
    if isinstance(x, ObservedTensor):
        if mask is not None:
            raise InputError(None, "an ObservedTensor carries its own mask; pass mask=None")
        # its GEMMs are (R, R)-small: idle BLAS threads spinning beside the numba kernels
        # cost 35 % of the sweep time (100 worms, 2 cores), so BLAS runs on one thread here
        with threadpool_limits(limits=1, user_api="blas"):
            return _fit_observed(x, rank, n_iter_max=n_iter_max, tol=tol, seed=seed,
                                 init=init, eps=eps, n_inner=n_inner)
    if x.ndim != 3:
        raise InputError(None, f"NTF needs a 3-way tensor, got shape {x.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != x.shape:
            raise InputError(None, f"mask shape {mask.shape} differs from tensor {x.shape}")
        if not mask.all():  # exact masked HALS on the observed entries
            return fit_ntf(ObservedTensor.from_dense(x, mask), rank, n_iter_max=n_iter_max,
                           tol=tol, seed=seed, init=init, eps=eps, n_inner=n_inner)
    I, J, K = x.shape
    # the largest arrays: Khatri-Rao product, its float32 copy and the (R, J*K) projection,
    # and about six (R, R) Gram matrices and their products
    check_alloc((3 * max(J * K, I) + 6 * rank, rank), np.float64, f"the rank-{rank} NTF workspace",
                param="rank")
    xf = np.array(x, dtype=np.float32, order="C", copy=True)
    norm_obs2 = _checked_norm2(xf)
    if norm_obs2 == 0:
        raise InputError(None, "the tensor is zero on every observed entry")
    if init is None:
        factors = random_init((I, J, K), rank, seed, np.sqrt(norm_obs2))
    else:
        factors = [np.array(f, dtype=np.float64) for f in init]
    a, b, c = factors
    x0 = xf.reshape(I, J * K)
    errors: list[float] = []
    for _ in range(n_iter_max):
        gb, gc = b.T @ b, c.T @ c
        mt = (x0 @ khatri_rao(b, c).astype(np.float32)).astype(np.float64)
        _hals_update(a, mt, gb * gc, eps, n_inner)
        ga = a.T @ a
        y = (a.T.astype(np.float32) @ x0).reshape(rank, J, K).astype(np.float64)
        mt = np.einsum("rjk,kr->jr", y, c)
        _hals_update(b, mt, ga * gc, eps, n_inner)
        gb = b.T @ b
        mt = np.einsum("rjk,jr->kr", y, b)
        _hals_update(c, mt, ga * gb, eps, n_inner)
        gc = c.T @ c
        loss = norm_obs2 - 2.0 * float(np.sum(c * mt)) + float(np.sum(ga * gb * gc))
        errors.append(np.sqrt(max(loss, 0.0) / norm_obs2))
        if len(errors) > 1 and abs(errors[-2] - errors[-1]) < tol:
            break
        _balance([a, b, c])
    n_iter = len(errors)
    weights, unit = normalise([a, b, c])
    err = masked_relative_error(x, None, weights, unit)
    return CPResult(weights, unit, err, np.asarray(errors), n_iter, seed)


def _observed_norm2(t: ObservedTensor) -> float:
    """Sum of squares of the observed entries in float64, row block by row block;
    :class:`InputError` on a negative or non-finite observed entry."""
    total = 0.0
    step = max(1, (1 << 22) // max(1, t.shape[1]))
    for lo in range(0, t.n_rows, step):
        v = t.values[lo:lo + step].astype(np.float64)
        v[~t.mask[lo:lo + step]] = 0.0
        sq = float(np.dot(v.ravel(), v.ravel()))
        if not np.isfinite(sq) or (v.size and float(v.min()) < 0):
            raise InputError(None, "NTF needs a finite non-negative tensor")
        total += sq
    return total


def _fit_observed(t: ObservedTensor, rank: int, *, n_iter_max: int, tol: float, seed: int,
                  init: list[np.ndarray] | None, eps: float, n_inner: int) -> CPResult:
    """:func:`fit_ntf` on observed row blocks by exact masked HALS (see the module notes):
    per sweep, each mode's rows get their right-hand sides from one float32 GEMM over the
    observed rows (unobserved values are stored as 0) and their Grams from per-group sums."""
    P, W, A = t.shape
    E = t.n_rows
    # two (E, R) row products, the (P, R, R) pair Grams, (A + W, R, R) and group Grams
    check_alloc((2 * E * rank + (P + A + W) * rank * (rank + 1) + 3 * P * rank,),
                np.float64, f"the rank-{rank} NTF workspace", param="rank")
    norm_obs2 = _observed_norm2(t)
    if norm_obs2 == 0:
        raise InputError(None, "the tensor is zero on every observed entry")
    if init is None:
        obs_frac = max(t.observed_fraction, 1e-12)
        factors = random_init((P, W, A), rank, seed, np.sqrt(norm_obs2 / obs_frac))
    else:
        factors = [np.array(f, dtype=np.float64) for f in init]
    a, b, c = factors
    pair = t.pair_index
    rows = RowGroups.of(t)
    # RIDGE x the loss scale, per unit of squared factor norm of a balanced model of that scale
    per_mode = np.cbrt(norm_obs2 / (rank * max(t.observed_fraction, 1e-12)))
    ridge = RIDGE * norm_obs2 / (3 * rank * per_mode)
    h_a, gram_a = np.empty((P, rank)), np.empty((P, rank, rank))
    errors: list[float] = []
    for _ in range(n_iter_max):
        # mode 0: rows of pair p span its animals' observed windows
        bg = np.einsum("gw,wr,ws->grs", rows.mask, b, b)
        cc = c[rows.animal]
        xb = (t.values @ b.astype(np.float32)).astype(np.float64)
        _pair_stats(xb, rows.row_animal, rows.group, rows.by_pair, rows.pair_starts, c,
                    bg * cc[:, :, None] * cc[:, None, :], h_a, gram_a)
        _hals_rows(a, h_a, gram_a, eps, n_inner, ridge)
        # mode 1: window w sees the rows whose mask holds it
        s_a = _group_outer(a, pair, rows.by_group, rows.group_starts)
        v = (a[pair] * c[rows.row_animal]).astype(np.float32)
        h = (t.values.T @ v).astype(np.float64)
        gram = np.einsum("gw,grs->wrs", rows.mask, s_a * cc[:, :, None] * cc[:, None, :])
        _hals_rows(b, h, gram, eps, n_inner, ridge)
        # mode 2: animal k's rows over their observed windows
        h, gram = rows.animal_system(t, a, b, s_a)
        _hals_rows(c, h, gram, eps, n_inner, ridge)
        # the masked loss of this sweep's model, from the last mode's statistics
        loss = norm_obs2 - 2.0 * float(np.sum(c * h)) + float(np.einsum("kr,krs,ks->", c, gram, c))
        errors.append(np.sqrt(max(loss, 0.0) / norm_obs2))
        _balance([a, b, c])
        if len(errors) > 1 and abs(errors[-2] - errors[-1]) < tol:
            break
    n_iter = len(errors)
    weights, unit = normalise([a, b, c])
    err = masked_relative_error(t, None, weights, unit)
    return CPResult(weights, unit, err, np.asarray(errors), n_iter, seed)


def _refuse_missing(missing: float) -> None:
    """tensorly's solver has no mask: :class:`ParamError` when entries are missing."""
    if missing > 0:
        raise ParamError("solver", f"tensorly's solver cannot skip missing entries "
                                   f"({missing:.1%} of the tensor is unobserved); use the "
                                   "default solver, or `affinity --align intersection`")


def fit_tensorly(
    x: Tensor,
    rank: int,
    mask: np.ndarray | None = None,
    *,
    n_iter_max: int = 200,
    tol: float = 1e-6,
    seed: int = 0,
    init: list[np.ndarray] | None = None,
) -> CPResult:
    """The same model fitted by tensorly's ``non_negative_parafac_hals``, for cross-checking.

    Starts from the same random factors as :func:`fit_ntf` with this ``seed``, so the two
    solvers can be compared fit for fit. tensorly's solver has no mask: a tensor with missing
    entries is refused. ``tol`` is tensorly's (absolute change of the relative error).
    """
    from tensorly.cp_tensor import CPTensor
    from tensorly.decomposition import non_negative_parafac_hals

    if isinstance(x, ObservedTensor):
        _refuse_missing(1.0 - x.observed_fraction)
        x, mask = x.to_dense()[0], None
    if mask is not None:
        _refuse_missing(1.0 - float(np.mean(mask)))
    xf = np.asarray(x, dtype=np.float64)
    if np.any(xf < 0) or not np.all(np.isfinite(xf)):
        raise InputError(None, "NTF needs a finite non-negative tensor")
    norm = float(np.sqrt(np.sum(xf ** 2)))
    factors = init if init is not None else random_init(xf.shape, rank, seed, norm)
    start = CPTensor((np.ones(rank), [np.array(f, dtype=np.float64) for f in factors]))
    cp, errors = non_negative_parafac_hals(xf, rank, n_iter_max=n_iter_max, init=start,
                                           tol=tol, return_errors=True)
    a, b, c = (np.asarray(f, dtype=np.float64) for f in cp.factors)
    weights, unit = normalise([a * np.asarray(cp.weights, dtype=np.float64)[None, :], b, c])
    err = masked_relative_error(x, None, weights, unit)
    n_iter = len(errors) if errors else n_iter_max  # tensorly records errors only when tol > 0
    return CPResult(weights, unit, err, np.asarray(errors, dtype=float), n_iter, seed)


#: --solver: name -> fitting function with the signature of :func:`fit_ntf`
SOLVERS = {"hals": fit_ntf, "tensorly": fit_tensorly}


def masked_relative_error(
    x: Tensor, mask: np.ndarray | None, weights: np.ndarray, factors: list[np.ndarray]
) -> float:
    """``||M * (X - Xhat)|| / ||M * X||`` computed exactly (block-wise over the first mode, or
    over the observed entries of an :class:`ObservedTensor`, whose mask it carries)."""
    a, b, c = factors
    if isinstance(x, ObservedTensor):
        num, den = _observed_sq_error(x.values, x.mask, x.pair_index, x.animal_index(),
                                      a * weights[None, :], b, c)
        den_s = float(np.sum(den))
        return float(np.sqrt(float(np.sum(num)) / den_s)) if den_s > 0 else 0.0
    bc = khatri_rao(b, c) * weights[None, :]
    num = den = 0.0
    I = x.shape[0]
    step = max(1, (1 << 22) // max(1, x.shape[1] * x.shape[2]))
    for i0 in range(0, I, step):
        xb = np.asarray(x[i0:i0 + step], dtype=np.float64).reshape(-1, bc.shape[0])
        rec = a[i0:i0 + step] @ bc.T
        d = xb - rec
        if mask is not None:
            mb = mask[i0:i0 + step].reshape(xb.shape)
            d = d[mb]
            xb = xb[mb]
        num += float(np.sum(d * d))
        den += float(np.sum(xb * xb))
    return float(np.sqrt(num / den)) if den > 0 else 0.0


def restart_seeds(seed: int, n: int) -> list[int]:
    """``n`` reproducible initialisation seeds derived from ``seed``."""
    return [int(s) for s in np.random.default_rng(seed).integers(0, 2**31 - 1, size=n)]


def fit_restarts(
    x: Tensor,
    rank: int,
    mask: np.ndarray | None = None,
    *,
    n_restarts: int = 5,
    seed: int = 0,
    jobs: int = 1,
    solver: str = "hals",
    **kw,
) -> list[CPResult]:
    """Fit from ``n_restarts`` random initialisations, in ``jobs`` processes; results sorted by
    error (best first), independent of ``jobs``. ``solver``: a key of :data:`SOLVERS`. ``x``:
    a dense tensor with ``mask``, or an :class:`ObservedTensor` (``mask`` None)."""
    fit = SOLVERS[solver]
    fits = map_tasks(lambda s, tick: fit(x, rank, mask, seed=s, **kw),
                     restart_seeds(seed, n_restarts), jobs=jobs)
    return sorted(fits, key=lambda r: r.relative_error)
