"""HMM-GLM kernels against slow obviously-correct references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neurodyn.hmmglm import mstep
from neurodyn.hmmglm.basis import exp_basis, filter_history
from neurodyn.hmmglm.forward_backward import forward_backward, forward_loglik, viterbi
from neurodyn.hmmglm.model import ModelSpec, Params, state_loglik
from neurodyn.hmmglm.priors import REGISTRY, GaussianPrior, NoPrior, OneHotPrior


def _prior(kind, W0, sigma2, l2):
    """A registered prior of ``kind`` with the fields it has."""
    extra = {"W0": W0, "sigma2": sigma2} if REGISTRY[kind] is GaussianPrior else {}
    return REGISTRY[kind](l2=l2, **extra)

def _random_hmm(rng, T, K):
    ll = rng.normal(size=(T, K)) * 3
    pi0 = rng.dirichlet(np.ones(K))
    P = rng.dirichlet(np.ones(K), size=K)
    return ll, pi0, P


def _enumerate(ll, pi0, P):
    """All K**T paths: joint log-probabilities."""
    T, K = ll.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    lp = np.log(pi0)[paths[:, 0]] + ll[0, paths[:, 0]]
    for t in range(1, T):
        lp = lp + np.log(P)[paths[:, t - 1], paths[:, t]] + ll[t, paths[:, t]]
    return paths, lp


@pytest.mark.parametrize("seed", range(4))
def test_forward_backward_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    T, K = 6, 3
    ll, pi0, P = _random_hmm(rng, T, K)
    paths, lp = _enumerate(ll, pi0, P)
    logZ = np.logaddexp.reduce(lp)
    w = np.exp(lp - logZ)
    post_ref = np.stack([[w[paths[:, t] == k].sum() for k in range(K)] for t in range(T)])
    xi_ref = np.zeros((K, K))
    for t in range(1, T):
        np.add.at(xi_ref, (paths[:, t - 1], paths[:, t]), w)
    post, xi, seq_ll = forward_backward(ll, pi0, P)
    np.testing.assert_allclose(seq_ll[0], logZ, rtol=1e-10)
    np.testing.assert_allclose(post, post_ref, atol=1e-10)
    np.testing.assert_allclose(xi, xi_ref, atol=1e-10)
    np.testing.assert_allclose(forward_loglik(ll, pi0, P)[0], logZ, rtol=1e-10)
    assert viterbi(ll, pi0, P).tolist() == paths[np.argmax(lp)].tolist()


def test_many_sequences_and_log_fallback():
    rng = np.random.default_rng(7)
    K = 3
    ll, pi0, P = _random_hmm(rng, 11, K)
    starts, stops = np.array([0, 4, 9]), np.array([4, 9, 11])
    post, xi, seq_ll = forward_backward(ll, pi0, P, starts, stops)
    xi_sum = np.zeros((K, K))
    for s, (a, b) in enumerate(zip(starts, stops)):
        p1, x1, l1 = forward_backward(ll[a:b], pi0, P)
        np.testing.assert_allclose(post[a:b], p1, atol=1e-12)
        np.testing.assert_allclose(seq_ll[s], l1[0], rtol=1e-12)
        xi_sum += x1
        np.testing.assert_array_equal(viterbi(ll, pi0, P, starts, stops)[a:b], viterbi(ll[a:b], pi0, P))
    np.testing.assert_allclose(xi, xi_sum, atol=1e-12)
    # an observation impossible under every reachable state forces the log-space path
    P0 = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    ll2 = np.zeros((5, 3))
    ll2[3] = [-2000.0, 0.0, 0.0]
    p0 = np.array([1.0, 0.0, 0.0])
    post2, _, l2 = forward_backward(ll2, p0, P0)
    assert np.isclose(l2[0], -2000.0)
    assert np.all(np.isfinite(post2)) and np.allclose(post2[:, 0], 1.0)


def test_filter_history_reference():
    rng = np.random.default_rng(0)
    y = rng.poisson(1.0, size=(30, 4)).astype(np.float32)
    b = exp_basis(5)
    assert np.isclose(b.sum(), 1.0) and np.all(np.diff(b) < 0)
    starts, stops = np.array([0, 17]), np.array([17, 30])
    h = filter_history(y, b, starts, stops)
    ref = np.zeros_like(h)
    for a, e in zip(starts, stops):
        for t in range(a, e):
            for lag in range(5):
                if t - 1 - lag >= a:
                    ref[t] += b[lag] * y[t - 1 - lag]
    np.testing.assert_allclose(h, ref, rtol=1e-6)


@pytest.mark.parametrize("obs,link", [("poisson", "softplus"), ("poisson", "exp"),
                                      ("poisson", "sigmoid"), ("bernoulli", "softplus"),
                                      ("gaussian", "softplus")])
def test_state_loglik_reference(obs, link):
    from scipy.stats import norm, poisson
    rng = np.random.default_rng(1)
    T, N, K = 40, 3, 2
    spec = ModelSpec(observation=obs, link=link, rate_cap=3.0)
    y = rng.poisson(1.0, (T, N)).astype(np.float32)
    if obs == "bernoulli":
        y = (y > 0).astype(np.float32)
    if obs == "gaussian":
        y = rng.normal(size=(T, N)).astype(np.float32)
    h = rng.random((T, N)).astype(np.float32)
    p = Params(np.full(K, .5), np.full((K, K), .5), rng.normal(size=(K, N)) * .5,
               rng.normal(size=(K, N, N)) * .5, rng.random(N) + .5)
    ll = state_loglik(y, h, p, spec)
    for k in range(K):
        eta = h.astype(float) @ p.W[k].T + p.bias[k]
        if obs == "poisson":
            r = {"softplus": np.log1p(np.exp(eta)), "exp": np.exp(eta),
                 "sigmoid": 3.0 / (1 + np.exp(-eta))}[link]
            ref = poisson.logpmf(y, r).sum(1)
        elif obs == "bernoulli":
            q = 1 / (1 + np.exp(-eta))
            ref = (y * np.log(q) + (1 - y) * np.log(1 - q)).sum(1)
        else:
            ref = norm.logpdf(y, eta, np.sqrt(p.noise_var)).sum(1)
        np.testing.assert_allclose(ll[:, k], ref, rtol=1e-8, atol=1e-8)


def _fd_check(fun, x, eps=1e-6, n=25, seed=0):
    rng = np.random.default_rng(seed)
    f0, g = fun(x)
    for i in rng.choice(x.size, size=min(n, x.size), replace=False):
        e = np.zeros_like(x)
        e[i] = eps
        num = (fun(x + e)[0] - fun(x - e)[0]) / (2 * eps)
        assert np.isclose(num, g[i], rtol=1e-4, atol=1e-7), (i, num, g[i])


def _fd_hessian_check(fun, x, eps=1e-6, n=12, seed=0):
    """``fun(x) -> (g (P,), H (P, P))``: H columns against central differences of g."""
    rng = np.random.default_rng(seed)
    g0, H = fun(x)
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-10)
    for i in rng.choice(x.size, size=min(n, x.size), replace=False):
        e = np.zeros_like(x)
        e[i] = eps
        num = (fun(x + e)[0] - fun(x - e)[0]) / (2 * eps)
        np.testing.assert_allclose(num, H[:, i], rtol=1e-4, atol=1e-6)


OBS_LINKS = [("poisson", "softplus"), ("poisson", "exp"), ("poisson", "sigmoid"),
             ("bernoulli", "softplus"), ("gaussian", "softplus")]


def _mstep_data(rng, obs, T, N, K):
    y = rng.poisson(1.0, (T, N)).astype(np.float32)
    if obs == "bernoulli":
        y = np.minimum(y, 1)
    if obs == "gaussian":
        y = rng.normal(size=(T, N)).astype(np.float32)
    h = rng.random((T, N)).astype(np.float32)
    gamma = rng.dirichlet(np.ones(K), size=T)
    gamma[:5] = 0.0  # rows outside the fitted sequences
    return mstep.weighted_data(y, h, gamma)


@pytest.mark.parametrize("obs,link", OBS_LINKS)
@pytest.mark.parametrize("kind", ["none", "gaussian"])
def test_free_objective_gradient(obs, link, kind):
    rng = np.random.default_rng(2)
    T, N, K = 60, 4, 2
    spec = ModelSpec(observation=obs, link=link, self_history=False)
    data = _mstep_data(rng, obs, T, N, K)
    mask = ~np.eye(N, dtype=bool)
    prior = _prior(kind, W0=rng.normal(size=(N, N)) * mask, sigma2=0.3, l2=0.5)
    x = rng.normal(size=K * N + K * N * N) * 0.5
    var = np.full(N, 1.3)
    _fd_check(lambda v: mstep.free_objective(v, data, spec, var, prior, mask), x)


def test_free_objective_matches_numpy_reference():
    """Chunked weighted sums equal a direct numpy evaluation of the expected log posterior."""
    rng = np.random.default_rng(5)
    T, N, K = 70, 3, 2
    spec = ModelSpec()
    data = _mstep_data(rng, "poisson", T, N, K)
    mask = np.ones((N, N), dtype=bool)
    prior = NoPrior(l2=0.7)
    bias, W = rng.normal(size=(K, N)) * .5, rng.normal(size=(K, N, N)) * .5
    f, _ = mstep.free_objective(np.concatenate([bias.ravel(), W.ravel()]), data, spec,
                                np.ones(N), prior, mask)
    ref = 0.0
    y, h = data.y.astype(float), data.h.astype(float)
    for k in range(K):
        r = np.log1p(np.exp(h @ W[k].T + bias[k]))
        ref -= np.sum(data.gamma[:, k, None] * (y * np.log(r) - r))
    ref += 0.35 * np.sum(W * W)
    np.testing.assert_allclose(f, ref, rtol=1e-10)


@pytest.mark.parametrize("obs,link", OBS_LINKS)
def test_state_terms_hessian(obs, link):
    """Exact Hessian of every (state, neuron) objective against differences of its gradient."""
    rng = np.random.default_rng(3)
    T, N, K = 60, 4, 2
    spec = ModelSpec(observation=obs, link=link)
    data = _mstep_data(rng, obs, T, N, K)
    mask = np.ones((N, N), dtype=bool)
    prior = GaussianPrior(W0=rng.normal(size=(N, N)), sigma2=0.3)
    var = np.full(N, 1.3)
    beta = rng.normal(size=(N, N + 1)) * 0.5
    for k in range(K):
        for n in range(N):
            def fun(b, k=k, n=n):
                full = beta.copy()
                full[n] = b
                _, g, H = mstep.free_terms(data, k, full, spec, var, prior, mask, 2,
                                           fisher=False)
                return g[n], H[n]
            _fd_hessian_check(fun, beta[n].copy(), seed=k * N + n)


def test_onehot_objective_gradient_and_hessian():
    rng = np.random.default_rng(3)
    T, N, K = 60, 4, 3
    spec = ModelSpec()
    data = _mstep_data(rng, "poisson", T, N, K)
    A = rng.integers(-1, 2, size=(K, N, N)).astype(float)
    bias, S = rng.normal(size=(K, N)), rng.random((N, N))
    var = np.ones(N)

    def total(v):
        Sv, bv = v[:N * N].reshape(N, N), v[N * N:].reshape(N, K).T
        f, g, _ = mstep.onehot_terms(data, bv, Sv, A, spec, var, 1)
        grad = np.concatenate([g[:, :N].ravel(), g[:, N:].ravel()])
        return float(f.sum()), grad

    _fd_check(total, np.concatenate([S.ravel(), bias.T.ravel()]))
    for n in range(N):
        def fun(x, n=n):
            Sv, bv = S.copy(), bias.copy()
            Sv[n], bv[:, n] = x[:N], x[N:]
            _, g, H = mstep.onehot_terms(data, bv, Sv, A, spec, var, 2)
            return g[n], H[n]
        _fd_hessian_check(fun, np.concatenate([S[n], bias[:, n]]), seed=n)


@pytest.mark.parametrize("kind", ["none", "gaussian", "onehot"])
def test_newton_mstep_reaches_the_optimum(kind):
    """The Newton M-step lands where scipy's L-BFGS on the same objective lands."""
    from scipy.optimize import minimize
    rng = np.random.default_rng(6)
    T, N, K = 400, 4, 2
    spec = ModelSpec()
    data = _mstep_data(rng, "poisson", T, N, K)
    mask = ~np.eye(N, dtype=bool)
    var = np.ones(N)
    p = Params(np.full(K, .5), np.full((K, K), .5), np.zeros((K, N)), np.zeros((K, N, N)),
               np.ones(N))
    if kind == "onehot":
        A = rng.integers(-1, 2, size=(K, N, N)).astype(np.int8) * mask
        prior = OneHotPrior(strength=np.full((N, N), 0.3) * mask, adjacency=A)
        mstep.update_weights(p, prior, data, spec, mask, rtol=1e-12)

        def obj(v):
            f, g, _ = mstep.onehot_terms(data, v[N * N:].reshape(N, K).T, v[:N * N].reshape(N, N),
                                         A.astype(float), spec, var, 1)
            return float(f.sum()), np.concatenate([g[:, :N].ravel(), g[:, N:].ravel()])
        x0 = np.concatenate([np.full(N * N, 0.3), np.zeros(N * K)])
        res = minimize(obj, x0, jac=True, method="L-BFGS-B",
                       bounds=[(0, None)] * (N * N) + [(None, None)] * (N * K),
                       options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10})
        ours = obj(np.concatenate([prior.strength.ravel(), p.bias.T.ravel()]))[0]
        assert ours <= res.fun + 1e-7 * abs(res.fun)
        used = np.any(A != 0, axis=0)
        np.testing.assert_allclose(prior.strength[used], res.x[:N * N].reshape(N, N)[used],
                                   atol=1e-4)
        return
    prior = _prior(kind, W0=rng.normal(size=(N, N)) * 0.3 * mask, sigma2=0.2, l2=0.1)
    mstep.update_weights(p, prior, data, spec, mask, rtol=1e-12)
    x0 = np.zeros(K * N + K * N * N)
    res = minimize(mstep.free_objective, x0, args=(data, spec, var, prior, mask), jac=True,
                   method="L-BFGS-B", options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10})
    ours = mstep.free_objective(np.concatenate([p.bias.ravel(), p.W.ravel()]), data, spec, var,
                                prior, mask)[0]
    assert ours <= res.fun + 1e-9 * abs(res.fun)
    np.testing.assert_allclose(p.W, res.x[K * N:].reshape(K, N, N) * mask, atol=1e-4)
    np.testing.assert_allclose(p.bias, res.x[:K * N].reshape(K, N), atol=1e-4)


