"""Collapsed relabelling of state runs: a move over the number of states (block 4b of a sweep).

Given the cluster trajectories X and the HDP weights beta, both the transition matrix pi and
every state's dynamics (A, b per cluster, Q shared) have conjugate priors, so they integrate
out in closed form:

* p(s | beta) = (1 / L) prod_j DirMult(n_j. ; alpha beta + kappa e_j), with n_jk the transition
  counts of s (sticky HDP-HMM, weak limit L);
* p(X | s) = prod_l ML_l with, for the bins t >= 1 in state l, the matrix-normal
  inverse-Wishart evidence of the regressions X_k[t] = [A b]_kl (X_k[t-1], 1) + N(0, Q_l):
  ML_l = prod_k (|k0 I| / |Kn_kl|)^(q/2) |psi0 I|^(nu0/2) Gamma_q(nu_l/2)
  / (|Psi_l|^(nu_l/2) Gamma_q(nu0/2)), Psi_l = psi0 I + sum_k S_kl, nu_l = nu0 + K n_l
  (times pi^(-n_l q K/2), whose product over states is a constant).

The move: draw a bin t uniformly; B is the maximal run of equal states that contains t;
redraw B's common label from p(s | X, beta) among the labels that differ from both
neighbouring bins' states (the current label is one of them). The new run has the same
boundaries, so the same B is chosen from the new state with the same probability |B| / T over
the same candidate set: an exact Gibbs step of the run's label. A run can take a label that no
bin uses (a state is born with its dynamics integrated out, instead of waiting for a prior
draw of (A, b) that happens to fit) and a state whose last run is relabelled dies. The sweep
then redraws pi (with beta) and the dynamics from their conditionals given the new s, before
any block uses them (a partially collapsed Gibbs sampler; van Dyk & Park 2008). The same
kernel with B = {t} and every label allowed is collapsed single-site Gibbs of s_t; it lets a
short run shrink into its neighbours, which the run move (whose candidates exclude the
neighbours' labels) cannot.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from neurodyn.bicluster.linalg import chol, logdet_chol


@njit(cache=True)
def _lmvgamma(a: float, q: int) -> float:
    out = 0.25 * q * (q - 1) * math.log(math.pi)
    for j in range(q):
        out += math.lgamma(a - 0.5 * j)
    return out


@njit(cache=True, error_model="numpy")
def _solve_lower(low: np.ndarray, b: np.ndarray) -> np.ndarray:
    n, m = b.shape
    z = np.empty((n, m))
    for c in range(m):
        for i in range(n):
            t = b[i, c]
            for k in range(i):
                t -= low[i, k] * z[k, c]
            z[i, c] = t / low[i, i]
    return z


@njit(cache=True, error_model="numpy")
def state_log_evidence(UU: np.ndarray, UY: np.ndarray, YY: np.ndarray, n: float, k0: float,
                       psi0: float, nu0: float) -> float:
    """log ML of one state from its regression statistics per cluster (UU (K, q+1, q+1),
    UY (K, q+1, q), YY (K, q, q)) over its n bins; 0 for an unused state."""
    if n == 0:
        return 0.0
    K, q1, q = UY.shape
    Psi = psi0 * np.eye(q)
    out = 0.0
    for k in range(K):
        Kn = UU[k] + k0 * np.eye(q1)
        low = chol(Kn)
        out += 0.5 * q * (q1 * math.log(k0) - logdet_chol(low))
        Z = _solve_lower(low, UY[k])
        Psi += YY[k] - Z.T @ Z
    nu = nu0 + K * n
    out += 0.5 * nu0 * q * math.log(psi0) - 0.5 * nu * logdet_chol(chol(0.5 * (Psi + Psi.T)))
    return out + _lmvgamma(0.5 * nu, q) - _lmvgamma(0.5 * nu0, q)


@njit(cache=True)
def transition_log_prob(N: np.ndarray, beta: np.ndarray, alpha: float, kappa: float) -> float:
    """log p(s | beta) with pi integrated out, from the transition counts N (L, L) (without
    the constant log(1 / L) of s_0)."""
    L = N.shape[0]
    out = 0.0
    for j in range(L):
        tot = 0.0
        for k in range(L):
            c = alpha * beta[k] + (kappa if j == k else 0.0)
            if N[j, k] > 0:
                out += math.lgamma(c + N[j, k]) - math.lgamma(c)
            tot += N[j, k]
        if tot > 0:
            out += math.lgamma(alpha + kappa) - math.lgamma(alpha + kappa + tot)
    return out


@njit(cache=True)
def _bin_add(X: np.ndarray, t: int, sign: float, UU: np.ndarray, UY: np.ndarray,
             YY: np.ndarray) -> None:
    """Add ``sign`` times bin t's regression terms (all clusters) to UU, UY, YY (K, ...)."""
    K, _, q = X.shape
    for k in range(K):
        for i in range(q + 1):
            ui = X[k, t - 1, i] if i < q else 1.0
            for j in range(q + 1):
                uj = X[k, t - 1, j] if j < q else 1.0
                UU[k, i, j] += sign * ui * uj
            for j in range(q):
                UY[k, i, j] += sign * ui * X[k, t, j]
        for i in range(q):
            for j in range(q):
                YY[k, i, j] += sign * X[k, t, i] * X[k, t, j]


