"""Weighted stochastic block model: the description length of a partition.

The model (after Peixoto 2017, "Nonparametric Bayesian inference of the microcanonical
stochastic block model", and Peixoto 2018, "Nonparametric weighted stochastic block models")
describes an undirected weighted graph ``(A, x)``, ``A`` the edge counts and ``x`` the
positive real weight of each edge, in three parts, all in nats:

* **partition** ``b`` of the N nodes into B non-empty blocks,
  ``-ln P(b) = ln C(N-1, B-1) + ln N! - sum_r ln n_r! + ln N``;
* **edges** given the block edge counts ``m_rs``:

  - non-degree-corrected multigraph, microcanonical (level 0 by default, ``ENS_POISSON``,
    graph-tool's default ``dense=False``):
    ``sum_r e_r ln n_r - sum_{r<s} ln m_rs! - sum_r [m_rr ln 2 + ln m_rr!]``;
  - non-degree-corrected, simple graph (level 0 with ``dense=True``, ``ENS_SIMPLE``):
    ``sum_{r<s} ln C(n_r n_s, m_rs) + sum_r ln C(n_r (n_r - 1) / 2, m_rr)``;
  - degree-corrected configuration model (``ENS_DC``):
    ``-sum_{r<s} ln m_rs! - sum_r [m_rr ln 2 + ln m_rr!] + sum_r ln e_r! - sum_i ln k_i!``
    plus the degree prior with the "distributed" hyperprior
    ``sum_r [ln n_r! - sum_k ln eta_k^r! + ln q(e_r, n_r)]`` (``q(m, n)``: partitions of
    ``m`` into at most ``n`` parts, ``e_r = sum_{i in r} k_i``, ``eta_k^r`` the number of
    nodes of degree ``k`` in ``r``);
  - non-degree-corrected multigraph (upper levels of the hierarchy, ``ENS_MULTI``):
    ``sum_{r<s} ln multiset(n_r n_s, m_rs) + sum_r ln multiset(n_r (n_r + 1) / 2, m_rr)``;
* **edge counts** ``m`` themselves: flat, ``ln multiset(B (B + 1) / 2, E)``, or nested: the
  B blocks are the nodes of the next level's multigraph, described by the same model
  (``ENS_MULTI``) recursively until a level with a single block (see :mod:`nested`);
* **weights**: the weights of the ``m_rs`` edges between blocks r and s are i.i.d.
  exponential with rate ``lambda_rs ~ Gamma(alpha, beta)``; integrating ``lambda_rs`` gives
  ``-ln P(x_rs) = -alpha ln beta + ln Gamma(alpha) - ln Gamma(m_rs + alpha)
  + (m_rs + alpha) ln(X_rs + beta)`` with ``X_rs`` the sum of the weights. We use
  ``alpha = 1`` and ``beta`` = mean edge weight (the prior's mean rate is the inverse mean
  weight). The weights are real numbers: each is coded to the resolution
  ``epsilon = beta 2^-WEIGHT_BITS`` (float32 precision relative to the mean weight), which
  adds ``-ln epsilon`` per edge. This constant (same for every partition and variant) turns
  the density into a probability: the description length is a positive number of nats that
  does not depend on the unit of the weights. (graph-tool reports the density part alone,
  which is negative when weights are small numbers: ours = graph-tool's + E ln(1/epsilon).)

  Or log-normal (``W_LOGNORMAL``, :func:`lognormal_statistics`): the log-weights less
  least-squares node factors (``ln w_ij ~ u_i + u_j``) are normal per block pair, mean and
  variance integrated out (:func:`normal_term`); at the same resolution the constant is
  ``sum ln w + E ln(1/epsilon)`` plus the node factors' cost (:func:`factor_cost`). Products of node
  factors (strength-driven weights, as in weighted LFR graphs) then no longer masquerade as
  blocks; which code is shorter is measured, not assumed.

  Or split log-normal (:class:`SplitFactors`): the same with two factors per node, one for
  its edges inside its block and one for its edges to other blocks, ``ln w_ij ~ u_i^d + u_j^d``
  with ``d = [b_i != b_j]``, refitted for each partition (the residuals' prior scale chosen
  by description length on a grid). In
  weighted LFR graphs each node's internal and external strengths are set apart, and the
  one-factor residuals then split each community into sub-blocks of nodes with a similar
  internal/external contrast; the split factors describe such weights exactly at the planted
  partition.

Checked (tests/community/test_communities.py): each term is a normalised code (summed by brute force
over every graph, degree sequence, partition; the weight term integrated); the totals equal
graph-tool 2.45's ``BlockState.entropy()`` / ``NestedBlockState.entropy()`` to 1e-9 nats
(multigraph, ``dense=True, multigraph=False``, nested levels, real-exponential weights with
``rec_params`` alpha = 1, beta = mean weight), except the degree-corrected degree prior, where
graph-tool uses an asymptotic ``ln q(m, n)`` (0.3-1 nat below the exact count on small
blocks). On dense simple graphs the degree-corrected code is long because its configuration
ensemble spreads probability over multigraphs: the simple-graph non-degree-corrected code,
which can split nodes by degree, is then often hundreds of nats shorter, and minimum
description length rightly prefers it (the planted partition is longer under every code).

Every quantity here is a pure function of plain numpy arrays; the kernels are numba-jitted.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

ENS_SIMPLE = 0
ENS_DC = 1
ENS_MULTI = 2
ENS_POISSON = 3

#: weight codes: none (topology only), exponential weights, log-normal weights
W_NONE = 0
W_EXP = 1
W_LOGNORMAL = 2

LQ_MAX_ENTRIES = 20_000_000  # cap on the exact ln q(m, n) table (float64 entries)
#: weights are coded to a resolution of the mean weight / 2^WEIGHT_BITS (float32's precision)
WEIGHT_BITS = 24


#: ``ln Gamma(i)`` for integers ``0 < i < 2^16`` (a lookup is ~10x faster than ``lgamma``)
LGAMMA_TABLE = np.array([math.lgamma(i) if i > 0 else np.inf for i in range(1 << 16)])
LGAMMA_HALF = math.lgamma(0.5)
#: ``ln Gamma((1 + m) / 2)`` for integers ``0 <= m < 2^16`` (the log-normal code's counts)
LGAMMA_HALVES = np.array([math.lgamma(0.5 * (1 + m)) for m in range(1 << 16)])
LOG_PI = math.log(math.pi)


@nb.njit(cache=True)
def lgam(x: float) -> float:
    """``ln Gamma(x)``, from :data:`LGAMMA_TABLE` when ``x`` is a small positive integer."""
    i = int(x)
    if i == x and 0 < i < LGAMMA_TABLE.shape[0]:
        return LGAMMA_TABLE[i]
    return math.lgamma(x)


@nb.njit(cache=True)
def lbinom(n: float, k: float) -> float:
    """``ln C(n, k)``; 0 when ``k`` is 0 or ``n``."""
    if k <= 0.0 or k >= n:
        return 0.0
    return lgam(n + 1.0) - lgam(k + 1.0) - lgam(n - k + 1.0)


@nb.njit(cache=True)
def lmultiset(n: float, k: float) -> float:
    """``ln multiset(n, k) = ln C(n + k - 1, k)`` (0 when ``k`` is 0)."""
    if k <= 0.0:
        return 0.0
    return lbinom(n + k - 1.0, k)


@nb.njit(cache=True)
def log_partitions_table(m_max: int, n_max: int) -> np.ndarray:
    """``out[m, n] = ln q(m, n)``: log number of partitions of ``m`` into at most ``n`` parts.

    Recursion ``q(m, n) = q(m, n - 1) + q(m - n, n)``, ``q(0, n) = 1``, ``q(m > 0, 0) = 0``.
    Shape ``(m_max + 1, n_max + 1)``; entries with ``q = 0`` are ``-inf``.
    """
    out = np.full((m_max + 1, n_max + 1), -np.inf)
    for n in range(n_max + 1):
        out[0, n] = 0.0
    for n in range(1, n_max + 1):
        for m in range(1, m_max + 1):
            a = out[m, n - 1]
            c = out[m - n, n] if m >= n else -np.inf
            if a == -np.inf:
                out[m, n] = c
            elif c == -np.inf:
                out[m, n] = a
            else:
                hi = max(a, c)
                out[m, n] = hi + math.log(math.exp(a - hi) + math.exp(c - hi))
    return out


@nb.njit(cache=True)
def lq(table: np.ndarray, m: int, n: int) -> float:
    """``ln q(m, n)`` from the table, or the uniform prior's ``ln multiset(n, m)`` if too big."""
    if m == 0:
        return 0.0
    if n <= 0:
        return np.inf
    if m < table.shape[0]:
        return table[m, min(n, table.shape[1] - 1)]
    return lmultiset(n, m)