def test_onehot_sweep_scores_classes_exactly():
    """Each pair's conditional class probabilities equal brute-force scoring of its 3 classes."""
    rng = np.random.default_rng(4)
    T, N, K = 200, 3, 1
    spec = ModelSpec()
    y = rng.poisson(1.0, (T, N)).astype(np.float32)
    h = rng.random((T, N))
    data = mstep.weighted_data(y, h, np.ones((T, K)))
    S = rng.uniform(0.3, 1.0, (N, N))
    A = np.zeros((K, N, N), dtype=np.int8)
    table = rng.dirichlet(np.ones(3), size=(N, N))
    ps = OneHotPrior(strength=S, adjacency=A.copy(),
                    adjacency_prob=np.zeros((K, N, N, 3)), table=table)
    p = Params(np.ones(1), np.ones((1, 1)), rng.normal(size=(K, N)) * .3, A * S, np.ones(N))
    p0 = p.copy()
    mstep.onehot_sweep(p, ps, data, spec)
    # first pair (0, 0) is scored with all others at class 0: brute force
    scores = []
    for c in (-1, 0, 1):
        W = np.zeros((N, N))
        W[0, 0] = c * S[0, 0]
        eta = h @ W.T + p0.bias[0]
        r = np.log1p(np.exp(eta[:, 0]))
        scores.append(np.sum(y[:, 0] * np.log(r) - r) + np.log(table[0, 0, c + 1]))
    scores = np.array(scores)
    ref = np.exp(scores - scores.max())
    np.testing.assert_allclose(ps.adjacency_prob[0, 0, 0], ref / ref.sum(), rtol=1e-8)
    assert ps.adjacency[0, 0, 0] == np.argmax(scores) - 1
    np.testing.assert_allclose(p.W, ps.adjacency * S[None])