@njit(cache=True)
def dynamics_log_evidence(X: np.ndarray, s: np.ndarray, L: int, k0: float, psi0: float,
                          nu0: float) -> float:
    """log p(X[1:] | X[0], s) with every state's (A, b) and Q integrated out (up to the constant
    in the module docstring)."""
    K, T, q = X.shape
    UU = np.zeros((L, K, q + 1, q + 1))
    UY = np.zeros((L, K, q + 1, q))
    YY = np.zeros((L, K, q, q))
    n = np.zeros(L)
    for t in range(1, T):
        _bin_add(X, t, 1.0, UU[s[t]], UY[s[t]], YY[s[t]])
        n[s[t]] += 1
    out = 0.0
    for l in range(L):
        out += state_log_evidence(UU[l], UY[l], YY[l], n[l], k0, psi0, nu0)
    return out


@njit(cache=True)
def state_statistics(X: np.ndarray, s: np.ndarray, L: int):
    """Per-state regression statistics and transition counts of a state sequence.

    X (K, T, q) trajectories, s (T,) states in [0, L). Returns UU (L, K, q+1, q+1),
    UY (L, K, q+1, q), YY (L, K, q, q), n (L,) bins per state and N (L, L) transitions."""
    K, T, q = X.shape
    UU = np.zeros((L, K, q + 1, q + 1))
    UY = np.zeros((L, K, q + 1, q))
    YY = np.zeros((L, K, q, q))
    n = np.zeros(L)
    N = np.zeros((L, L))
    for t in range(1, T):
        _bin_add(X, t, 1.0, UU[s[t]], UY[s[t]], YY[s[t]])
        n[s[t]] += 1
        N[s[t - 1], s[t]] += 1
    return UU, UY, YY, n, N


@njit(cache=True)
def collapsed_log_target(X: np.ndarray, s: np.ndarray, beta: np.ndarray, alpha: float,
                         kappa: float, k0: float, psi0: float, nu0: float) -> float:
    """log p(s | X, beta) up to a constant (pi and the dynamics integrated out)."""
    K, T, q = X.shape
    L = beta.shape[0]
    UU, UY, YY, n, N = state_statistics(X, s, L)
    out = transition_log_prob(N, beta, alpha, kappa)
    for l in range(L):
        out += state_log_evidence(UU[l], UY[l], YY[l], n[l], k0, psi0, nu0)
    return out


