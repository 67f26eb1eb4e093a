"""Non-negative CP decomposition of a 3-way tensor with missing entries (masked HALS).

Our solver (:func:`fit_ntf`) is hierarchical alternating least squares (HALS, Cichocki & Phan
2009) with two structural shortcuts for a C-contiguous ``(I, J, K)`` tensor:

* the three MTTKRPs of one sweep cost two BLAS GEMMs, not three: ``X_(0) @ (B kr C)`` for the
  first mode, then ``Y = A^T X_(0)`` (an ``R x J x K`` array) from which the second and third
  modes' MTTKRPs follow by small contractions; no unfolding copy of the tensor is ever made;
* the GEMMs run in float32 (the tensor's dtype) while every update is done in float64, and the
  loss comes from Gram matrices instead of a full reconstruction.

Missing entries (``mask == False``) are handled by expectation-maximisation imputation: before
each sweep they are filled with the current model (a numba pass over the tensor), which turns
the masked least-squares loss into a sequence of majorisers that HALS decreases monotonically.
With no missing entry this is plain HALS.

A tensor given as its observed entries (:class:`neurodyn.tensor.observed.ObservedTensor`,
per-animal blocks of observed pairs) is fitted with the *same iterates* without ever forming
the dense tensor: the imputed tensor is ``X_fill = M o X + (1 - M) o model``, so each mode's
MTTKRP is ``MTTKRP(model) + MTTKRP(M o (X - model))``. The first term comes from Gram matrices
(mode 0: ``a @ (B^T B o C^T C)``), the second from the observed residuals only (numba kernels),
so memory and time per sweep are proportional to the observed entries.
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


@njit(parallel=True, cache=True)
def _refill(x: np.ndarray, mask: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Overwrite unobserved entries of ``x`` (I, J, K) with the model; return two sums.

    Returns ``(sum of x**2 before the refill, sum over unobserved of (x_old - model)**2)``.
    """
    I, J, K = x.shape
    R = a.shape[1]
    total = 0.0
    change = 0.0
    for i in prange(I):
        for j in range(J):
            for k in range(K):
                v = x[i, j, k]
                total += v * v
                if not mask[i, j, k]:
                    m = 0.0
                    for r in range(R):
                        m += a[i, r] * b[j, r] * c[k, r]
                    d = v - m
                    change += d * d
                    x[i, j, k] = m
    return total, change


@njit(cache=True)
def _entry(a: np.ndarray, b: np.ndarray, c: np.ndarray, p: int, w: int, k: int) -> float:
    """Model value ``sum_r a[p, r] b[w, r] c[k, r]``."""
    m = 0.0
    for r in range(a.shape[1]):
        m += a[p, r] * b[w, r] * c[k, r]
    return m


@njit(parallel=True, cache=True)
def _observed_residuals(values: np.ndarray, mask: np.ndarray, pair: np.ndarray,
                        animal: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray,
                        res: np.ndarray, g: np.ndarray, sq: np.ndarray) -> None:
    """Residuals of the model on the observed entries of row blocks, in place.

    ``res`` (E, W) = ``mask * (values - model)``; ``g`` (E, R) = ``res @ b`` (row part of the
    first mode's residual MTTKRP); ``sq`` (E,) = squared residuals summed over windows.
    """
    E, W = values.shape
    R = a.shape[1]
    for e in prange(E):
        p, k = pair[e], animal[e]
        ac = np.empty(R)  # the row's a * c, so the model is one R-term product per window
        gr = np.zeros(R)
        for r in range(R):
            ac[r] = a[p, r] * c[k, r]
        s = 0.0
        for w in range(W):
            d = 0.0
            if mask[e, w]:
                m = 0.0
                for r in range(R):
                    m += ac[r] * b[w, r]
                d = values[e, w] - m
                for r in range(R):
                    gr[r] += d * b[w, r]
                s += d * d
            res[e, w] = d
        for r in range(R):
            g[e, r] = gr[r]
        sq[e] = s


@njit(cache=True)
def _scatter_rows(g: np.ndarray, index: np.ndarray, f: np.ndarray, f_index: np.ndarray,
                  n: int) -> np.ndarray:
    """``out[index[e]] += g[e] * f[f_index[e]]`` over rows ``e``; (n, R) float64."""
    out = np.zeros((n, g.shape[1]))
    for e in range(g.shape[0]):
        i, j = index[e], f_index[e]
        for r in range(g.shape[1]):
            out[i, r] += g[e, r] * f[j, r]
    return out