@nb.njit(cache=True)
def pair_term(ens: int, nr: int, ns: int, m: int, same: bool) -> float:
    """Edge-placement cost of one block pair (see the module docstring)."""
    if ens == ENS_SIMPLE:
        if same:
            return lbinom(nr * (nr - 1) / 2.0, m)
        return lbinom(float(nr) * ns, m)
    if ens == ENS_MULTI:
        if same:
            return lmultiset(nr * (nr + 1) / 2.0, m)
        return lmultiset(float(nr) * ns, m)
    # ENS_DC and ENS_POISSON
    if same:
        return -(m * math.log(2.0) + lgam(m + 1.0))
    return -lgam(m + 1.0)


@nb.njit(cache=True)
def weight_term(m: int, xsum: float, alpha: float, beta: float) -> float:
    """``-ln P(weights)`` of ``m`` exponential weights summing to ``xsum`` (Gamma prior)."""
    if m == 0:
        return 0.0
    return (
        -alpha * math.log(beta)
        + lgam(alpha)
        - lgam(m + alpha)
        + (m + alpha) * math.log(xsum + beta)
    )


@nb.njit(cache=True)
def normal_term(m: int, s1: float, s2: float, v0: float) -> float:
    """``-ln p(y)`` of ``m`` normal values with sum ``s1`` and sum of squares ``s2``.

    Mean and variance integrated out under the conjugate normal-scaled-inverse-chi-square prior
    centred on 0 (``k0 = 1`` pseudo-observation for the mean, ``nu0 = 1`` for the variance,
    prior scale ``nu0 s0^2 = v0``): ``m/2 ln pi + 1/2 ln(1 + m) + ln Gamma(1/2)
    - ln Gamma((1 + m)/2) - 1/2 ln v0 + (1 + m)/2 ln V``, ``V = v0 + S + m ybar^2 / (1 + m)``,
    ``S`` the sum of squared deviations from the mean ``ybar``.
    """
    if m == 0:
        return 0.0
    ybar = s1 / m
    ss = max(s2 - s1 * ybar, 0.0)
    v = v0 + ss + m * ybar * ybar / (1.0 + m)
    lg = LGAMMA_HALVES[m] if m < LGAMMA_HALVES.shape[0] else math.lgamma(0.5 * (1.0 + m))
    return (
        0.5 * m * LOG_PI
        + 0.5 * math.log(1.0 + m)
        + LGAMMA_HALF
        - lg
        - 0.5 * math.log(v0)
        + 0.5 * (1.0 + m) * math.log(v)
    )