def test_transition_mstep_is_sticky_dirichlet_map():
    xi = np.array([[8.0, 2.0], [1.0, 9.0]])
    P = mstep.update_transitions(xi, sticky=10.0)
    np.testing.assert_allclose(P, [[18 / 20, 2 / 20], [1 / 20, 19 / 20]], rtol=1e-8)


def test_sigmoid_link_fisher_curvature_is_expected_curvature():
    """Newton uses the Fisher curvature for the non-concave capped-sigmoid link: the exact
    curvature averaged over y ~ Poisson(cap * sigmoid(eta)) (it is linear in y)."""
    from neurodyn.hmmglm.model import _ll_grad_curv
    cap = 3.0
    for eta in (-4.0, -0.5, 0.0, 0.7, 5.0):
        mean = cap / (1 + np.exp(-eta))
        _, _, fisher = _ll_grad_curv(0.0, eta, 2, cap, 1.0, True)
        _, _, exact = _ll_grad_curv(mean, eta, 2, cap, 1.0, False)
        assert fisher >= 0
        np.testing.assert_allclose(fisher, exact, rtol=1e-10, atol=1e-14)


# -- learned basis ----------------------------------------------------------------------------
def _history64(y, basis, starts, stops):
    """float64 reference of filter_history (finite differences need more than float32)."""
    h = np.zeros(y.shape)
    for a, e in zip(starts, stops):
        for lag, w in enumerate(basis):
            h[a + 1 + lag:e] += w * y[a:e - 1 - lag]
    return h