@njit(parallel=True, cache=True)
def _animal_window_sums(res: np.ndarray, offsets: np.ndarray, pair: np.ndarray,
                        a: np.ndarray) -> np.ndarray:
    """``z[k, w, r] = sum over rows e of animal k of res[e, w] * a[pair[e], r]``; (A, W, R).

    Contracts the residuals over pairs once; the second and third modes' residual MTTKRPs
    follow from ``z`` by small products (as ``Y = A^T X`` does in the dense sweep).
    """
    A = offsets.shape[0] - 1
    W, R = res.shape[1], a.shape[1]
    z = np.zeros((A, W, R))
    for k in prange(A):
        for e in range(offsets[k], offsets[k + 1]):
            p = pair[e]
            for w in range(W):
                d = res[e, w]
                if d != 0.0:
                    for r in range(R):
                        z[k, w, r] += d * a[p, r]
    return z


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
        entries as row blocks (fitted in memory and time proportional to them, with the
        same iterates as the dense masked fit; its relative errors are recorded from the
        second sweep on, as for a dense tensor with missing entries).
    rank : int
        Number of components R.
    mask : bool array (I, J, K), optional
        True where observed; unobserved entries do not enter the loss. Dense ``x`` only.
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
    I, J, K = x.shape
    # the largest arrays: Khatri-Rao product, its float32 copy and the (R, J*K) projection,
    # and about six (R, R) Gram matrices and their products
    check_alloc((3 * max(J * K, I) + 6 * rank, rank), np.float64, f"the rank-{rank} NTF workspace",
                param="rank")
    xf = np.array(x, dtype=np.float32, order="C", copy=True)
    if mask is not None:
        mask = np.ascontiguousarray(mask, dtype=bool)
        if mask.shape != x.shape:
            raise InputError(None, f"mask shape {mask.shape} differs from tensor {x.shape}")
        if mask.all():
            mask = None
        else:
            xf[~mask] = 0.0
    I, J, K = xf.shape
    norm_obs2 = _checked_norm2(xf)
    if norm_obs2 == 0:
        raise InputError(None, "the tensor is zero on every observed entry")
    if init is None:
        obs_frac = 1.0 if mask is None else float(mask.mean())
        factors = random_init((I, J, K), rank, seed, np.sqrt(norm_obs2 / max(obs_frac, 1e-12)))
    else:
        factors = [np.array(f, dtype=np.float64) for f in init]
    a, b, c = factors
    x0 = xf.reshape(I, J * K)
    errors: list[float] = []
    inner_prev = gram_prev = 0.0
    for it in range(n_iter_max):
        if mask is not None:
            total, change = _refill(xf, mask, a, b, c)
            if it > 0:
                # masked loss of the previous sweep's model
                loss = total - 2.0 * inner_prev + gram_prev - change
                errors.append(np.sqrt(max(loss, 0.0) / norm_obs2))
                if len(errors) > 1 and abs(errors[-2] - errors[-1]) < tol:
                    break
        ga, gb, gc = a.T @ a, b.T @ b, c.T @ c
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
        inner_prev = float(np.sum(c * mt))
        gram_prev = float(np.sum(ga * gb * gc))
        if mask is None:
            loss = norm_obs2 - 2.0 * inner_prev + gram_prev
            errors.append(np.sqrt(max(loss, 0.0) / norm_obs2))
            if len(errors) > 1 and abs(errors[-2] - errors[-1]) < tol:
                break
        _balance([a, b, c])
    n_iter = it + 1
    weights, unit = normalise([a, b, c])
    err = masked_relative_error(x, mask, weights, unit)
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
    """:func:`fit_ntf` on observed row blocks: the dense EM-HALS sweep with each MTTKRP of
    the imputed tensor split into a Gram part (the model) and an observed-residual part."""
    P, W, A = t.shape
    E = t.n_rows
    # residuals (E, W) float32, their row products (E, R) and per-row losses, the (A, W, R)
    # pair contraction, the (P, R) first-mode MTTKRP and about six (R, R) Gram matrices
    check_alloc((E * (W / 2 + rank + 1) + A * W * rank + 3 * P * rank + 6 * rank * rank,),
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
    pair, animal = t.pair_index, t.animal_index()
    res = np.empty((E, W), dtype=np.float32)
    g = np.empty((E, rank))
    sq = np.empty(E)
    errors: list[float] = []
    for it in range(n_iter_max):
        # the model of this sweep's imputation (the dense code refills with it)
        a0, b0, c0 = a.copy(), b.copy(), c.copy()
        _observed_residuals(t.values, t.mask, pair, animal, a0, b0, c0, res, g, sq)
        if it > 0:
            errors.append(np.sqrt(max(float(np.sum(sq)), 0.0) / norm_obs2))
            if len(errors) > 1 and abs(errors[-2] - errors[-1]) < tol:
                break
        gb0, gc0 = b0.T @ b0, c0.T @ c0
        mt = a0 @ (gb0 * gc0) + _scatter_rows(g, pair, c0, animal, P)
        _hals_update(a, mt, gb0 * gc0, eps, n_inner)
        ga, cross_a = a.T @ a, a0.T @ a
        z = _animal_window_sums(res, t.offsets, pair, a)
        mt = b0 @ (cross_a * gc0) + np.einsum("kwr,kr->wr", z, c0)
        _hals_update(b, mt, ga * gc0, eps, n_inner)
        gb = b.T @ b
        mt = c0 @ (cross_a * (b0.T @ b)) + np.einsum("kwr,wr->kr", z, b)
        _hals_update(c, mt, ga * gb, eps, n_inner)
        _balance([a, b, c])
    n_iter = it + 1
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
