"""Weighted benchmark graphs with planted communities (ground truth for tests and benchmarks)."""

from __future__ import annotations

import numpy as np


def planted_partition(
    sizes: list[int] | np.ndarray,
    p_in: float,
    p_out: float,
    *,
    w_in: float = 1.0,
    w_out: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Planted-partition graph with exponentially distributed edge weights.

    Parameters
    ----------
    sizes : sequence of int
        Block sizes (N = sum).
    p_in, p_out : float
        Edge probability inside / between blocks.
    w_in, w_out : float
        Mean weight of edges inside / between blocks (exponential distribution).
    seed : int
        Random seed.

    Returns
    -------
    W : (N, N) float64
        Symmetric weights, zero diagonal, zero where there is no edge.
    membership : (N,) int64
        Planted block of each node.
    """
    rng = np.random.default_rng(seed)
    membership = np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)
    N = membership.size
    same = membership[:, None] == membership[None, :]
    p = np.where(same, p_in, p_out)
    mean = np.where(same, w_in, w_out)
    edges = rng.random((N, N)) < p
    weights = rng.exponential(1.0, (N, N)) * mean
    W = np.triu(np.where(edges, weights, 0.0), 1)
    return W + W.T, membership


def _power_law(rng: np.random.Generator, n: int, exponent: float, lo: float, hi: float) -> np.ndarray:
    """``n`` samples of a power law ``p(x) ~ x^-exponent`` on ``[lo, hi]`` (inverse CDF)."""
    u = rng.random(n)
    if abs(exponent - 1.0) < 1e-12:
        return lo * (hi / lo) ** u
    a = 1.0 - exponent
    return (lo**a + u * (hi**a - lo**a)) ** (1.0 / a)


def _power_law_mean(exponent: float, lo: float, hi: float) -> float:
    x = np.linspace(lo, hi, 4001)
    p = x**-exponent
    return float(np.trapezoid(x * p, x) / np.trapezoid(p, x))


def _min_degree_for_mean(avg: float, exponent: float, hi: float) -> float:
    """Lower cut-off of a power law on ``[lo, hi]`` whose mean is ``avg`` (bisection)."""
    lo_b, hi_b = 1.0, hi
    for _ in range(60):
        mid = 0.5 * (lo_b + hi_b)
        if _power_law_mean(exponent, mid, hi) < avg:
            lo_b = mid
        else:
            hi_b = mid
    return 0.5 * (lo_b + hi_b)


def lfr_weighted(
    n: int = 125,
    avg_degree: float = 25.0,
    max_degree: int = 50,
    mu: float = 0.5,
    mu_w: float | None = None,
    *,
    degree_exponent: float = 2.0,
    community_exponent: float = 1.0,
    min_community: int = 20,
    max_community: int = 50,
    strength_exponent: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted LFR-style benchmark graph (after Lancichinetti & Fortunato 2009).

    Degrees follow a power law (``degree_exponent``) on ``[k_min, max_degree]``, ``k_min``
    set so that the mean is ``avg_degree``;
    community sizes a power law (``community_exponent``) on ``[min_community,
    max_community]``; each node sends a fraction ``mu`` of its edge stubs outside its
    community and the rest inside, wired by random stub matching (pairs that would make a
    self-loop or a multi-edge are re-matched; stubs still unmatched after 50 rounds are
    dropped, so the realised mean degree can fall slightly short).

    Weights, ``strength_exponent`` None: exponential, with means chosen so that a fraction
    ``mu_w`` (default ``mu``) of the expected total weight lies between communities.
    ``strength_exponent = beta``: deterministic, as in weighted LFR, each node's strength is
    ``s_i = k_i^beta`` with a share ``1 - mu_w`` on its internal edges; internal edges weigh
    ``w_ij = x_i x_j`` and external ones ``w_ij = y_i y_j``, the factors fitted so that every
    node's internal and external strengths match (:func:`product_weights`).

    Returns
    -------
    W : (n, n) float64
        Symmetric weights, zero where there is no edge.
    membership : (n,) int64
        Planted community of each node.
    """
    rng = np.random.default_rng(seed)
    mu_w = mu if mu_w is None else mu_w
    k_min = _min_degree_for_mean(avg_degree, degree_exponent, float(max_degree))
    deg = np.round(_power_law(rng, n, degree_exponent, k_min, float(max_degree))).astype(np.int64)
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(int(round(_power_law(rng, 1, community_exponent, min_community, max_community)[0])))
    excess = sum(sizes) - n
    while excess > 0:  # trim the largest communities but keep each >= min_community
        i = int(np.argmax(sizes))
        cut = min(excess, sizes[i] - min_community)
        if cut <= 0:
            sizes.pop(int(np.argmin(sizes)))
            excess = sum(sizes) - n
            if excess < 0:
                sizes[int(np.argmin(sizes))] -= excess
                excess = 0
            continue
        sizes[i] -= cut
        excess -= cut
    membership = rng.permutation(np.repeat(np.arange(len(sizes)), sizes)).astype(np.int64)
    # internal degree cannot exceed community size - 1
    comm_size = np.bincount(membership)[membership]
    k_in = np.minimum(np.round((1.0 - mu) * deg).astype(np.int64), comm_size - 1)
    k_out = deg - k_in
    A = np.zeros((n, n), dtype=bool)

    def wire(stubs: np.ndarray, allowed, attempts: int = 50) -> None:
        """Random stub matching; stubs of rejected pairs (self-loop, multi-edge, not
        allowed) are matched again, up to ``attempts`` rounds."""
        for _ in range(attempts):
            stubs = rng.permutation(stubs)
            if stubs.size % 2:
                stubs = stubs[:-1]
            left = []
            for a, b in zip(stubs[0::2], stubs[1::2]):
                if a != b and not A[a, b] and allowed(a, b):
                    A[a, b] = A[b, a] = True
                else:
                    left.extend((a, b))
            stubs = np.array(left, dtype=np.int64)
            if stubs.size < 2:
                break

    for c in range(len(sizes)):
        nodes = np.flatnonzero(membership == c)
        wire(np.repeat(nodes, k_in[nodes]), lambda a, b: True)
    wire(np.repeat(np.arange(n), k_out), lambda a, b: membership[a] != membership[b])
    same = membership[:, None] == membership[None, :]
    if strength_exponent is not None:
        k = A.sum(axis=1).astype(np.float64)
        s = k**strength_exponent
        W = product_weights(A & same, (1.0 - mu_w) * s) + product_weights(A & ~same, mu_w * s)
        return W, membership
    n_in = max(int(np.triu(A & same, 1).sum()), 1)
    n_out = max(int(np.triu(A & ~same, 1).sum()), 1)
    # mean weights w_in, w_out with n_out w_out / (n_in w_in + n_out w_out) = mu_w, w_in = 1
    w_in = 1.0
    w_out = mu_w / max(1.0 - mu_w, 1e-9) * n_in / n_out
    weights = rng.exponential(1.0, (n, n)) * np.where(same, w_in, w_out)
    W = np.triu(np.where(A, weights, 0.0), 1)
    return W + W.T, membership


def product_weights(A: np.ndarray, strength: np.ndarray, n_iter: int = 500) -> np.ndarray:
    """Weights ``w_ij = x_i x_j`` on the edges of ``A`` (N, N) whose row sums match ``strength``.

    Solves ``x_i sum_j A_ij x_j = strength_i`` by damped fixed-point iteration (geometric mean
    of the old and new factor); nodes without edges get weight 0. Returns (N, N) float64.
    """
    A = np.asarray(A, dtype=np.float64)
    has = A.sum(axis=1) > 0
    x = np.where(has, np.sqrt(np.maximum(strength, 1e-300) / np.maximum(A.sum(axis=1), 1)), 0.0)
    for _ in range(n_iter):
        nb = A @ x
        new = np.where(has, strength / np.where(nb > 0, nb, 1.0), 0.0)
        x = np.sqrt(x * new)
    return A * np.outer(x, x)