def test_basis_derivatives_match_finite_differences():
    from neurodyn.hmmglm.learn_basis import basis_derivatives

    for L, tau in [(5, 2.5), (8, 0.7), (3, 40.0)]:
        u, eps = np.log(tau), 1e-4
        b, bu, buu = basis_derivatives(L, tau)
        np.testing.assert_allclose(b, exp_basis(L, tau))
        bp, bm = exp_basis(L, np.exp(u + eps)), exp_basis(L, np.exp(u - eps))
        np.testing.assert_allclose(bu, (bp - bm) / (2 * eps), rtol=1e-6, atol=1e-10)
        np.testing.assert_allclose(buu, (bp - 2 * b + bm) / eps**2, rtol=1e-4, atol=1e-7)
        assert abs(bu.sum()) < 1e-12 and abs(buu.sum()) < 1e-12  # the basis stays normalised


@pytest.mark.parametrize("obs,link", OBS_LINKS)
def test_tau_objective_derivatives_match_finite_differences(obs, link):
    """Q(log tau) and its first and second derivatives against a numpy reference and
    central differences of Q."""
    from neurodyn.hmmglm.learn_basis import basis_derivatives, tau_derivatives

    rng = np.random.default_rng(7)
    T, N, K, L = 80, 3, 2, 5
    spec = ModelSpec(observation=obs, link=link)
    data = _mstep_data(rng, obs, T, N, K)
    starts, stops = np.array([0, 50]), np.array([50, 80])
    params = Params(pi0=np.full(K, 0.5), P=np.full((K, K), 0.5),
                    bias=rng.normal(size=(K, N)) * 0.3, W=rng.normal(size=(K, N, N)) * 0.5,
                    noise_var=np.full(N, 1.3))
    yd = data.y.astype(float)

    def derivs(u, order=2):
        _, bu, buu = basis_derivatives(L, np.exp(u))
        h = _history64(yd, exp_basis(L, np.exp(u)), starts, stops)
        return tau_derivatives(h, _history64(yd, bu, starts, stops),
                               _history64(yd, buu, starts, stops), data, params, spec, order)

    u, eps = np.log(1.7), 1e-4
    q, q1, q2 = derivs(u)
    # Q against the per-state log-likelihood of state_loglik (which adds back the constants)
    h = _history64(yd, exp_basis(L, 1.7), starts, stops)
    ll = state_loglik(data.y, h, params, spec)
    const = np.array([model_const(data.y, spec, params.noise_var)]).T
    np.testing.assert_allclose(q, np.sum(data.gamma * (ll - const)), rtol=1e-9)
    qp, qm = derivs(u + eps, 0)[0], derivs(u - eps, 0)[0]
    assert np.isclose(q1, (qp - qm) / (2 * eps), rtol=1e-5, atol=1e-8), (q1, (qp - qm) / 2 / eps)
    q1p, q1m = derivs(u + eps)[1], derivs(u - eps)[1]
    assert np.isclose(q2, (q1p - q1m) / (2 * eps), rtol=1e-5, atol=1e-8), (q2,)