@nb.njit(cache=True)
def pair_weight_term(wmodel: int, m: int, x: complex, alpha: float, beta: float) -> float:
    """Weight code of one block pair: ``m`` edges whose statistics are ``x`` (real part: sum of
    the weights, or of the log-weights; imaginary part: sum of the squared log-weights).

    ``W_EXP``: :func:`weight_term` with ``(alpha, beta)``; ``W_LOGNORMAL``: :func:`normal_term`
    of the (centred) log-weights with prior scale ``beta``; ``W_NONE``: 0.
    """
    if wmodel == W_EXP:
        return weight_term(m, x.real, alpha, beta)
    if wmodel == W_LOGNORMAL:
        return normal_term(m, x.real, x.imag, beta)
    return 0.0


@nb.njit(cache=True)
def partition_term(n_nodes: int, n_blocks: int) -> float:
    """Partition prior without its ``-sum_r ln n_r!`` part: ``ln C(N-1, B-1) + ln N! + ln N``."""
    return lbinom(n_nodes - 1.0, n_blocks - 1.0) + math.lgamma(n_nodes + 1.0) + math.log(n_nodes)


@nb.njit(cache=True)
def block_stats(A: np.ndarray, X: np.ndarray, b: np.ndarray, n_blocks: int):
    """Block sizes ``n`` (B,), edge counts ``m`` (B, B) and weight sums ``xs`` (B, B).

    ``A`` (N, N) symmetric integer edge counts, diagonal = self-loop counts; ``X`` (N, N) the
    matching weight sums. Off-diagonal ``m[r, s]`` counts edges between r and s; ``m[r, r]``
    counts edges inside r (each once, self-loops included).
    """
    N = A.shape[0]
    n = np.zeros(n_blocks, np.int64)
    m = np.zeros((n_blocks, n_blocks), np.int64)
    xs = np.zeros((n_blocks, n_blocks), np.complex128)
    for i in range(N):
        n[b[i]] += 1
        for j in range(i, N):
            if A[i, j] != 0:
                r, s = b[i], b[j]
                m[r, s] += A[i, j]
                xs[r, s] += X[i, j]
                if r != s:
                    m[s, r] += A[i, j]
                    xs[s, r] += X[i, j]
    return n, m, xs


@nb.njit(cache=True)
def level_dl(
    n: np.ndarray,
    m: np.ndarray,
    xs: np.ndarray,
    ens: int,
    weighted: int,
    alpha: float,
    beta: float,
) -> float:
    """Partition prior plus pair and weight terms of one level (no DC block terms).

    ``weighted``: a weight code (``W_*``; ``True`` = ``W_EXP``). Exponential weights also pay
    ``WEIGHT_BITS ln 2 - ln beta`` each (the density becomes a probability at the resolution
    ``beta 2^-WEIGHT_BITS``); the log-normal code's constant is added by the caller
    (:func:`lognormal_constant`).
    """
    B = n.shape[0]
    precision = WEIGHT_BITS * math.log(2.0) - math.log(beta)
    nnz = 0
    total = 0.0
    for r in range(B):
        if n[r] == 0:
            continue
        nnz += 1
        total -= math.lgamma(n[r] + 1.0)
        for s in range(r, B):
            if n[s] == 0:
                continue
            total += pair_term(ens, n[r], n[s], m[r, s], r == s)
            if weighted == W_EXP:
                total += weight_term(m[r, s], xs[r, s].real, alpha, beta) + m[r, s] * precision
            elif weighted == W_LOGNORMAL:
                total += normal_term(m[r, s], xs[r, s].real, xs[r, s].imag, beta)
    N = 0
    for r in range(B):
        N += n[r]
    return total + partition_term(N, nnz)


