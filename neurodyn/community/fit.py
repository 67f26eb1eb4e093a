"""Minimisation of one level's description length: agglomerative merges and node moves.

A level is a (multi)graph given by edge counts ``A`` (N, N) (self-loops on the diagonal) and
weight sums ``X`` (N, N). Its objective is the flat description length of :mod:`wsbm`
(partition prior, edge placement for the ensemble, weights, degree terms when degree
corrected, flat prior ``ln multiset(B (B + 1) / 2, E)`` on the block edge counts).

The search starts from singletons and alternates (i) a round of greedy block merges that
lowers the number of blocks by a factor ``ratio`` (each block merged with the partner of
smallest description-length change, best merges first) with (ii) sweeps of single-node moves
in random order, each node moved to the block (or a new block) that lowers the description
length most, until no move helps. The partition after every round is kept as a snapshot, down
to a single block; the caller chooses among them (the number of blocks is inferred).

Kernels update block statistics incrementally; a move or merge changes only the terms of the
two blocks involved: O(B) per candidate merge, O(neighbour blocks) per candidate move (the
terms of pairs the node has no edges to are cached per block).

The split log-normal weight code (:class:`wsbm.SplitFactors`), whose edge statistics depend on
the partition, is polished by :func:`refine_split` instead: node moves screened with the other
factors held, the best one refitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from neurodyn.community import wsbm
from neurodyn.community.wsbm import (
    ENS_DC,
    ENS_MULTI,
    ENS_POISSON,
    ENS_SIMPLE,
    lbinom,
    lgam,
    lmultiset,
    lq,
    pair_term,
    pair_weight_term,
)

#: with more blocks than this, a node only tries the blocks of its neighbours (and a new one)
ALL_CANDIDATES_BELOW = 24


@dataclass
class LevelGraph:
    """One level to partition: counts ``A`` (N, N) int64, weight statistics ``X`` (N, N)
    (float64 weights, or complex128 log-weight statistics, see :func:`wsbm.pair_weight_term`),
    weight code ``weighted`` (``wsbm.W_*``), its constant ``wconst`` (nats, added to every
    description length: the log-normal code's Jacobian and resolution)."""

    A: np.ndarray
    X: np.ndarray
    ens: int
    weighted: int
    alpha: float = 1.0
    beta: float = 1.0
    table: np.ndarray | None = None
    wconst: float = 0.0

    @property
    def n(self) -> int:
        return self.A.shape[0]


class _State:
    """Mutable block statistics of a partition of a :class:`LevelGraph` (labels 0..N-1)."""

    def __init__(self, g: LevelGraph, b: np.ndarray) -> None:
        self.g = g
        N = g.n
        self.b = np.asarray(b, dtype=np.int64).copy()
        self.n, self.m, self.xs = wsbm.block_stats(g.A, g.X, self.b, N)
        if g.ens in (ENS_DC, ENS_POISSON):
            self.k = g.A.sum(axis=1) + np.diag(g.A)  # self-loops count twice
        else:  # degrees unused: one histogram column keeps the kernels generic
            self.k = np.zeros(N, np.int64)
        kmax = int(self.k.max(initial=0))
        self.e = np.zeros(N, np.int64)
        self.hist = np.zeros((N, kmax + 1), np.int64)
        np.add.at(self.e, self.b, self.k)
        np.add.at(self.hist, (self.b, self.k), 1)
        self.seta = _seta_all(self.hist)
        self.nnz = int(np.count_nonzero(self.n))
        self.E = int(np.triu(g.A).sum())
        self.table = g.table if g.table is not None else np.zeros((1, 1))

    def args(self) -> tuple:
        g = self.g
        return (
            g.A, g.X, g.ens, g.weighted, g.alpha, g.beta, self.table, self.k,
            self.b, self.n, self.m, self.xs, self.e, self.hist, self.seta,
            np.array([self.nnz, self.E], np.int64),
        )  # fmt: skip


@nb.njit(cache=True)
def _seta_all(hist: np.ndarray) -> np.ndarray:
    out = np.zeros(hist.shape[0])
    for r in range(hist.shape[0]):
        for d in range(hist.shape[1]):
            out[r] += math.lgamma(hist[r, d] + 1.0)
    return out


@nb.njit(cache=True)
def _pair(ens, weighted, alpha, beta, nr, ns, m, x, same):
    v = pair_term(ens, nr, ns, m, same)
    if weighted:
        v += pair_weight_term(weighted, m, x, alpha, beta)
    return v


@nb.njit(cache=True)
def _global(N, nnz, E):
    return lbinom(N - 1.0, nnz - 1.0) + lmultiset(nnz * (nnz + 1) / 2.0, float(E))


@nb.njit(cache=True)
def _block(ens, table, n, e, seta):
    v = -lgam(n + 1.0)
    if ens == ENS_DC and n > 0:
        v += lgam(e + 1.0) + lgam(n + 1.0) - seta + lq(table, e, n)
    elif ens == ENS_POISSON and n > 0:
        v += e * math.log(n)
    return v


@nb.njit(cache=True)
def _local(ens, weighted, alpha, beta, table, n, m, xs, e, seta, r, s, nnz, E, N, act, nact):
    """Every term that involves block r or s, plus the terms that depend on B.

    ``act[:nact]`` lists the labels to visit: every non-empty block, and s.
    """
    tot = 0.0
    for idx in range(nact):
        t = act[idx]
        if n[t] == 0:
            continue
        if n[r] > 0:
            tot += _pair(ens, weighted, alpha, beta, n[r], n[t], m[r, t], xs[r, t], r == t)
        if n[s] > 0 and t != r:
            tot += _pair(ens, weighted, alpha, beta, n[s], n[t], m[s, t], xs[s, t], s == t)
    tot += _block(ens, table, n[r], e[r], seta[r]) + _block(ens, table, n[s], e[s], seta[s])
    return tot + _global(N, nnz, E)


@nb.njit(cache=True)
def _zterm(ens, ns, nt, m):
    """Edge-placement change of block pair (s, t) (``m`` edges) when block s gains a node
    that has no edges to t (size-dependent codes; weights unchanged)."""
    return pair_term(ens, ns + 1, nt, m, False) - pair_term(ens, ns, nt, m, False)


@nb.njit(cache=True)
def _z_block(ens, n, m, u, act, nact):
    """``Z[u]``: the sum of :func:`_zterm` of block u over every other non-empty block."""
    z = 0.0
    for idx in range(nact):
        t = act[idx]
        if t != u and n[t] > 0:
            z += _zterm(ens, n[u], n[t], m[u, t])
    return z


@nb.njit(cache=True)
def _removal(ens, weighted, alpha, beta, n, m, xs, c, cw, r, act, nact, R):
    """Pair-term change of each block pair (r, t), t != r, when a node (edge counts ``c`` and
    weights ``cw`` to each block) leaves block r: ``R[t]`` (0 where nothing changes); returns
    their sum."""
    size_dep = ens == ENS_SIMPLE or ens == ENS_MULTI
    nr = n[r]
    tot = 0.0
    for idx in range(nact):
        t = act[idx]
        R[t] = 0.0
        if t == r or n[t] == 0 or (c[t] == 0 and not size_dep):
            continue
        R[t] = (_pair(ens, weighted, alpha, beta, nr - 1, n[t], m[r, t] - c[t], xs[r, t] - cw[t], False)
                - _pair(ens, weighted, alpha, beta, nr, n[t], m[r, t], xs[r, t], False))  # fmt: skip
        tot += R[t]
    return tot


@nb.njit(cache=True)
def _move_delta(ens, weighted, alpha, beta, table, n, m, xs, e, hist, seta, c, cw, loops,
                       xloops, ki, r, s, nnz, E, N, nbl, nnb, R, rem, Z):  # fmt: skip
    """Change of the description length if a node (edge counts ``c`` and weights ``cw`` to each
    block, ``loops`` self-loops, degree ``ki``) moves from block r to block s; state unchanged.

    O(number of neighbour blocks): ``nbl[:nnb]`` the blocks the node has edges to, ``R, rem``
    from :func:`_removal` for its block r, ``Z`` (N,) the :func:`_z_block` of every block
    (size-dependent codes; unused otherwise).

    The pairs (s, t) with no edges of the node to t change only with the size of s: their sum
    is ``Z[s]`` less the pair (s, r); the pairs (r, t) are the node's removal, the same for
    every s (less the pair (r, s)).
    """
    size_dep = ens == ENS_SIMPLE or ens == ENS_MULTI
    nr, ns = n[r], n[s]
    d = rem - R[s]
    if size_dep:
        d += Z[s] - _zterm(ens, ns, nr, m[s, r])
    for idx in range(nnb):
        t = nbl[idx]
        if t == r or t == s:
            continue
        nt = n[t]
        d += _pair(ens, weighted, alpha, beta, ns + 1, nt, m[s, t] + c[t], xs[s, t] + cw[t], False)
        d -= _pair(ens, weighted, alpha, beta, ns, nt, m[s, t], xs[s, t], False)
        if size_dep:
            d -= _zterm(ens, ns, nt, m[s, t])
    # the pairs among r and s
    d -= _pair(ens, weighted, alpha, beta, nr, nr, m[r, r], xs[r, r], True)
    if nr > 1:
        d += _pair(ens, weighted, alpha, beta, nr - 1, nr - 1, m[r, r] - c[r] - loops,
                   xs[r, r] - cw[r] - xloops, True)  # fmt: skip
        d += _pair(ens, weighted, alpha, beta, nr - 1, ns + 1, m[r, s] + c[r] - c[s],
                   xs[r, s] + cw[r] - cw[s], False)  # fmt: skip
    if ns > 0:
        d -= _pair(ens, weighted, alpha, beta, ns, ns, m[s, s], xs[s, s], True)
        d -= _pair(ens, weighted, alpha, beta, nr, ns, m[r, s], xs[r, s], False)
    d += _pair(ens, weighted, alpha, beta, ns + 1, ns + 1, m[s, s] + c[s] + loops,
               xs[s, s] + cw[s] + xloops, True)  # fmt: skip
    # block terms
    d -= _block(ens, table, nr, e[r], seta[r]) + _block(ens, table, ns, e[s], seta[s])
    seta_r = seta[r] - math.log(hist[r, ki])
    seta_s = seta[s] + math.log(hist[s, ki] + 1.0)
    d += _block(ens, table, nr - 1, e[r] - ki, seta_r) + _block(ens, table, ns + 1, e[s] + ki, seta_s)
    dn = (1 if ns == 0 else 0) - (1 if nr == 1 else 0)
    if dn != 0:
        d += _global(N, nnz + dn, E) - _global(N, nnz, E)
    return d


@nb.njit(cache=True)
def _neighbour_blocks(c, nbl):
    """The blocks with ``c > 0`` into ``nbl``; returns their number."""
    nnb = 0
    for t in range(c.shape[0]):
        if c[t] > 0:
            nbl[nnb] = t
            nnb += 1
    return nnb


@nb.njit(cache=True)
def _shift(m, xs, n, e, hist, seta, c, cw, loops, xloops, ki, r, s):
    """Move one node (edge counts ``c`` and weights ``cw`` to each block, ``loops``) r -> s.

    Returns the change in the number of non-empty blocks.
    """
    B = n.shape[0]
    for t in range(B):
        if t == r or t == s or c[t] == 0:
            continue
        m[r, t] -= c[t]
        m[t, r] -= c[t]
        m[s, t] += c[t]
        m[t, s] += c[t]
        xs[r, t] -= cw[t]
        xs[t, r] -= cw[t]
        xs[s, t] += cw[t]
        xs[t, s] += cw[t]
    m[r, r] -= c[r] + loops
    xs[r, r] -= cw[r] + xloops
    m[r, s] += c[r] - c[s]
    m[s, r] += c[r] - c[s]
    xs[r, s] += cw[r] - cw[s]
    xs[s, r] += cw[r] - cw[s]
    m[s, s] += c[s] + loops
    xs[s, s] += cw[s] + xloops
    if m[r, s] == 0:  # clear rounding residue of the float sums
        xs[r, s] = 0.0
        xs[s, r] = 0.0
    if m[r, r] == 0:
        xs[r, r] = 0.0
    dn = 0
    if n[s] == 0:
        dn += 1
    n[r] -= 1
    n[s] += 1
    if n[r] == 0:
        dn -= 1
    e[r] -= ki
    e[s] += ki
    seta[r] -= math.log(hist[r, ki])
    hist[r, ki] -= 1
    hist[s, ki] += 1
    seta[s] += math.log(hist[s, ki])
    return dn


@nb.njit(cache=True)
def _connections(A, X, b, i, c, cw):
    c[:] = 0
    cw[:] = 0.0
    for j in range(A.shape[0]):
        if j != i and A[i, j] != 0:
            c[b[j]] += A[i, j]
            cw[b[j]] += X[i, j]


@nb.njit(cache=True)
def move_delta_kernel(A, X, ens, weighted, alpha, beta, table, k, b, n, m, xs, e, hist, seta,
                      counts, i, s):  # fmt: skip
    """Change of the description length if node ``i`` moves to block ``s`` (state unchanged)."""
    N = A.shape[0]
    c = np.zeros(N, np.int64)
    cw = np.zeros(N, np.complex128)
    _connections(A, X, b, i, c, cw)
    r = b[i]
    if r == s:
        return 0.0
    act = np.arange(N)
    nbl = np.zeros(N, np.int64)
    nnb = _neighbour_blocks(c, nbl)
    R = np.zeros(N)
    rem = _removal(ens, weighted, alpha, beta, n, m, xs, c, cw, r, act, N, R)
    Z = np.zeros(N)
    Z[s] = _z_block(ens, n, m, s, act, N)
    return _move_delta(ens, weighted, alpha, beta, table, n, m, xs, e, hist, seta, c, cw,
                              A[i, i], X[i, i], k[i], r, s, counts[0], counts[1], N, nbl, nnb,
                              R, rem, Z)  # fmt: skip


@nb.njit(cache=True)
def sweep_kernel(A, X, ens, weighted, alpha, beta, table, k, b, n, m, xs, e, hist, seta, counts,
                 order, tol, allow_new, all_below):  # fmt: skip
    """One sweep of greedy single-node moves in the given order; returns the total decrease.

    ``allow_new``: a node may also move to a new (empty) block. Candidate blocks: all of them
    while there are at most ``all_below``, else only blocks holding a neighbour of the node
    (and the new block). Each candidate costs O(neighbour blocks) (:func:`_move_delta`;
    the size-dependent codes keep ``Z`` up to date as nodes move).
    """
    N = A.shape[0]
    size_dep = ens == ENS_SIMPLE or ens == ENS_MULTI
    c = np.zeros(N, np.int64)
    cw = np.zeros(N, np.complex128)
    act = np.zeros(N, np.int64)
    nbl = np.zeros(N, np.int64)
    R = np.zeros(N)
    Z = np.zeros(N)
    nact = 0
    for t in range(N):
        if n[t] > 0:
            act[nact] = t
            nact += 1
    if size_dep:
        for idx in range(nact):
            Z[act[idx]] = _z_block(ens, n, m, act[idx], act, nact)
    gain = 0.0
    for idx in range(order.shape[0]):
        i = order[idx]
        r = b[i]
        _connections(A, X, b, i, c, cw)
        nnb = _neighbour_blocks(c, nbl)
        empty = -1
        nact = 0
        for t in range(N):
            if n[t] > 0:
                act[nact] = t
                nact += 1
            elif empty < 0 and n[r] > 1 and allow_new:
                empty = t
        if empty >= 0:
            act[nact] = empty
            nact += 1
            R[empty] = 0.0
            Z[empty] = 0.0
        rem = _removal(ens, weighted, alpha, beta, n, m, xs, c, cw, r, act, nact, R)
        best, best_s = -tol, -1
        for a in range(nact):
            s = act[a]
            if s == r or (nact > all_below and c[s] == 0 and s != empty):
                continue
            d = _move_delta(ens, weighted, alpha, beta, table, n, m, xs, e, hist, seta, c,
                                   cw, A[i, i], X[i, i], k[i], r, s, counts[0], counts[1], N,
                                   nbl, nnb, R, rem, Z)  # fmt: skip
            if d < best:
                best, best_s = d, s
        if best_s >= 0:
            s = best_s
            if size_dep:  # the pairs (u, r) and (u, s) of every other block u change
                for a in range(nact):
                    u = act[a]
                    if u != r and u != s and n[u] > 0:
                        Z[u] -= _zterm(ens, n[u], n[r], m[u, r]) + _zterm(ens, n[u], n[s], m[u, s])
            counts[0] += _shift(m, xs, n, e, hist, seta, c, cw, A[i, i], X[i, i], k[i], r, s)
            b[i] = s
            gain -= best
            if size_dep:
                for a in range(nact):
                    u = act[a]
                    if u != r and u != s and n[u] > 0:
                        Z[u] += _zterm(ens, n[u], n[r], m[u, r]) + _zterm(ens, n[u], n[s], m[u, s])
                Z[r] = _z_block(ens, n, m, r, act, nact)
                Z[s] = _z_block(ens, n, m, s, act, nact)
    return gain


@nb.njit(cache=True)
def _merge_delta(ens, weighted, alpha, beta, table, n, m, xs, e, hist, seta, r, s, nnz, E, N,
                 act, nact):  # fmt: skip
    """Change of the description length if blocks r and s merge (state unchanged).

    Pairs (r, t), (s, t) with no edges to t cost nothing before and after (every code's pair
    term is 0 without edges): O(B) checks, pair terms for the neighbours of r and s only.
    """
    nr, ns = n[r], n[s]
    nm = nr + ns
    d = 0.0
    for idx in range(nact):
        t = act[idx]
        if n[t] == 0 or t == r or t == s or (m[r, t] == 0 and m[s, t] == 0):
            continue
        d += _pair(ens, weighted, alpha, beta, nm, n[t], m[r, t] + m[s, t], xs[r, t] + xs[s, t],
                   False)  # fmt: skip
        d -= _pair(ens, weighted, alpha, beta, nr, n[t], m[r, t], xs[r, t], False)
        d -= _pair(ens, weighted, alpha, beta, ns, n[t], m[s, t], xs[s, t], False)
    d += _pair(ens, weighted, alpha, beta, nm, nm, m[r, r] + m[s, s] + m[r, s],
               xs[r, r] + xs[s, s] + xs[r, s], True)  # fmt: skip
    d -= _pair(ens, weighted, alpha, beta, nr, nr, m[r, r], xs[r, r], True)
    d -= _pair(ens, weighted, alpha, beta, ns, ns, m[s, s], xs[s, s], True)
    d -= _pair(ens, weighted, alpha, beta, nr, ns, m[r, s], xs[r, s], False)
    st = 0.0
    if ens == ENS_DC:
        for k in range(hist.shape[1]):
            if hist[r, k] + hist[s, k] > 0:
                st += lgam(hist[r, k] + hist[s, k] + 1.0)
    d += _block(ens, table, nm, e[r] + e[s], st)
    d -= _block(ens, table, nr, e[r], seta[r]) + _block(ens, table, ns, e[s], seta[s])
    return d + _global(N, nnz - 1, E) - _global(N, nnz, E)


@nb.njit(cache=True)
def _merge(b, n, m, xs, e, hist, seta, r, s):
    """Merge block s into block r."""
    B = n.shape[0]
    for i in range(b.shape[0]):
        if b[i] == s:
            b[i] = r
    m[r, r] += m[s, s] + m[r, s]
    xs[r, r] += xs[s, s] + xs[r, s]
    for t in range(B):
        if t == r or t == s:
            continue
        m[r, t] += m[s, t]
        m[t, r] = m[r, t]
        xs[r, t] += xs[s, t]
        xs[t, r] = xs[r, t]
    for t in range(B):
        m[s, t] = 0
        m[t, s] = 0
        xs[s, t] = 0.0
        xs[t, s] = 0.0
    n[r] += n[s]
    n[s] = 0
    e[r] += e[s]
    e[s] = 0
    seta[r] = 0.0
    for d in range(hist.shape[1]):
        hist[r, d] += hist[s, d]
        hist[s, d] = 0
        seta[r] += math.lgamma(hist[r, d] + 1.0)
    seta[s] = 0.0


@nb.njit(cache=True)
def merge_round_kernel(A, X, ens, weighted, alpha, beta, table, k, b, n, m, xs, e, hist, seta,
                       counts, target, jitter, all_below):  # fmt: skip
    """Greedy merges until ``target`` non-empty blocks remain (best candidate merges first).

    With more than ``all_below`` blocks, a block only tries partners it shares edges with.

    ``jitter`` (N,) small random perturbations added to each block's best merge delta to
    break ties differently across seeds.
    """
    N = A.shape[0]
    act = np.zeros(N, np.int64)
    restrict = True
    while counts[0] > target:
        best_d = np.full(N, np.inf)
        best_s = np.full(N, -1, np.int64)
        nact = 0
        for t in range(N):
            if n[t] > 0:
                act[nact] = t
                nact += 1
        for ia in range(nact):
            r = act[ia]
            for ib in range(nact):
                s = act[ib]
                if s == r or (restrict and nact > all_below and m[r, s] == 0):
                    continue
                d = _merge_delta(ens, weighted, alpha, beta, table, n, m, xs, e, hist, seta,
                                 r, s, counts[0], counts[1], N, act, nact)  # fmt: skip
                if d < best_d[r]:
                    best_d[r], best_s[r] = d, s
            best_d[r] += jitter[r]
        order = np.argsort(best_d)
        if best_s[order[0]] < 0:  # no connected pair left: let every pair compete
            restrict = False
            continue
        touched = np.zeros(N, np.bool_)
        for idx in range(N):
            r = order[idx]
            if counts[0] <= target or best_s[r] < 0:
                break
            s = best_s[r]
            if touched[r] or touched[s] or n[r] == 0 or n[s] == 0:
                continue
            _merge(b, n, m, xs, e, hist, seta, r, s)
            touched[r] = True
            touched[s] = True
            counts[0] -= 1


def level_objective(g: LevelGraph, b: np.ndarray) -> float:
    """Flat description length of partition ``b`` of a level graph (nats, constants included)."""
    b = wsbm.compact(b)
    B = int(b.max()) + 1
    n, m, xs = wsbm.block_stats(g.A, g.X, b, B)
    dl = wsbm.level_dl(n, m, xs, g.ens, g.weighted, g.alpha, g.beta)
    dl += wsbm.degree_terms(g.A, b, B, g.ens, g.table if g.table is not None else np.zeros((1, 1)))
    E = int(np.triu(g.A).sum())
    return float(dl + lmultiset(B * (B + 1) / 2.0, float(E)) + g.wconst)


def sweep(
    state: _State,
    rng: np.random.Generator,
    max_sweeps: int = 20,
    tol: float = 1e-9,
    allow_new: bool = False,
) -> None:
    """Greedy node-move sweeps in random order until none lowers the description length.

    ``allow_new`` lets nodes open new blocks (off during agglomeration, so that the number of
    blocks only decreases).
    """
    for _ in range(max_sweeps):
        order = rng.permutation(state.g.n).astype(np.int64)
        args = state.args()
        gain = sweep_kernel(*args, order, tol, allow_new, ALL_CANDIDATES_BELOW)
        state.nnz = int(args[-1][0])
        if gain <= tol:
            break


def agglomerate(
    g: LevelGraph,
    rng: np.random.Generator,
    *,
    ratio: float = 1.3,
    max_sweeps: int = 2,
    init: np.ndarray | None = None,
    fine: int = 16,
) -> list[tuple[np.ndarray, float]]:
    """Snapshots ``(membership (N,), flat description length)`` from ``init`` down to one block.

    Parameters
    ----------
    g : LevelGraph
        The level to partition.
    rng : numpy Generator
        Drives the node order of the sweeps and the merge tie-breaking.
    ratio : float
        Each merge round divides the number of blocks by this factor (at least one merge).
    max_sweeps : int
        Node-move sweeps after each round (stops earlier when nothing moves).
    init : (N,) int array, optional
        Starting partition (default: every node alone).
    fine : int
        Below this many blocks, merge rounds remove one block at a time.
    """
    N = g.n
    b0 = np.arange(N, dtype=np.int64) if init is None else wsbm.compact(init)
    state = _State(g, b0)
    snaps: list[tuple[np.ndarray, float]] = []
    sweep(state, rng, max_sweeps)
    snaps.append((wsbm.compact(state.b), level_objective(g, state.b)))
    while state.nnz > 1:
        # divide by ``ratio`` while many blocks remain; visit every count from ``fine`` down
        target = state.nnz - 1 if state.nnz <= fine else max(fine, int(state.nnz / ratio))
        jitter = rng.uniform(0.0, 1e-6, N)
        args = state.args()
        merge_round_kernel(*args, target, jitter, ALL_CANDIDATES_BELOW)
        state.nnz = int(args[-1][0])
        sweep(state, rng, max_sweeps)
        snaps.append((wsbm.compact(state.b), level_objective(g, state.b)))
    return snaps


def refine(g: LevelGraph, b: np.ndarray, rng: np.random.Generator, max_sweeps: int = 20,
           trial_sweeps: int = 3) -> np.ndarray:
    """Polish partition ``b``: node-move sweeps (new blocks allowed), then single merges while
    one lowers the flat description length, each followed by ``trial_sweeps`` sweeps; returns a
    compact result."""
    state = _State(g, wsbm.compact(b))
    sweep(state, rng, max_sweeps, allow_new=True)
    best_b, best = wsbm.compact(state.b), level_objective(g, state.b)
    while state.nnz > 1:
        trial = _State(g, best_b)
        args = trial.args()
        merge_round_kernel(*args, trial.nnz - 1, np.zeros(g.n), ALL_CANDIDATES_BELOW)
        trial.nnz = int(args[-1][0])
        sweep(trial, rng, trial_sweeps)
        dl = level_objective(g, trial.b)
        if dl >= best - 1e-9:
            break
        best_b, best = wsbm.compact(trial.b), dl
        state = trial
    return best_b


def refine_split(g: LevelGraph, split: wsbm.SplitFactors, b: np.ndarray,
                 rng: np.random.Generator, max_sweeps: int = 4) -> tuple[np.ndarray, float]:  # fmt: skip
    """Polish partition ``b`` under the split log-normal weight code, whose statistics depend
    on the partition: sweeps of single-node moves until none shortens the flat description
    length (at most ``max_sweeps``). ``g`` carries the topology code (``weighted = W_NONE``).

    A node tries every block it has edges to; the weight part of each move is screened with
    the other nodes' factors held (:meth:`wsbm.SplitFactors.screen`), and the best screened
    move is made if the refitted description length (all factors) is shorter
    (:func:`split_sweep_kernel`).

    Returns the compact partition and its flat description length (nats, constants included).
    """
    b = wsbm.compact(b)
    for _ in range(max_sweeps):
        wdl = split.weight_dl(b)
        state = _State(g, b)
        order = rng.permutation(g.n).astype(np.int64)
        moved, split.v = split_sweep_kernel(
            *state.args(), order, split.ei, split.ej, split.lw, split.ptr, split.inc, split.u,
            split.v, split.v1, split.n_scales, split.tau2, wdl)  # fmt: skip
        b = wsbm.compact(state.b)
        if not moved:
            break
    return b, level_objective(g, b) + split.const + split.weight_dl(b)


@nb.njit(cache=True)
def split_sweep_kernel(A, X, ens, weighted, alpha, beta, table, k, b, n, m, xs, e, hist, seta,
                       counts, order, ei, ej, lw, ptr, inc, u, v, v1, n_scales, tau2, wdl):  # fmt: skip
    """One sweep of :func:`refine_split` in the given node order; ``b`` and the block
    statistics (topology code, ``weighted = W_NONE``) are updated in place, and so are the
    factors ``u`` (warm start of the next refit). ``v``: the scale of the last refit, ``wdl``
    its length at ``b``. Returns ``(moved, v)``."""
    N = A.shape[0]
    c = np.zeros(N, np.int64)
    cw = np.zeros(N, np.complex128)
    act = np.arange(N)
    nbl = np.zeros(N, np.int64)
    R = np.zeros(N)
    Z = np.zeros(N)
    B = 0
    for i in range(N):
        B = max(B, b[i] + 1)
    y, cnt, s1, s2, kk = wsbm.split_pairs(ei, ej, lw, b, u, B)
    moved = False
    for idx in range(order.shape[0]):
        i = order[idx]
        r = b[i]
        _connections(A, X, b, i, c, cw)
        best, best_s, best_d = -1e-9, -1, 0.0
        nnb = _neighbour_blocks(c, nbl)
        rem = _removal(ens, weighted, alpha, beta, n, m, xs, c, cw, r, act, N, R)
        for a in range(nnb):  # the blocks it has edges to, ascending (as np.unique)
            s = nbl[a]
            if s == r:
                continue
            if ens == ENS_SIMPLE or ens == ENS_MULTI:
                Z[s] = _z_block(ens, n, m, s, act, N)
            d = _move_delta(ens, weighted, alpha, beta, table, n, m, xs, e, hist, seta, c,
                                   cw, A[i, i], X[i, i], k[i], r, s, counts[0], counts[1], N, nbl,
                                   nnb, R, rem, Z)  # fmt: skip
            total = d + wsbm.split_screen(ei, ej, lw, b, u, y, cnt, s1, s2, kk, ptr, inc, i, s,
                                          v, tau2)  # fmt: skip
            if total < best:
                best, best_s, best_d = total, s, d
        if best_s < 0:
            continue
        kept = u.copy()
        b[i] = best_s
        w, v_new = wsbm.split_weight_dl(ei, ej, lw, b, v1, n_scales, tau2, u)
        if best_d + w - wdl < -1e-9:
            wdl, v, moved = w, v_new, True
            counts[0] += _shift(m, xs, n, e, hist, seta, c, cw, A[i, i], X[i, i], k[i], r,
                                best_s)  # fmt: skip
            B = 0
            for j in range(N):
                B = max(B, b[j] + 1)
            y, cnt, s1, s2, kk = wsbm.split_pairs(ei, ej, lw, b, u, B)
        else:  # back to b and its factors
            b[i] = r
            u[:] = kept
    return moved, v