@njit(cache=True)
def relabel_runs(X: np.ndarray, s: np.ndarray, beta: np.ndarray, alpha: float, kappa: float,
                 k0: float, psi0: float, nu0: float, picks: np.ndarray, u: np.ndarray,
                 runs: bool = True) -> int:
    """Apply ``picks.size`` relabelling steps (see the module docstring) to s in place.

    X (K, T, q) trajectories, s (T,) states, beta (L,) HDP weights; picks (M,) the bins t
    (uniform), u (M,) uniforms for the label draws. ``runs=False`` relabels the single bin t
    instead of its run, among all labels (collapsed single-site Gibbs: a run can then shrink
    into its neighbours bin by bin, which the run move cannot do). Returns the number of steps
    that changed a label."""
    K, T, q = X.shape
    L = beta.shape[0]
    UU, UY, YY, n, N = state_statistics(X, s, L)
    ml = np.empty(L)
    for l in range(L):
        ml[l] = state_log_evidence(UU[l], UY[l], YY[l], n[l], k0, psi0, nu0)
    dUU = np.zeros((K, q + 1, q + 1))
    dUY = np.zeros((K, q + 1, q))
    dYY = np.zeros((K, q, q))
    lp = np.empty(L)
    changed = 0
    for m in range(picks.size):
        t = picks[m]
        old = s[t]
        t0 = t
        t1 = t
        while runs and t0 > 0 and s[t0 - 1] == old:
            t0 -= 1
        while runs and t1 < T - 1 and s[t1 + 1] == old:
            t1 += 1
        left = s[t0 - 1] if t0 > 0 else -1
        right = s[t1 + 1] if t1 < T - 1 else -1
        # the run's regression terms and transitions, removed from the old state
        dUU[:] = 0.0
        dUY[:] = 0.0
        dYY[:] = 0.0
        nb = 0
        for tt in range(max(t0, 1), t1 + 1):
            _bin_add(X, tt, 1.0, dUU, dUY, dYY)
            nb += 1
        UU[old] -= dUU
        UY[old] -= dUY
        YY[old] -= dYY
        n[old] -= nb
        ml_old_minus = state_log_evidence(UU[old], UY[old], YY[old], n[old], k0, psi0, nu0)
        if left >= 0:
            N[left, old] -= 1
        if right >= 0:
            N[old, right] -= 1
        N[old, old] -= t1 - t0
        for c in range(L):
            if runs and (c == left or c == right):
                lp[c] = -np.inf
                continue
            base = ml_old_minus if c == old else ml[c]
            ev = state_log_evidence(UU[c] + dUU, UY[c] + dUY, YY[c] + dYY, n[c] + nb, k0, psi0,
                                    nu0)
            if left >= 0:
                N[left, c] += 1
            if right >= 0:
                N[c, right] += 1
            N[c, c] += t1 - t0
            lp[c] = ev - base + transition_log_prob(N, beta, alpha, kappa)
            if left >= 0:
                N[left, c] -= 1
            if right >= 0:
                N[c, right] -= 1
            N[c, c] -= t1 - t0
        mx = lp.max()
        w = np.exp(lp - mx)
        x = u[m] * w.sum()
        new = L - 1
        acc = 0.0
        for c in range(L):
            acc += w[c]
            if x < acc:
                new = c
                break
        while w[new] == 0.0:  # guard against rounding at the top end
            new -= 1
        # put the run back under its (possibly new) label
        UU[new] += dUU
        UY[new] += dUY
        YY[new] += dYY
        n[new] += nb
        if left >= 0:
            N[left, new] += 1
        if right >= 0:
            N[new, right] += 1
        N[new, new] += t1 - t0
        if new != old:
            ml[old] = ml_old_minus
            ml[new] = state_log_evidence(UU[new], UY[new], YY[new], n[new], k0, psi0, nu0)
            for tt in range(t0, t1 + 1):
                s[tt] = new
            changed += 1
    return changed