@nb.njit(cache=True)
def dc_terms(A: np.ndarray, b: np.ndarray, n_blocks: int, table: np.ndarray) -> float:
    """Degree-corrected extras: ``sum_r [ln e_r! + ln n_r! - sum_k ln eta_k^r! + ln q(e_r, n_r)]
    - sum_i ln k_i!`` (level 0, no self-loops)."""
    N = A.shape[0]
    k = np.zeros(N, np.int64)
    for i in range(N):
        for j in range(N):
            k[i] += A[i, j]
    kmax = 0
    for i in range(N):
        kmax = max(kmax, k[i])
    hist = np.zeros((n_blocks, kmax + 1), np.int64)
    e = np.zeros(n_blocks, np.int64)
    n = np.zeros(n_blocks, np.int64)
    total = 0.0
    for i in range(N):
        hist[b[i], k[i]] += 1
        e[b[i]] += k[i]
        n[b[i]] += 1
        total -= math.lgamma(k[i] + 1.0)
    for r in range(n_blocks):
        if n[r] == 0:
            continue
        total += math.lgamma(e[r] + 1.0) + math.lgamma(n[r] + 1.0) + lq(table, e[r], n[r])
        for d in range(kmax + 1):
            total -= math.lgamma(hist[r, d] + 1.0)
    return total


@nb.njit(cache=True)
def poisson_terms(A: np.ndarray, b: np.ndarray, n_blocks: int) -> float:
    """``sum_r e_r ln n_r`` of the non-degree-corrected multigraph ensemble (level 0)."""
    e = np.zeros(n_blocks, np.int64)
    n = np.zeros(n_blocks, np.int64)
    for i in range(A.shape[0]):
        n[b[i]] += 1
        for j in range(A.shape[0]):
            e[b[i]] += A[i, j]
    total = 0.0
    for r in range(n_blocks):
        if n[r] > 0:
            total += e[r] * math.log(n[r])
    return total


def degree_terms(A: np.ndarray, b: np.ndarray, n_blocks: int, ens: int, table: np.ndarray) -> float:
    """Level-0 terms beyond :func:`level_dl` for ensembles that use degrees (DC, Poisson)."""
    if ens == ENS_DC:
        return float(dc_terms(A, b, n_blocks, table))
    if ens == ENS_POISSON:
        return float(poisson_terms(A, b, n_blocks))
    return 0.0


def level0_ensemble(degree_corrected: bool, dense: bool = False) -> int:
    """Ensemble code of level 0: DC, else the multigraph (default) or simple-graph NDC."""
    if degree_corrected:
        return ENS_DC
    return ENS_SIMPLE if dense else ENS_POISSON