def model_const(y, spec, var):
    from neurodyn.hmmglm.model import row_const

    return row_const(np.ascontiguousarray(y), spec.code, np.asarray(var, float))


def test_prior_choices_are_the_registered_priors():
    """--prior offers exactly the registered classes (params.py cannot import the numba
    registry, so this test ties the two lists)."""
    from neurodyn.hmmglm.params import Prior

    assert [p.value for p in Prior] == list(REGISTRY)


def test_prior_registry_a_new_prior_is_one_class():
    """fit_hmmglm finds a prior by name in the registry; nothing else compares prior names."""
    import dataclasses
    from typing import ClassVar

    from neurodyn.hmmglm.basis import HistorySpec
    from neurodyn.hmmglm.fit import fit_hmmglm
    from neurodyn.hmmglm.priors import prior_class, register
    from neurodyn.hmmglm.simulate import simulate_hmmglm

    @register
    @dataclasses.dataclass
    class StrongRidge(NoPrior):
        kind: ClassVar[str] = "strong-ridge"

        @classmethod
        def from_weights(cls, W, mask, **kw):
            return cls(l2=1e3)

    try:
        y, _ = simulate_hmmglm(2, 4, 1, 600, seed=0)
        T = y.shape[0]
        h = HistorySpec(3, 1.5, np.array([0]), np.array([T])).filter(y)
        kw = dict(restarts=1, max_iter=10, seed=0)
        a = fit_hmmglm(y, h, 2, prior="none", **kw)
        b = fit_hmmglm(y, h, 2, prior="strong-ridge", **kw)
        assert isinstance(b.prior, StrongRidge)
        assert np.abs(b.params.W).sum() < 0.2 * np.abs(a.params.W).sum()
    finally:
        REGISTRY.pop("strong-ridge")
    with pytest.raises(ValueError, match="none, gaussian, onehot"):
        prior_class("strong-ridge")