@njit(cache=True)
def allocate_bins(X: np.ndarray, bins: np.ndarray, side_given: np.ndarray, u: np.ndarray,
                  sticky: float, k0: float, psi0: float, nu0: float):
    """Sequential allocation of ``bins`` (increasing) to side 0 or 1 of a state split.

    Bin t goes to side j with probability proportional to exp(the gain in side j's collapsed
    dynamics evidence from adding t) times ``sticky`` when bin t - 1 went to side j. With
    ``side_given[0] >= 0`` the given sides are scored instead of drawn (``u`` unused).
    Returns (sides, log q)."""
    K, T, q = X.shape
    UU = np.zeros((2, K, q + 1, q + 1))
    UY = np.zeros((2, K, q + 1, q))
    YY = np.zeros((2, K, q, q))
    n = np.zeros(2)
    ev = np.zeros(2)
    gain = np.zeros(2)
    new_ev = np.zeros(2)
    dUU = np.zeros((K, q + 1, q + 1))
    dUY = np.zeros((K, q + 1, q))
    dYY = np.zeros((K, q, q))
    side = np.empty(bins.size, dtype=np.int64)
    log_q = 0.0
    for m in range(bins.size):
        t = bins[m]
        if t >= 1:
            dUU[:] = 0.0
            dUY[:] = 0.0
            dYY[:] = 0.0
            _bin_add(X, t, 1.0, dUU, dUY, dYY)
            for j in range(2):
                new_ev[j] = state_log_evidence(UU[j] + dUU, UY[j] + dUY, YY[j] + dYY, n[j] + 1,
                                               k0, psi0, nu0)
                gain[j] = new_ev[j] - ev[j]
        else:
            gain[:] = 0.0
        if m > 0 and bins[m - 1] == t - 1:
            gain[side[m - 1]] += math.log(sticky)
        d = gain[1] - gain[0]
        lp1 = -math.log1p(math.exp(-d)) if d > -700 else d
        lp0 = -math.log1p(math.exp(d)) if d < 700 else -d
        j = side_given[m] if side_given[0] >= 0 else (1 if u[m] < math.exp(lp1) else 0)
        side[m] = j
        log_q += lp1 if j == 1 else lp0
        if t >= 1:
            UU[j] += dUU
            UY[j] += dUY
            YY[j] += dYY
            n[j] += 1
            ev[j] = new_ev[j]
    return side, log_q


def split_merge_states(X: np.ndarray, s: np.ndarray, beta: np.ndarray, alpha: float,
                       kappa: float, k0: float, psi0: float, nu0: float,
                       rng: np.random.Generator, sticky: float = 20.0) -> tuple[bool, bool]:
    """One collapsed split-merge Metropolis-Hastings proposal over the states, s in place.

    With probability 1/2 a split: a used state a (uniform among the U used) and an unused
    label c (uniform among the L - U unused) are drawn, and a's bins are shared between a and c
    by :func:`allocate_bins` (a proposal that leaves a or c empty is rejected). Otherwise a
    merge: an ordered pair (a, c) of used states, c's bins relabelled a; the reverse split is
    scored by the same allocation. The target is p(s | X, beta) with pi and the dynamics
    integrated out (:func:`collapsed_log_target`); the sweep then redraws them given the new s.

    Returns (split proposed, accepted)."""
    L = beta.shape[0]
    used = np.unique(s)
    U = used.size
    split = rng.random() < 0.5
    if split:
        if U == L:
            return True, False
        a = int(rng.choice(used))
        c = int(rng.choice(np.setdiff1d(np.arange(L), used)))
        bins = np.flatnonzero(s == a)
        side, log_alloc = allocate_bins(X, bins, np.full(1, -1), rng.random(bins.size), sticky,
                                        k0, psi0, nu0)
        if side.all() or not side.any():
            return True, False
        new = s.copy()
        new[bins[side == 1]] = c
        log_q = np.log(L - U) - np.log(U + 1.0) - log_alloc  # q(merge) / q(split)
    else:
        if U < 2:
            return False, False
        a, c = (int(v) for v in rng.choice(used, 2, replace=False))
        bins = np.flatnonzero((s == a) | (s == c))
        log_alloc = allocate_bins(X, bins, (s[bins] == c).astype(np.int64), np.zeros(0), sticky,
                                  k0, psi0, nu0)[1]
        new = np.where(s == c, a, s)
        log_q = np.log(U) - np.log(L - U + 1.0) + log_alloc  # q(split) / q(merge)
    log_r = (collapsed_log_target(X, new, beta, alpha, kappa, k0, psi0, nu0)
             - collapsed_log_target(X, s, beta, alpha, kappa, k0, psi0, nu0) + log_q)
    if np.log(rng.random()) < log_r:
        s[:] = new
        return split, True
    return split, False