def edges_from_weights(W: np.ndarray, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Edge counts and weights of a weighted graph given as a dense matrix.

    Parameters
    ----------
    W : (N, N) array
        Symmetric non-negative weights; the diagonal is ignored.
    threshold : float
        Entries ``<= threshold`` are not edges.

    Returns
    -------
    A : (N, N) int64
        1 where ``W > threshold`` off the diagonal, else 0.
    X : (N, N) float64
        ``W`` on the edges, 0 elsewhere.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"weights must be a square matrix, got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("weights contain NaN or infinity")
    if np.any(W < 0):
        raise ValueError("weights must be non-negative")
    if not np.allclose(W, W.T, rtol=1e-6, atol=1e-12 * max(1.0, float(np.abs(W).max(initial=0)))):
        raise ValueError("weights must be symmetric")
    W = 0.5 * (W + W.T)
    A = (W > threshold).astype(np.int64)
    np.fill_diagonal(A, 0)
    X = np.where(A > 0, W, 0.0)
    return A, X


def weight_prior(X: np.ndarray, A: np.ndarray) -> tuple[float, float]:
    """Gamma prior ``(alpha, beta)`` of the exponential rates: ``alpha = 1``, ``beta`` = mean weight."""
    E2 = A.sum()
    beta = float(X.sum() / E2) if E2 > 0 else 1.0
    return 1.0, max(beta, 1e-300)


@nb.njit(cache=True)
def node_factors(ei: np.ndarray, ej: np.ndarray, y: np.ndarray, u: np.ndarray,
                 tol: float = 1e-10, max_iter: int = 1000) -> np.ndarray:
    """Least-squares factors ``u`` minimising ``sum_e (y_e - u[ei_e] - u[ej_e])^2``.

    Conjugate gradients on the normal equations ``(D + A) u = sum_{e at a} y_e`` (``D`` the
    slot degrees, ``A`` the slot adjacency; ridge 1e-9, since bipartite parts are singular),
    preconditioned by the diagonal ``D`` (half the iterations on power-law degrees),
    warm-started at ``u`` and updated in place, until the residual of the equations is ``tol``
    times their right-hand side. Returns the residuals ``y - u[ei] - u[ej]``.
    """
    S = u.shape[0]
    E = y.shape[0]
    rhs = np.zeros(S)
    diag = np.full(S, 1e-9)
    for e in range(E):
        rhs[ei[e]] += y[e]
        rhs[ej[e]] += y[e]
        diag[ei[e]] += 1.0
        diag[ej[e]] += 1.0
    r = np.empty(S)
    q = np.empty(S)
    _factor_matvec(ei, ej, u, r)
    for a in range(S):
        r[a] = rhs[a] - r[a]
    z = r / diag
    p = z.copy()
    rz = np.dot(r, z)
    stop = tol * tol * max(np.dot(rhs, rhs), 1e-300)
    for _ in range(max_iter):
        if np.dot(r, r) <= stop:
            break
        _factor_matvec(ei, ej, p, q)
        step = rz / np.dot(p, q)
        u += step * p
        r -= step * q
        z = r / diag
        rz_new = np.dot(r, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    res = np.empty(E)
    for e in range(E):
        res[e] = y[e] - u[ei[e]] - u[ej[e]]
    return res


@nb.njit(cache=True)
def _factor_matvec(ei: np.ndarray, ej: np.ndarray, u: np.ndarray, out: np.ndarray) -> None:
    """``out = (D + A + 1e-9) u`` for the factor system of :func:`node_factors`."""
    for a in range(u.shape[0]):
        out[a] = 1e-9 * u[a]
    for e in range(ei.shape[0]):
        s = u[ei[e]] + u[ej[e]]
        out[ei[e]] += s
        out[ej[e]] += s


def lognormal_statistics(A: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Edge statistics of the log-normal weight code, its prior scale and its constant.

    Node factors are fitted by least squares over the edges, ``ln w_ij ~ u_i + u_j`` (so that
    weights that are products of node strengths, ``w_ij = x_i x_j``, leave no trace), and the
    code describes the centred residuals ``y_ij``: normal per block pair, :func:`normal_term`.
    Since ``dy = dw / w``, the density of the weights is that of ``y`` over ``prod w``; at the
    resolution of the exponential code (mean weight ``2^-WEIGHT_BITS``) the constant is
    ``sum ln w + E (WEIGHT_BITS ln 2 - ln mean w)``, plus :func:`factor_cost` for the node
    factors (each estimated from ``k_i`` edges), so both codes give positive lengths, in nats, of the
    same data, independent of the unit of the weights.

    Returns
    -------
    Y : (N, N) complex128
        ``y + 1j y^2`` on the edges, 0 elsewhere.
    v0 : float
        Prior scale: the variance of ``y`` over the edges.
    const : float
        The constant (nats).
    """
    i, j = np.nonzero(np.triu(A, 1))
    Y = np.zeros(A.shape, np.complex128)
    if i.size == 0:
        return Y, 1.0, 0.0
    w = X[i, j]
    lw = np.log(w)
    y = node_factors(i, j, lw, np.zeros(A.shape[0]))
    y -= y.mean()
    Y[i, j] = y + 1j * y * y
    Y[j, i] = Y[i, j]
    v0 = max(float(y.var()), 1e-12)
    k = A.sum(axis=1).astype(np.float64)
    return Y, v0, jacobian(w) + factor_cost(k, float(lw.var()), v0)


@nb.njit(cache=True)
def factor_cost(k: np.ndarray, tau2: float, v: float) -> float:
    """Cost of node factors estimated from ``k`` (S,) edges each (slots with ``k = 0`` have
    none), nats: ``sum 1/2 ln(1 + k tau2 / v)``, the Laplace (BIC-like) cost of a factor with
    prior spread ``tau2`` (the variance of the log-weights) coded to the precision its ``k``
    edges give at residual scale ``v``: factors that fit their edges exactly are not free
    when ``v`` is small."""
    total = 0.0
    for a in range(k.shape[0]):
        if k[a] > 0:
            total += 0.5 * math.log(1.0 + k[a] * tau2 / v)
    return total


def jacobian(w: np.ndarray) -> float:
    """Constant of the log-weight codes for edge weights ``w`` (E,), nats: ``sum ln w +
    E (WEIGHT_BITS ln 2 - ln mean w)`` (the density of ``ln w`` as one of ``w``, at the
    exponential code's resolution)."""
    return float(np.log(w).sum() + w.size * (WEIGHT_BITS * math.log(2.0) - math.log(w.mean())))


class SplitFactors:
    """The split log-normal weight code (``weights="split"``) of one graph.

    Each node has two factors, one for its edges inside its block and one for its edges to
    other blocks: ``ln w_ij = u_i^d + u_j^d + y_ij``, ``d = [b_i != b_j]`` (weighted LFR
    graphs give each node an internal and an external strength). The factors are fitted by
    least squares for each partition (:func:`node_factors`; cost :func:`factor_cost`, as in
    :func:`lognormal_statistics`), and the residuals ``y`` are normal per block pair
    (:func:`normal_term`). Their prior scale ``v0`` is chosen by description length among
    ``v_1 4^-k`` (``v_1`` the one-factor code's scale) down to the resolution of the
    log-weights, ``2^-2 WEIGHT_BITS``, at a cost of ``ln(number of scales)``: where the factors
    describe the weights almost exactly, a fixed scale would hide the fit (the normal code's
    length is then set by the prior scale, and lumping edges into fewer block pairs is
    cheaper). The constant :func:`jacobian` is that of the one-factor code. Unlike the other
    codes, the statistics depend on the partition: :meth:`weight_dl` evaluates them.

    Parameters
    ----------
    A, X : (N, N) arrays
        Edge counts (0/1) and weights, as from :func:`edges_from_weights`.
    """

    def __init__(self, A: np.ndarray, X: np.ndarray) -> None:
        self.N = A.shape[0]
        self.ei, self.ej = (x.astype(np.int64) for x in np.nonzero(np.triu(A, 1)))
        w = X[self.ei, self.ej]
        self.lw = np.log(w) if w.size else w
        self.v1 = lognormal_statistics(A, X)[1]
        self.tau2 = float(self.lw.var()) if w.size else 0.0
        floor = 2.0 ** (-2 * WEIGHT_BITS)
        self.n_scales = 1 + max(0, int(math.log(self.v1 / floor) / math.log(4.0)))
        self.const = jacobian(w) + math.log(self.n_scales) if w.size else 0.0  # no edges: nothing
        self.u = np.zeros(2 * self.N)
        self.v = self.v1
        ends = np.r_[self.ei, self.ej]
        self.inc = np.argsort(ends, kind="stable") % max(self.ei.size, 1)  # edges of each node
        self.ptr = np.r_[0, np.cumsum(np.bincount(ends, minlength=self.N))].astype(np.int64)
        self._pairs: tuple = ()

    def weight_dl(self, b: np.ndarray) -> float:
        """Factor costs plus the normal terms of partition ``b`` at the best scale (nats, no
        constant). The factors are warm-started from the last call and kept in ``self.u``, the
        scale in ``self.v``."""
        b = np.asarray(b, np.int64)
        dl, self.v = split_weight_dl(self.ei, self.ej, self.lw, b, self.v1, self.n_scales,
                                     self.tau2, self.u)  # fmt: skip
        self._pairs = split_pairs(self.ei, self.ej, self.lw, b, self.u, int(b.max()) + 1)
        return float(dl)

    def screen(self, b: np.ndarray, i: int, s: int) -> float:
        """Change of :meth:`weight_dl` if node ``i`` moved to block ``s``, approximated: the
        factors and the scale of the last :meth:`weight_dl` call held, except node ``i``'s
        factors, refitted (mean residual); :func:`split_screen`. ``b`` must be the partition
        of that call."""
        return float(split_screen(self.ei, self.ej, self.lw, b, self.u, *self._pairs, self.ptr,
                                  self.inc, i, s, self.v, self.tau2))  # fmt: skip

    def statistics(self, b: np.ndarray) -> tuple[np.ndarray, float, float]:
        """``(Y, const, v0)`` of partition ``b`` for the log-normal kernels: ``Y`` (N, N)
        complex residual statistics as in :func:`lognormal_statistics`, ``const`` the constant
        plus the factor costs, ``v0`` the chosen prior scale."""
        b = np.asarray(b, np.int64)  # cold start: a partition always gets the same value
        u = np.zeros(2 * self.N)
        y, k = split_residuals(self.ei, self.ej, self.lw, b, u)
        v0 = _best_scale(self.ei, self.ej, y, b, self.v1, self.n_scales, k, self.tau2)[1]
        Y = np.zeros((self.N, self.N), np.complex128)
        Y[self.ei, self.ej] = y + 1j * y * y
        Y[self.ej, self.ei] = Y[self.ei, self.ej]
        return Y, self.const + factor_cost(k, self.tau2, v0), v0


@nb.njit(cache=True)
def split_residuals(ei, ej, lw, b, u):
    """Residuals of the split factors of partition ``b`` and each factor's edge count ``k``
    (2N,) (``u`` (2N,) warm start, updated)."""
    N = b.shape[0]
    E = ei.shape[0]
    si = np.empty(E, np.int64)
    sj = np.empty(E, np.int64)
    k = np.zeros(2 * N)
    for e in range(E):
        d = N if b[ei[e]] != b[ej[e]] else 0
        si[e] = ei[e] + d
        sj[e] = ej[e] + d
        k[si[e]] += 1.0
        k[sj[e]] += 1.0
    return node_factors(si, sj, lw, u), k


@nb.njit(cache=True)
def split_weight_dl(ei, ej, lw, b, v1, n_scales, tau2, u):
    """Factor costs plus :func:`normal_term` per block pair of the split residuals at the
    best prior scale ``v1 4^-k``, ``k < n_scales``; returns ``(length, scale)``."""
    y, k = split_residuals(ei, ej, lw, b, u)
    return _best_scale(ei, ej, y, b, v1, n_scales, k, tau2)


@nb.njit(cache=True)
def split_pairs(ei, ej, lw, b, u, B):
    """Residuals ``y`` (E,) at factors ``u``, block-pair statistics ``cnt, s1, s2`` (B, B)
    (upper triangle: count, sum, sum of squares of ``y``) and factor edge counts ``k`` (2N,)."""
    N = b.shape[0]
    E = ei.shape[0]
    y = np.empty(E)
    cnt = np.zeros((B, B), np.int64)
    s1 = np.zeros((B, B))
    s2 = np.zeros((B, B))
    k = np.zeros(2 * N)
    for e in range(E):
        d = N if b[ei[e]] != b[ej[e]] else 0
        y[e] = lw[e] - u[ei[e] + d] - u[ej[e] + d]
        k[ei[e] + d] += 1.0
        k[ej[e] + d] += 1.0
        r, t = min(b[ei[e]], b[ej[e]]), max(b[ei[e]], b[ej[e]])
        cnt[r, t] += 1
        s1[r, t] += y[e]
        s2[r, t] += y[e] * y[e]
    return y, cnt, s1, s2, k


@nb.njit(cache=True)
def split_screen(ei, ej, lw, b, u, y, cnt, s1, s2, k, ptr, inc, i, s, v, tau2):
    """Approximate change of :func:`split_weight_dl` (at scale ``v``) if node ``i`` moves to
    block ``s``: the factors ``u`` held except node ``i``'s two, set to the mean residual of
    its edges of each kind. ``y, cnt, s1, s2, k``: :func:`split_pairs` at ``u``; ``inc[ptr[i]:
    ptr[i + 1]]`` the edges of node ``i``. O(degree + B^2)."""
    N = b.shape[0]
    B = cnt.shape[0]
    r = b[i]
    acc = np.zeros(2)
    num = np.zeros(2)
    for idx in range(ptr[i], ptr[i + 1]):
        e = inc[idx]
        j = ej[e] if ei[e] == i else ei[e]
        d = 1 if b[j] != s else 0
        acc[d] += lw[e] - u[j + N * d]
        num[d] += 1.0
    dcnt = np.zeros((B, B), np.int64)
    ds1 = np.zeros((B, B))
    ds2 = np.zeros((B, B))
    dk = np.zeros(2 * N)
    for idx in range(ptr[i], ptr[i + 1]):
        e = inc[idx]
        j = ej[e] if ei[e] == i else ei[e]
        d_old = 1 if b[j] != r else 0
        d_new = 1 if b[j] != s else 0
        p, q = min(r, b[j]), max(r, b[j])
        dcnt[p, q] -= 1
        ds1[p, q] -= y[e]
        ds2[p, q] -= y[e] * y[e]
        y_new = lw[e] - acc[d_new] / num[d_new] - u[j + N * d_new]
        p, q = min(s, b[j]), max(s, b[j])
        dcnt[p, q] += 1
        ds1[p, q] += y_new
        ds2[p, q] += y_new * y_new
        dk[i + N * d_old] -= 1.0
        dk[j + N * d_old] -= 1.0
        dk[i + N * d_new] += 1.0
        dk[j + N * d_new] += 1.0
    delta = 0.0
    for p in range(B):
        for q in range(p, B):
            if dcnt[p, q] != 0 or ds1[p, q] != 0.0 or ds2[p, q] != 0.0:
                delta += normal_term(cnt[p, q] + dcnt[p, q], s1[p, q] + ds1[p, q],
                                     s2[p, q] + ds2[p, q], v)  # fmt: skip
                delta -= normal_term(cnt[p, q], s1[p, q], s2[p, q], v)
    one = np.zeros(1)
    for a in range(2 * N):
        if dk[a] != 0.0:
            one[0] = k[a] + dk[a]
            delta += factor_cost(one, tau2, v)
            one[0] = k[a]
            delta -= factor_cost(one, tau2, v)
    return delta


@nb.njit(cache=True)
def _best_scale(ei, ej, y, b, v1, n_scales, k, tau2):
    """``(length, scale)``: the sum of :func:`normal_term` over block pairs plus
    :func:`factor_cost` of the factors' edge counts ``k``, at the best scale ``v1 4^-j``."""
    B = 0
    for i in range(b.shape[0]):
        B = max(B, b[i] + 1)
    cnt = np.zeros((B, B), np.int64)
    s1 = np.zeros((B, B))
    s2 = np.zeros((B, B))
    for e in range(ei.shape[0]):
        r, s = b[ei[e]], b[ej[e]]
        if r > s:
            r, s = s, r
        cnt[r, s] += 1
        s1[r, s] += y[e]
        s2[r, s] += y[e] * y[e]
    best, best_v = np.inf, v1
    for j in range(n_scales):
        v0 = v1 * 4.0 ** (-j)
        tot = factor_cost(k, tau2, v0)
        for r in range(B):
            for s in range(r, B):
                tot += normal_term(cnt[r, s], s1[r, s], s2[r, s], v0)
        if tot < best:
            best, best_v = tot, v0
    return best, best_v


def partitions_table_for(A: np.ndarray) -> np.ndarray:
    """The ``ln q(m, n)`` table covering every block degree sum of ``A`` (or a 1x1 stub if too big)."""
    N = A.shape[0]
    m_max = int(A.sum())
    if (m_max + 1) * (N + 1) > LQ_MAX_ENTRIES:
        return np.zeros((1, 1))
    return log_partitions_table(m_max, N)


def compact(b: np.ndarray) -> np.ndarray:
    """Relabel a membership vector to ``0..B-1`` in order of first appearance."""
    b = np.asarray(b)
    if b.ndim == 1 and b.size and b.dtype.kind in "iu" and 0 <= b.min() and b.max() < 4 * b.size:
        return _compact_labels(b.astype(np.int64))  # the search's labels: no sort
    _, first, inv = np.unique(b, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inv].astype(np.int64)


@nb.njit(cache=True)
def _compact_labels(b: np.ndarray) -> np.ndarray:
    """:func:`compact` of labels ``0 <= b < 4 len(b)`` in one pass."""
    new = np.full(4 * b.shape[0], -1, np.int64)
    out = np.empty(b.shape[0], np.int64)
    B = 0
    for i in range(b.shape[0]):
        if new[b[i]] < 0:
            new[b[i]] = B
            B += 1
        out[i] = new[b[i]]
    return out


def description_length(
    W: np.ndarray,
    b: np.ndarray,
    *,
    degree_corrected: bool = False,
    weighted: bool = True,
    threshold: float = 0.0,
    dense: bool = False,
) -> float:
    """Flat (single-level) description length of partition ``b`` of weighted graph ``W``, nats.

    The block edge counts get the flat prior ``ln multiset(B (B + 1) / 2, E)``.

    Parameters
    ----------
    W : (N, N) array
        Symmetric non-negative weights (zero = no edge).
    b : (N,) int array
        Block of each node.
    degree_corrected, weighted : bool
        Model variant; ``weighted=False`` ignores the weights (topology only).
    dense : bool
        Non-degree-corrected level 0 as a simple graph (binomial) instead of a multigraph.
    """
    A, X = edges_from_weights(W, threshold)
    b = compact(b)
    B = int(b.max()) + 1
    n, m, xs = block_stats(A, X, b, B)
    alpha, beta = weight_prior(X, A)
    ens = level0_ensemble(degree_corrected, dense)
    dl = level_dl(n, m, xs, ens, weighted, alpha, beta)
    dl += degree_terms(A, b, B, ens, partitions_table_for(A) if degree_corrected else None)
    E = A.sum() // 2
    return float(dl + lmultiset(B * (B + 1) / 2.0, float(E)))


def nested_description_length(
    W: np.ndarray,
    levels: list[np.ndarray],
    *,
    degree_corrected: bool = False,
    weighted: bool = True,
    threshold: float = 0.0,
    dense: bool = False,
) -> float:
    """Description length of a hierarchy of partitions (nested SBM), nats.

    Parameters
    ----------
    W : (N, N) array
        Symmetric non-negative weights.
    levels : list of int arrays
        ``levels[0]`` (N,) blocks of the nodes; ``levels[l]`` (B_{l-1},) blocks of the level
        ``l-1`` blocks. The last level must have a single block (it is appended if missing).
    """
    A, X = edges_from_weights(W, threshold)
    alpha, beta = weight_prior(X, A)
    levels = [np.asarray(x, dtype=np.int64) for x in levels]
    b0 = levels[0]
    B = int(b0.max()) + 1
    n, m, xs = block_stats(A, X, b0, B)
    ens = level0_ensemble(degree_corrected, dense)
    total = level_dl(n, m, xs, ens, weighted, alpha, beta)
    total += degree_terms(A, b0, B, ens, partitions_table_for(A) if degree_corrected else None)
    return float(total + upper_levels_dl(m, levels[1:]))


def block_graph(m: np.ndarray) -> np.ndarray:
    """Adjacency (edge counts, self-loops on the diagonal) of the multigraph of blocks."""
    return np.asarray(m, dtype=np.int64).copy()


def upper_levels_dl(m: np.ndarray, upper: list[np.ndarray]) -> float:
    """Cost of the level-0 block edge counts ``m`` (B, B) under the nested prior ``upper``.

    ``upper[k]`` partitions the nodes of level ``k+1`` (the blocks of level ``k``); a final
    single-block level is appended when missing.
    """
    upper = [np.asarray(x, dtype=np.int64) for x in upper]
    if not upper or len(np.unique(upper[-1])) > 1:
        n_top = int(upper[-1].max()) + 1 if upper else m.shape[0]
        upper.append(np.zeros(n_top, np.int64))
    total = 0.0
    Ab = block_graph(m)
    for bl in upper:
        if bl.shape[0] != Ab.shape[0]:
            raise ValueError("hierarchy levels do not chain (sizes differ)")
        Bl = int(bl.max()) + 1
        n, ml, _ = block_stats(Ab, np.zeros(Ab.shape), bl, Bl)
        total += level_dl(n, ml, np.zeros((Bl, Bl)), ENS_MULTI, False, 1.0, 1.0)
        Ab = block_graph(ml)
    return float(total)
