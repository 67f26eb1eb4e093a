"""Tests of the bi-clustering stage: kernels against references, recovery, CLI, bad input."""

from __future__ import annotations

import itertools
import json

import h5py
import numpy as np
import pytest
from helpers import assert_not_blank, fit_bicluster_sim
from scipy.special import gammaln
from sklearn.metrics import adjusted_rand_score as ari

from neurodyn.bicluster import result as bicluster_result
from neurodyn.bicluster.clusters import (
    PartitionPrior,
    _marginal_loglik_loop,
    linear_predictor,
    marginal_loglik,
    obs_info,
    shift_info,
)
from neurodyn.bicluster.diagnostics import ess, ess_bulk, ess_tail, rhat
from neurodyn.bicluster.dispersion import crt_counts, softplus_rowsum
from neurodyn.bicluster.ffbs import (
    ffbs,
    ffbs_filter,
    ffbs_sample,
    kalman_smoother,
    slds_logpdf,
    slds_sample,
    state_loglik,
)
from neurodyn.bicluster.fit import check_counts
from neurodyn.bicluster.summaries import binder_loss, canonical_form, point_estimate
from neurodyn.errors import InputError


def _lgss(T=25, q=2, L=2, seed=0):
    rng = np.random.default_rng(seed)
    rot = 0.8 * np.eye(q)
    if q > 1:
        rot[0, 1], rot[1, 0] = -0.3, 0.3
    A = np.stack([0.9 * np.eye(q), rot])[:L]
    b = rng.normal(0, 0.3, (L, q))
    Q = np.stack([0.1 * np.eye(q) + 0.02, 0.2 * np.eye(q)])[:L]
    s = rng.integers(0, L, T)
    m0, V0 = rng.normal(size=q), np.eye(q)
    H = rng.normal(size=(T, 3, q))
    R = 0.5
    y = rng.normal(size=(T, 3))
    J = np.einsum("toi,toj->tij", H, H) / R
    h = np.einsum("toi,to->ti", H, y) / R
    return J, h, A, b, Q, s, m0, V0


def test_ffbs_moments_match_kalman_smoother():
    J, h, A, b, Q, s, m0, V0 = _lgss()
    T, q = h.shape
    ms, Ps = kalman_smoother(J, h, A, b, Q, s, m0, V0)
    rng = np.random.default_rng(1)
    n = 6000
    draws = np.empty((n, T, q))
    for k in range(n):
        draws[k], _, _ = ffbs(J, h, A, b, Q, s, m0, V0, rng.standard_normal((T, q)), np.zeros((T, q)), True)
    se = np.sqrt(np.einsum("tii->ti", Ps) / n)
    assert np.all(np.abs(draws.mean(0) - ms) < 5 * se)
    cov = np.einsum("nti,ntj->tij", draws - ms, draws - ms) / n
    assert np.allclose(cov, Ps, atol=0.08 * np.abs(Ps).max())
    # a wrong smoother (ignoring the observations) is far off
    assert np.abs(draws.mean(0) - kalman_smoother(0 * J, 0 * h, A, b, Q, s, m0, V0)[0]).max() > 0.3


@pytest.mark.parametrize("q", [2, 3])  # generic and specialised (q = 3) kernels
def test_ffbs_log_density_and_normaliser_exact(q):
    J, h, A, b, Q, s, m0, V0 = _lgss(T=5, q=q)
    T, q = h.shape
    ms, Ps = kalman_smoother(J, h, A, b, Q, s, m0, V0)
    x, logq, logz = ffbs(J, h, A, b, Q, s, m0, V0, np.random.default_rng(0).standard_normal((T, q)),
                         np.zeros((T, q)), True)
    # dense joint Gaussian posterior: prior precision from the dynamics plus observation blocks
    D = T * q
    # prior joint via sampling-free construction: x = F e with the dynamics unrolled
    F = np.zeros((D, D))
    mean = np.zeros(D)
    cur_m = m0
    blocks = [np.linalg.cholesky(V0)]
    for t in range(1, T):
        blocks.append(np.linalg.cholesky(Q[s[t]]))
    Phi = [np.eye(q)]
    for t in range(T):
        if t > 0:
            cur_m = b[s[t]] + A[s[t]] @ cur_m
        mean[t * q:(t + 1) * q] = cur_m
        for u in range(t + 1):
            M = np.eye(q)
            for v in range(u + 1, t + 1):
                M = A[s[v]] @ M
            F[t * q:(t + 1) * q, u * q:(u + 1) * q] = M @ blocks[u]
    del Phi
    C = F @ F.T
    Jb = np.zeros((D, D))
    hb = h.ravel()
    for t in range(T):
        Jb[t * q:(t + 1) * q, t * q:(t + 1) * q] = J[t]
    P = np.linalg.inv(np.linalg.inv(C) + Jb)
    mpost = P @ (np.linalg.solve(C, mean) + hb)
    assert np.allclose(mpost.reshape(T, q), ms, atol=1e-8)
    d = x.ravel() - mpost
    ref_logq = -0.5 * d @ np.linalg.solve(P, d) - 0.5 * np.linalg.slogdet(2 * np.pi * P)[1]
    assert logq == pytest.approx(ref_logq, abs=1e-6)
    # log ∫ N(x; mean, C) exp(h.x - x'Jx/2) dx
    ref_logz = (0.5 * mpost @ (np.linalg.inv(P) @ mpost) - 0.5 * mean @ np.linalg.solve(C, mean)
                + 0.5 * np.linalg.slogdet(P)[1] - 0.5 * np.linalg.slogdet(C)[1])
    assert logz == pytest.approx(ref_logz, abs=1e-6)
    # scoring mode returns the same density for the same path
    _, logq2, _ = ffbs(J, h, A, b, Q, s, m0, V0, np.zeros((T, q)), x, False)
    assert logq2 == pytest.approx(logq, abs=1e-9)
    # the prior density of the path: the unrolled joint Gaussian N(mean, C)
    dx = x.ravel() - mean
    ref_prior = -0.5 * dx @ np.linalg.solve(C, dx) - 0.5 * np.linalg.slogdet(2 * np.pi * C)[1]
    assert slds_logpdf(x, A, b, Q, s, m0, V0) == pytest.approx(ref_prior, abs=1e-6)


@pytest.mark.parametrize("N", [2, 6])  # per-pair loop (N <= 4) and matrix-product paths
def test_marginal_loglik_matches_dense_integral(N):
    rng = np.random.default_rng(3)
    T, q = 40, 3
    kap = rng.normal(0, 2, (N, T))
    om = rng.uniform(0.5, 3, (N, T))
    base = rng.normal(size=N)
    X = rng.normal(size=(2, T, q))
    m0 = rng.normal(size=(N, q))
    prec = np.array([1.0, 2.0, 0.5])
    M = marginal_loglik(kap, om, base, X, m0, prec)
    for i in range(N):
        for k in range(2):
            G = np.column_stack([np.ones(T), X[k, :, 1:]])
            a = base[i] + X[k, :, 0]
            S0 = np.diag(1 / prec)
            # ∫ N(th; m0, S0) exp(sum kap*psi - om*psi^2/2) dth, psi = a + G th
            P = np.linalg.inv(S0) + G.T @ (om[i][:, None] * G)
            hv = prec * m0[i] + G.T @ (kap[i] - om[i] * a)
            ref = (np.sum(kap[i] * a - 0.5 * om[i] * a * a) - 0.5 * m0[i] @ (prec * m0[i])
                   + 0.5 * hv @ np.linalg.solve(P, hv) - 0.5 * np.linalg.slogdet(S0)[1]
                   - 0.5 * np.linalg.slogdet(P)[1])
            assert M[i, k] == pytest.approx(ref, rel=1e-9, abs=1e-8)
    assert np.allclose(_marginal_loglik_loop(kap, om, base, X, m0, prec), M, rtol=1e-10, atol=1e-8)
    # obs_info reproduces the same quadratic form in X
    theta = rng.normal(size=(N, q))
    J, h, const = obs_info(kap, om, base, theta, np.arange(N))
    x = X[0]
    psi = base[:, None] + theta[:, :1] + x[:, 0][None] + theta[:, 1:] @ x[:, 1:].T
    direct = np.sum(kap * psi - 0.5 * om * psi**2)
    via = np.sum(h * x) - 0.5 * np.einsum("ti,tij,tj->", x, J, x) + const
    assert via == pytest.approx(direct, rel=1e-10)


def test_linear_predictor_and_softplus_match_numpy():
    rng = np.random.default_rng(6)
    N, T, q, K = 7, 40, 3, 3
    X = rng.normal(size=(K, T, q))
    z = rng.integers(0, K, N)
    theta, base = rng.normal(size=(N, q)), rng.normal(size=N)
    Xi = X[z]
    ref = (base + theta[:, 0])[:, None] + Xi[:, :, 0] + np.einsum("ntj,nj->nt", Xi[:, :, 1:], theta[:, 1:])
    psi = linear_predictor(X, z, theta, base)
    assert np.allclose(psi, ref, atol=1e-12)
    psi[0, :3] = [800.0, -800.0, 0.0]  # overflow-safe
    assert np.allclose(softplus_rowsum(psi), np.logaddexp(0.0, psi).sum(axis=1), rtol=1e-12)


def test_shift_info_matches_fresh_obs_info():
    rng = np.random.default_rng(4)
    N, T, q = 5, 30, 3
    kap, om = rng.normal(size=(N, T)), rng.uniform(0.2, 2, (N, T))
    base, theta = rng.normal(size=N), rng.normal(size=(N, q))
    J, h, c = obs_info(kap, om, base, theta, np.array([0, 2, 3]))
    J2, h2, c2 = shift_info(J, h, c, kap[4], om[4], base[4], theta[4], 1.0)  # add neuron 4
    J3, h3, c3 = obs_info(kap, om, base, theta, np.array([0, 2, 3, 4]))
    assert np.allclose(J2, J3) and np.allclose(h2, h3) and c2 == pytest.approx(c3)
    J4, h4, c4 = shift_info(J3, h3, c3, kap[2], om[2], base[2], theta[2], -1.0)  # remove 2
    J5, h5, c5 = obs_info(kap, om, base, theta, np.array([0, 3, 4]))
    assert np.allclose(J4, J5) and np.allclose(h4, h5) and c4 == pytest.approx(c5)
    assert not np.allclose(J2, J)  # inputs untouched, outputs differ


@pytest.mark.parametrize("q", [2, 3])
def test_ffbs_filter_then_sample_equals_ffbs(q):
    J, h, A, b, Q, s, m0, V0 = _lgss(T=30, q=q)
    T, q = h.shape
    noise = np.random.default_rng(1).standard_normal((T, q))
    x, logq, logz = ffbs(J, h, A, b, Q, s, m0, V0, noise, np.zeros((T, q)), True)
    lamf, etaf, logz2 = ffbs_filter(J, h, A, b, Q, s, m0, V0)
    x2, logq2 = ffbs_sample(lamf, etaf, A, b, Q, s, noise, noise[:0], True)
    assert np.array_equal(x, x2) and logq == logq2 and logz == logz2
    _, logq0, logz0 = ffbs(J, h, A, b, Q, s, m0, V0, noise, np.zeros((0, q)), False)
    assert logz0 == logz and logq0 == 0.0


def test_slds_sample_and_state_loglik_match_numpy():
    rng = np.random.default_rng(5)
    T, q, L, K = 50, 3, 2, 2
    A = rng.normal(0, 0.3, (K, L, q, q))
    b = rng.normal(size=(K, L, q))
    R = rng.normal(size=(K, L, q, q))
    Q = R @ R.transpose(0, 1, 3, 2) + 0.5 * np.eye(q)
    s = rng.integers(0, L, T)
    m0, V0 = rng.normal(size=q), np.eye(q) * 2.0
    noise = rng.standard_normal((T, q))
    x = slds_sample(A[0], b[0], Q[0], s, m0, V0, noise)
    ref = np.empty((T, q))
    ref[0] = m0 + np.linalg.cholesky(V0) @ noise[0]
    for t in range(1, T):
        ref[t] = b[0, s[t]] + A[0, s[t]] @ ref[t - 1] + np.linalg.cholesky(Q[0, s[t]]) @ noise[t]
    assert np.allclose(x, ref, atol=1e-10)
    X = np.stack([x, rng.normal(size=(T, q))])
    E = state_loglik(X, A, b, Q)
    refE = np.zeros((T, L))
    for k in range(K):
        for l in range(L):
            r = X[k, 1:] - b[k, l] - X[k, :-1] @ A[k, l].T
            P = np.linalg.inv(Q[k, l])
            refE[1:, l] += (-0.5 * np.einsum("ti,ij,tj->t", r, P, r)
                            - 0.5 * np.linalg.slogdet(2 * np.pi * Q[k, l])[1])
    assert np.allclose(E, refE, atol=1e-9)


def _set_partitions(n):
    if n == 0:
        yield []
        return
    for part in _set_partitions(n - 1):
        for k in range(len(part)):
            yield part[:k] + [part[k] + [n - 1]] + part[k + 1:]
        yield part + [[n - 1]]


@pytest.mark.parametrize("kind", ["mfm", "dp"])
def test_partition_prior_normalises(kind):
    n = 5
    pp = PartitionPrior(n, kind, mfm_gamma=1.0, geom_p=0.3, dp_alpha=1.5)
    logs = [pp.log_prob(np.array([len(b) for b in part], dtype=float)) for part in _set_partitions(n)]
    total = np.exp(logs).sum()
    if kind == "dp":  # DP EPPF: alpha^t prod Gamma(n_k) / (alpha)_n
        total /= np.exp(gammaln(1.5 + n) - gammaln(1.5))
    assert total == pytest.approx(1.0, rel=1e-6)


def test_crt_counts_mean():
    rng = np.random.default_rng(0)
    y = np.full((1, 4000), 7.0)
    r = np.array([3.0])
    tables = crt_counts(y, r, rng.random(int(y.sum())))[0] / y.shape[1]
    expect = sum(3.0 / (3.0 + c) for c in range(7))
    assert tables == pytest.approx(expect, rel=0.03)


def test_point_estimate_and_canonical_form():
    truth = np.repeat([0, 1, 2], 6)
    psm = (truth[:, None] == truth[None, :]).astype(float)
    rng = np.random.default_rng(0)
    noisy = np.clip(psm + rng.uniform(-0.25, 0.25, psm.shape), 0, 1)
    noisy = 0.5 * (noisy + noisy.T)
    np.fill_diagonal(noisy, 1)
    est = point_estimate(noisy)
    assert ari(truth, est) == 1.0
    assert binder_loss(est, noisy) < binder_loss(np.zeros(18, dtype=int), noisy)
    # canonical form keeps the linear predictor unchanged
    X = rng.normal(size=(2, 50, 3))
    theta = rng.normal(size=(6, 3))
    z = np.array([0, 0, 0, 1, 1, 1])

    def psi(X, th):
        Xi = X[z]
        return th[:, :1] + Xi[:, :, 0] + np.einsum("ntj,nj->nt", Xi[:, :, 1:], th[:, 1:])

    Xc, thc = canonical_form(X, theta, z)
    assert np.allclose(psi(X, theta), psi(Xc, thc))
    assert np.allclose(Xc.mean(axis=1), 0, atol=1e-12)
    for k in range(2):  # principal axes: uncorrelated, variance decreasing
        gram = Xc[k, :, 1:].T @ Xc[k, :, 1:]
        assert abs(gram[0, 1]) < 1e-9 * gram[0, 0] and gram[0, 0] >= gram[1, 1]
    # the accumulator's per-neuron moments are those of the canonical trajectories
    from neurodyn.bicluster.summaries import Accumulator

    acc = Accumulator(6, 50, 3, 2)
    X2 = rng.normal(size=(2, 50, 3))
    for XX in (X, X2):
        acc.add(z, np.zeros(50, dtype=np.int64), XX, theta, np.ones(6), 0.0, 2)
    per = [canonical_form(XX, theta, z)[0][z] for XX in (X, X2)]
    assert np.allclose(acc.lat_sum, per[0] + per[1])
    assert np.allclose(acc.lat_sq, per[0] ** 2 + per[1] ** 2)


def _diagnostic_cases():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(4, 301))  # odd length: ArviZ drops the middle draw when splitting
    ar = np.zeros((3, 400))
    for t in range(1, 400):
        ar[:, t] = 0.95 * ar[:, t - 1] + rng.normal(size=3)
    trend = iid + np.linspace(0, 2, 301)  # every chain drifts: only the split halves disagree
    scale = rng.normal(size=(4, 200)) * np.array([1, 1, 1, 4])[:, None]  # tail R-hat's case
    counts = rng.integers(3, 6, (4, 200)).astype(float)  # discrete, many ties (#states)
    counts[0] += 1
    return {"iid": iid, "ar": ar, "trend": trend, "scale": scale, "counts": counts}


def test_rhat_and_ess_equal_arviz():
    import arviz as az

    for name, x in _diagnostic_cases().items():
        assert rhat(x) == pytest.approx(float(az.rhat(x, method="rank")), rel=1e-10), name
        assert ess_bulk(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-10), name
        assert ess_tail(x) == pytest.approx(float(az.ess(x, method="tail")), rel=1e-10), name
        assert ess(x) == pytest.approx(float(az.ess(x, method="mean")), rel=1e-10), name


def test_rhat_flags_what_it_should():
    c = _diagnostic_cases()
    assert rhat(c["iid"]) < 1.01
    assert rhat(c["trend"]) > 1.1  # split chains see the trend
    assert rhat(c["scale"]) > 1.05  # the folded (tail) R-hat sees a chain with another scale
    assert rhat(c["counts"]) > 1.1
    assert ess_bulk(c["ar"]) < 100 < ess_bulk(c["iid"])
    stuck = np.repeat([[3.0], [4.0]], 50, axis=1)  # each chain constant, at different values
    assert rhat(stuck) == np.inf
    assert np.isnan(rhat(np.full((2, 50), 3.0)))


def test_unconverged_lists_summaries_with_large_rhat():
    from neurodyn.bicluster.diagnostics import rhat, unconverged

    rng = np.random.default_rng(0)
    apart = np.stack([rng.normal(0, 1, 400), rng.normal(3, 1, 400)])  # two chains, different means
    mixed = rng.normal(0, 1, (2, 400))
    diag = {"rhat_loglik": rhat(apart), "rhat_n_clusters": rhat(mixed), "rhat_n_states": float("nan"),
            "ess_bulk_loglik": 3.0, "rhat_x": float("inf")}
    assert unconverged(diag) == [f"loglik {diag['rhat_loglik']:.2f}", "x inf"]


@pytest.mark.parametrize(
    "bad, msg",
    [
        (lambda y: y.__setitem__((0, slice(None)), 0), "never spike"),
        (lambda y: y.__setitem__((1, 3), -1), "non-negative"),
        (lambda y: y.__setitem__((2, 5), 1.5), "integers"),
    ],
)
def test_bad_counts_raise(bad, msg):
    y = np.random.default_rng(0).poisson(2.0, (5, 50)).astype(float)
    bad(y)
    with pytest.raises(InputError, match=msg):
        check_counts(y)


def test_set_partitions_helper():
    assert sum(1 for _ in _set_partitions(4)) == 15  # Bell number
    assert len(list(itertools.islice(_set_partitions(3), 10))) == 5


def _small_counts(seed=0):
    from neurodyn.bicluster.simulate import simulate_bicluster

    rec, truth = simulate_bicluster(n_neurons=12, n_clusters=2, n_bins=200, segment=50, seed=seed)
    return rec, truth


@pytest.mark.slow  # two chains, draws export, figures, bad input
def test_cli_simulate_fit_figures_and_bad_input(cli, tmp_path, saved_figures):
    sim = tmp_path / "sim.h5"
    r = cli("simulate", "bicluster", "--out", sim, "--neurons", "12", "--clusters", "2", "--bins", "150",
            "--segment", "50")
    assert r.exit_code == 0, r.output
    out = tmp_path / "bc.h5"
    r = cli("bicluster", sim, "--out", out, "--iters", "40", "--burn-in", "20", "--thin", "2",
            "--chains", "2", "--jobs", "1", "--max-states", "4", "--seed", "3", "--anneal-every", "5",
            "--anneal-rungs", "10", "--export-draws", tmp_path / "draws.nc")
    assert r.exit_code == 0, r.output
    import arviz as az

    idata = az.from_netcdf(tmp_path / "draws.nc")
    with h5py.File(out, "r") as f:
        for name in ("loglik", "n_clusters", "n_states"):
            assert np.array_equal(idata.posterior[name].values, f[f"sim%2Fbicluster/traces/{name}"][()])
        assert idata.warmup_posterior["n_states"].shape == (2, 20)
        assert idata.posterior.attrs["rhat_loglik"] == f["sim%2Fbicluster/diagnostics"].attrs["rhat_loglik"]
    with h5py.File(out, "r") as f:
        assert f.attrs["stage"] == "bicluster" and f.attrs["complete"]
        assert json.loads(f.attrs["parameters"])["anneal_every"] == 5
        assert "sim%2Fbicluster" in f  # group named by io.layout.group_name of the id
    g = bicluster_result.read(out)["sim/bicluster"]
    assert g.neuron_clusters.shape == (12,)
    assert g.state_sequence.shape == (150,)
    assert g.neuron_similarity.shape == (12, 12)
    assert g.state_similarity.shape == (150, 150)
    assert g.traces["n_clusters"].shape == (2, 10)
    assert g.chain_final_clusters.shape == (2, 12)
    assert g.latent["mean"].shape[1:] == (150, 3)
    assert "rhat_n_clusters" in g.diagnostics
    assert 0.0 <= g.diagnostics["anneal_merge_acceptance"] <= 1.0
    psm = g.neuron_similarity
    assert np.allclose(np.diag(psm), 1.0) and np.allclose(psm, psm.T)
    from neurodyn.plots.bicluster import draw

    paths = draw(out, tmp_path / "fig")
    assert len(paths) == 4
    for p in paths:
        assert_not_blank(p)
    with h5py.File(out, "r") as f:
        g = f["sim%2Fbicluster"]
        traces = {k: g[f"traces/{k}"][()] for k in ("n_clusters", "n_states", "loglik")}
        rhat = g["diagnostics"].attrs["rhat_loglik"]
        psm, z = g["neuron_similarity"][()], g["neuron_clusters"][()]
    figs = {k.rsplit("_", 1)[1]: f for k, f in saved_figures.items()}
    assert sorted(figs) == ["latents", "similarity", "states", "traces"]
    panels = figs["traces"].axes  # one per quantity, one line per chain, R-hat written above
    assert [a.get_ylabel() for a in panels] == ["neuron clusters", "states", "log-likelihood (nats)"]
    for ax, arr in zip(panels, traces.values()):
        assert [list(ln.get_ydata()) for ln in ax.lines] == [list(c) for c in arr]
        assert ax.get_title(loc="left").startswith("R-hat")
    assert f"R-hat {rhat:.3f}" in panels[2].get_title(loc="left")
    order = np.argsort(z, kind="stable")
    assert np.allclose(figs["similarity"].axes[0].images[0].get_array(), psm[np.ix_(order, order)])
    for f in figs.values():  # every figure says in words what it shows, on which file
        cap = f.neurodyn_caption
        assert "sim/bicluster" in cap.words() and cap.data_line().startswith("Data: bc.h5")
    from neurodyn.plots.bicluster import _diag_text

    text = _diag_text({"rhat_loglik": 1.234, "ess_bulk_loglik": 45.2, "ess_tail_loglik": 30.0},
                      "loglik")
    assert text == "R-hat 1.234 (not mixed) | ESS bulk 45, tail 30"
    r = cli("bicluster", sim, "--out", tmp_path / "y.h5", "--iters", "5", "--burn-in", "1",
            "--export-draws", tmp_path / "no" / "d.nc")
    assert r.exit_code == 2 and "--export-draws" in r.output
    # bad input: a recording with negative and non-integer counts
    from neurodyn.io.store import read_recordings, write_recordings

    rec = read_recordings(sim)[0]
    y = rec.data.copy()
    y[3, 2] = 0.5
    bad = tmp_path / "bad.h5"
    write_recordings(bad, [rec.replace(traces=y)])
    r = cli("bicluster", bad, "--out", tmp_path / "x.h5", "--iters", "5", "--burn-in", "1")
    assert r.exit_code == 2 and "integers" in r.output
    y = rec.data.copy()
    y[:, 4] = 0
    write_recordings(bad, [rec.replace(traces=y)])
    r = cli("bicluster", bad, "--out", tmp_path / "x.h5", "--iters", "5", "--burn-in", "1")
    assert r.exit_code == 2 and "never spike" in r.output
    assert not (tmp_path / "x.h5").exists()




def test_recovery_published_setting_short_chain():
    """The published setting (30 neurons, 3 clusters, 500 bins): 150 sweeps recover the neuron
    and state partitions and the number of clusters (400-sweep chains on seeds 0-2 pass too,
    ~40 s each: dropped from the suite for time)."""
    truth, z, s, acc = fit_bicluster_sim(5, 150)
    assert ari(truth["clusters"], z) >= 0.95
    assert ari(truth["states"], s) >= 0.8
    assert np.bincount(acc.n_clusters).argmax() == 3


def test_replica_exchange_recovers_planted_partition():
    """Replica exchange (2 replicas per chain, b = 1 and 0.8) on the published setting: 80
    sweeps of the b = 1 replica recover the planted neuron and state partitions and the number
    of clusters (measured: ARI 1.0 and 0.98)."""
    truth, z, s, acc = fit_bicluster_sim(5, 80, temperatures=2)
    assert ari(truth["clusters"], z) >= 0.95
    assert ari(truth["states"], s) >= 0.8
    assert np.bincount(acc.n_clusters).argmax() == 3


@pytest.mark.slow
def test_split_merge_from_all_in_one_recovers_planted_partition():
    """From all neurons in one cluster, only split moves can create the planted clusters early:
    the trajectory-collapsed split-merge must be accepted and the chain reach the truth. (The
    all-separate start on the same seed is the next test: the two extremes agree.)"""
    truth, z_one, _, _ = fit_bicluster_sim(3, 150, init="one")
    assert ari(truth["clusters"], z_one) >= 0.95


def _partition_chain(y, kernel: str, sweeps: int, seed: int, temperatures: int = 1) -> np.ndarray:
    """(sweeps, 5) indicators of the 5 partitions of 3 neurons along one chain (N = 3, p = 1,
    one state) whose labels move by one kernel only: "gibbs" (collapsed Gibbs, algorithm 8),
    "single" (trajectory-collapsed single-neuron moves), "split-merge" or "anneal" (annealed
    split-merge, 8 rungs). ``temperatures`` > 1 runs that many replicas (b from 1 down to 0.02)
    with replica exchange and records the b = 1 one."""
    from neurodyn.bicluster import tempering
    from neurodyn.bicluster.model import Priors, SamplerConfig
    from neurodyn.bicluster.sampler import Kernel
    from neurodyn.bicluster.target import Model

    m = Model(y, SamplerConfig(latent_dim=1, max_states=1, warmup=0, anneal_rungs=8, scale_moves=0),
              Priors())  # the scale moves have their own test (ratio = target x Jacobian)
    k = Kernel(m, tempered_dispersion=True)
    k.annealer.split_prob = 0.5  # the default 0.1 mixes too slowly for a short test
    k.annealer.c0 = 0.4  # make the delayed-acceptance screen bite (0.24 similarity: 0.6 nats)
    rng = np.random.default_rng(seed)
    reps = tempering.Replicas(m, tempering.temperature_ladder(temperatures, 0.02), "one", rng)
    parts = [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (0, 1, 2)]
    sm = 5 if kernel == "split-merge" else 0
    out = np.zeros((sweeps, 5))
    for it in range(sweeps):
        reps.sweep(k, rng, it, label_gibbs=kernel == "gibbs", single_moves=kernel == "single",
                   split_merge=sm, anneal=kernel == "anneal")
        first: dict = {}
        z = reps.states[0].z
        out[it, parts.index(tuple(first.setdefault(v, len(first)) for v in z))] = 1.0
    return out


def _batch_se(ind: np.ndarray, batches: int = 20) -> np.ndarray:
    """Standard errors of the column means of a chain by batch means (autocorrelation-aware)."""
    n = ind.shape[0] // batches * batches
    means = ind[-n:].reshape(batches, -1, ind.shape[1]).mean(axis=1)
    return means.std(axis=0, ddof=1) / np.sqrt(batches)


@pytest.mark.parametrize("kernel, sweeps, temperatures", [
    pytest.param("single", 2500, 1, id="single"),
    pytest.param("split-merge", 2500, 1, id="split-merge"),
    pytest.param("gibbs", 2500, 4, id="replica-exchange"),
    pytest.param("anneal", 10000, 1, marks=pytest.mark.slow, id="anneal"),  # the longest
])
def test_label_kernels_leave_partition_posterior_invariant(kernel, sweeps, temperatures):
    """Exactness of the label kernels on a problem small enough that all 5 partitions of 3
    neurons carry posterior mass: a chain moving labels only by the single-neuron moves or only
    by split-merge must visit the partitions with the frequencies of a chain moving them only by
    collapsed label Gibbs (a different, independently derived kernel). The single-neuron moves
    failed this (TV 0.08, 15 sd) while they scored the reverse move and the partition prior
    without counting the moved neuron in its new cluster. Replica exchange (4 replicas, b down
    to 0.02, tempered Polya-Gamma draws and dispersion steps): the b = 1 replica must keep the
    posterior; with every exchange accepted instead of the Metropolis ratio it failed (TV 0.092
    against a tolerance of 0.043). The tolerance is twice the expected
    total variation of two runs of the same law, sqrt(2 / pi) * sum_k sd_k, with sd_k from
    batch means of both runs."""
    from neurodyn.bicluster.simulate import simulate_bicluster

    rec, _ = simulate_bicluster(n_neurons=3, n_clusters=2, n_bins=8, latent_dim=1, segment=8, seed=0)
    y = rec.data.T.astype(float)
    ref = _partition_chain(y, "gibbs", 2500, seed=1)[100:]
    sm = _partition_chain(y, kernel, sweeps, seed=2, temperatures=temperatures)[100:]
    p_ref, p_sm = ref.mean(axis=0), sm.mean(axis=0)
    assert p_ref.min() > 0.08  # every partition has non-negligible mass
    tol = np.sqrt(2 / np.pi) * np.sum(np.sqrt(_batch_se(ref) ** 2 + _batch_se(sm) ** 2))
    tv = 0.5 * np.abs(p_ref - p_sm).sum()
    assert tol < 0.1, f"runs too short to test anything (tolerance {tol:.3f})"
    assert tv < tol, f"total variation {tv:.3f} >= {tol:.3f}: {p_ref.round(3)} vs {p_sm.round(3)}"


def test_similarity_grid_bounds_state_similarity_memory():
    from neurodyn.bicluster.model import Priors, SamplerConfig
    from neurodyn.bicluster.summaries import Accumulator, expand_grid, similarity_grid

    g = similarity_grid(10, 4)
    assert g.tolist() == [0, 3, 6, 9]
    assert expand_grid(np.array([5, 6, 7, 8]), g, 10).tolist() == [5, 5, 5, 6, 6, 6, 7, 7, 7, 8]
    assert similarity_grid(7, 2000).tolist() == list(range(7))
    acc = Accumulator(3, 99_748, 3, 10, 2000)  # the full sample recording: was (T, T) = 37 GiB
    assert acc.state_co.shape == (1995, 1995)  # every 50th bin
    # end to end: a 150-bin fit summarised on a 50-bin grid
    from neurodyn.bicluster.fit import fit
    from neurodyn.bicluster.simulate import simulate_bicluster

    rec, _ = simulate_bicluster(n_neurons=6, n_clusters=2, n_bins=150, segment=50, seed=1)
    cfg = SamplerConfig(iters=12, burn_in=6, thin=1, warmup=3, max_similarity_bins=50)
    res = fit(rec.data.T.astype(float), cfg, Priors(), seed=0)
    assert res["state_similarity"].shape == (50, 50)
    assert res["state_sequence"].shape == (150,)
    assert np.array_equal(res["state_sequence"][res["state_similarity_bins"]],
                          point_estimate(res["state_similarity"].astype(float)))


def test_explosive_prior_dynamics_never_leave_the_box():
    """Real-data failure mode: with a large state noise Q the prior dynamics of auxiliary clusters
    are explosive over many bins; such draws overflowed and killed the chain (SVD did not
    converge). The sampler's target includes the box |X| <= X_MAX: no trajectory leaves it."""
    from neurodyn.bicluster.ffbs import slds_sample
    from neurodyn.bicluster.model import X_MAX, Priors, SamplerConfig
    from neurodyn.bicluster.pg import draw_omega, kappa
    from neurodyn.bicluster.sampler import Kernel
    from neurodyn.bicluster.simulate import simulate_bicluster
    from neurodyn.bicluster.states import sample_ab_prior
    from neurodyn.bicluster.target import Model

    rec, _ = simulate_bicluster(n_neurons=8, n_clusters=2, n_bins=400, segment=100, seed=2)
    rng = np.random.default_rng(0)
    m = Model(rec.data.T.astype(float), SamplerConfig(max_states=3), Priors())
    k = Kernel(m)
    st = m.init_state("one", rng)
    st.Q = np.stack([4.0 * np.eye(m.q)] * m.L)
    st.dyn = [sample_ab_prior(st.Q, m.pri.k0, rng) for _ in st.xs]
    r2 = np.random.default_rng(1)
    A, b = sample_ab_prior(st.Q, m.pri.k0, r2)
    prior = [slds_sample(A, b, st.Q, st.s, m.x_m0, m.x_V0, r2.standard_normal((m.T, m.q)))
             for _ in range(5)]
    assert max(np.abs(x).max() for x in prior) > X_MAX  # the scenario is real: prior draws explode
    psi = m.psi(st)
    with np.errstate(all="ignore"):
        for _ in range(6):
            om, kap = draw_omega(m.y, st.r, psi, rng), kappa(m.y, st.r)
            for move in (k.trajectories, k.label_gibbs, k.single, k.split_merge):
                move.step(st, kap, om, rng)
            assert all(np.isfinite(x).all() and np.abs(x).max() <= X_MAX for x in st.xs)
            psi = m.psi(st)
            assert np.isfinite(psi).all()


def test_log_evidence_matches_prior_importance_sampling():
    """Thermodynamic integration over tempered sweeps (labels fixed) against a direct estimate of
    log p(y | z, r) = log E_prior[p(y | psi, r)] from 40,000 draws of every unknown from its prior
    on a problem small enough for that (2 neurons, 6 bins, p = 1, one state). Leaving kappa
    untempered gives -1938 nats and leaving omega untempered -31.9, against -27.5."""
    from scipy.special import gammaln, logsumexp

    from neurodyn.bicluster.evidence import log_evidence
    from neurodyn.bicluster.ffbs import slds_sample
    from neurodyn.bicluster.model import Priors, SamplerConfig
    from neurodyn.bicluster.simulate import simulate_bicluster
    from neurodyn.bicluster.states import sample_ab_prior, sample_q_prior
    from neurodyn.bicluster.target import Model

    rec, _ = simulate_bicluster(n_neurons=2, n_clusters=1, n_bins=6, latent_dim=1, segment=6, seed=1)
    y = rec.data.T.astype(float)
    cfg, pri, r = SamplerConfig(latent_dim=1, max_states=1), Priors(), 10.0
    m = Model(y, cfg, pri)
    rng = np.random.default_rng(0)
    s = np.zeros(m.T, dtype=np.int64)
    n = 40_000
    ll = np.empty(n)
    for k in range(n):
        Q = sample_q_prior(m.q, 1, m.psi0, m.nu0, rng)
        A, b = sample_ab_prior(Q, pri.k0, rng)
        X = slds_sample(A, b, Q, s, m.x_m0, m.x_V0, rng.standard_normal((m.T, m.q)))
        th = m.m0 + rng.standard_normal((m.N, m.q)) / np.sqrt(m.prec)
        psi = th[:, :1] + X[:, 0][None] + th[:, 1:] @ X[:, 1:].T
        ll[k] = np.sum(gammaln(y + r) - gammaln(r) - m.const - r * np.logaddexp(0, psi)
                       - y * np.logaddexp(0, -psi))
    direct = logsumexp(ll) - np.log(n)
    w = np.exp(ll - ll.max())
    assert w.sum() ** 2 / (w**2).sum() > 500  # the direct estimate is itself precise
    ti = log_evidence(y, np.zeros(2, dtype=int), cfg, pri, seed=0, r=r, rungs=30, sweeps=60, discard=10)
    assert ti["se"] < 0.3
    assert abs(ti["log_evidence"] - direct) < 0.6, (ti["log_evidence"], direct)


def test_anneal_ladder_is_monotone_and_keeps_polya_gamma_shapes_drawable():
    """The annealing ladder runs from 0 to 1 and rises; with a small dispersion r its interior
    rungs stay where every tempered Polya-Gamma shape g (y + r) is above the sampler's floor."""
    from neurodyn.bicluster.anneal import PG_MIN_SHAPE, ladder
    from neurodyn.bicluster.model import Priors, SamplerConfig
    from neurodyn.bicluster.sampler import Kernel
    from neurodyn.bicluster.target import Model

    g = ladder(200, SamplerConfig().anneal_sharpness)
    assert g[0] == 0.0 and g[-1] == 1.0 and np.all(np.diff(g) > 0)
    assert g[1] < 1e-3 and 1 - g[-2] < 1e-3  # dense at both ends
    y = np.random.default_rng(0).poisson(2.0, (4, 50)).astype(float)
    m = Model(y, SamplerConfig(anneal_rungs=200), Priors())
    r = np.full(4, 0.05)
    gr = Kernel(m).annealer._ladder(r)
    assert np.all(np.diff(gr) >= 0) and gr[0] == 0.0 and gr[-1] == 1.0
    inner = gr[1:-1]
    assert np.all(inner * r.min() >= PG_MIN_SHAPE * (1 - 1e-9))
    assert np.all((1 - inner) * r.min() >= PG_MIN_SHAPE * (1 - 1e-9))


def test_state_evidence_is_the_mniw_marginal():
    """log ML of a state = log p(Y | W, Q) + log p(W, Q) - log p(W, Q | Y) at any (W, Q), up to
    the constant (n K q / 2) log(pi) that the sampler drops (its sum over states is fixed)."""
    from scipy.stats import invwishart, multivariate_normal

    from neurodyn.bicluster.relabel import _bin_add, state_log_evidence
    from neurodyn.bicluster.states import mn_logpdf, regression_stats

    rng = np.random.default_rng(0)
    K, T, q, k0, psi0 = 2, 9, 2, 1.5, 0.3
    nu0 = q + 3.0
    X = rng.normal(size=(K, T, q)).cumsum(axis=1) * 0.5
    mask = np.zeros(T, bool)
    mask[[1, 2, 4, 5, 8]] = True
    UU, UY, YY = np.zeros((K, q + 1, q + 1)), np.zeros((K, q + 1, q)), np.zeros((K, q, q))
    for t in np.flatnonzero(mask):
        _bin_add(X, t, 1.0, UU, UY, YY)
    n = int(mask.sum())
    ev = state_log_evidence(UU, UY, YY, float(n), k0, psi0, nu0)
    stats = [regression_stats(X[k], mask, k0) for k in range(K)]
    Psi = psi0 * np.eye(q) + sum(st[2] for st in stats)
    Q = invwishart.rvs(df=nu0 + K * n, scale=Psi, random_state=1)
    idx = np.flatnonzero(mask)
    direct = invwishart.logpdf(Q, df=nu0, scale=psi0 * np.eye(q)) - invwishart.logpdf(
        Q, df=nu0 + K * n, scale=Psi)
    for k, (Mn, Kn, _, _) in enumerate(stats):
        W = Mn + 0.1 * rng.normal(size=Mn.shape)
        resid = X[k, idx] - np.c_[X[k, idx - 1], np.ones(n)] @ W.T
        direct += (multivariate_normal(np.zeros(q), Q).logpdf(resid).sum()
                   + mn_logpdf(W, np.zeros_like(W), Q, k0 * np.eye(q + 1)) - mn_logpdf(W, Mn, Q, Kn))
    assert ev == pytest.approx(direct + 0.5 * n * K * q * np.log(np.pi), abs=1e-8)


@pytest.mark.parametrize("runs", [True, False])
def test_state_run_relabelling_leaves_collapsed_posterior_invariant(runs):
    """Exact draws of p(s | X, beta) (all 3^5 sequences enumerated) stay exact draws after the
    run-relabelling move (and its single-bin form). In the run move, leaving out the
    transition term gave TV 0.11, allowing the neighbours' labels 0.44 (against the tolerance
    of about 0.06)."""
    from neurodyn.bicluster.relabel import collapsed_log_target, relabel_runs

    rng = np.random.default_rng(0)
    K, T, q, L = 1, 5, 2, 3
    X = rng.normal(size=(K, T, q)).cumsum(axis=1) * 0.5
    beta, args = np.array([0.5, 0.3, 0.2]), (1.0, 2.0, 1.0, 0.3, q + 3.0)
    seqs = np.array(list(itertools.product(range(L), repeat=T)))
    logp = np.array([collapsed_log_target(X, s, beta, *args) for s in seqs])
    p = np.exp(logp - logp.max())
    p /= p.sum()
    code = L ** np.arange(T)[::-1]
    n = 8000
    after, moved = np.empty(n, dtype=np.int64), 0
    for m, i in enumerate(rng.choice(len(seqs), n, p=p)):
        s = seqs[i].copy()
        moved += relabel_runs(X, s, beta, *args, rng.integers(0, T, 2), rng.random(2), runs) > 0
        after[m] = s @ code
    tv = 0.5 * np.abs(np.bincount(after, minlength=len(seqs)) / n - p).sum()
    ref = [0.5 * np.abs(np.bincount(rng.choice(len(seqs), n, p=p), minlength=len(seqs)) / n - p).sum()
           for _ in range(5)]
    assert moved > 0.3 * n
    assert tv < 1.4 * max(ref), (tv, ref)


def test_state_split_merge_leaves_collapsed_posterior_invariant():
    """Exact draws of p(s | X, beta) (all 4^5 sequences enumerated) stay exact draws after ten
    collapsed state split-merge proposals: the joint law (total variation) and the law of the
    number of used states, which the move changes (z-scores against the exact marginal).
    Leaving out the split's allocation probability gave TV 0.155 (limit ~0.11) and z up to
    20 on that marginal."""
    from neurodyn.bicluster.relabel import collapsed_log_target, split_merge_states

    rng = np.random.default_rng(1)
    K, T, q, L = 1, 5, 2, 4
    X = rng.normal(size=(K, T, q)).cumsum(axis=1) * 0.5
    beta, args = np.array([0.4, 0.3, 0.2, 0.1]), (1.0, 0.5, 1.0, 0.3, q + 3.0)
    seqs = np.array(list(itertools.product(range(L), repeat=T)))
    logp = np.array([collapsed_log_target(X, s, beta, *args) for s in seqs])
    p = np.exp(logp - logp.max())
    p /= p.sum()
    code = L ** np.arange(T)[::-1]
    n = 8000
    after, acc = np.empty(n, dtype=np.int64), np.zeros(2)
    for m, i in enumerate(rng.choice(len(seqs), n, p=p)):
        s = seqs[i].copy()
        for _ in range(10):
            split, ok = split_merge_states(X, s, beta, *args, rng)
            acc[int(split)] += ok
        after[m] = s @ code
    tv = 0.5 * np.abs(np.bincount(after, minlength=len(seqs)) / n - p).sum()
    ref = [0.5 * np.abs(np.bincount(rng.choice(len(seqs), n, p=p), minlength=len(seqs)) / n - p).sum()
           for _ in range(5)]
    assert acc.min() > 0.05 * n, acc  # both splits and merges are accepted
    assert tv < 1.4 * max(ref), (tv, ref)
    used = np.array([np.unique(s).size for s in seqs])
    p_used = np.bincount(used, weights=p, minlength=L + 1)[1:]
    f_used = np.bincount(used[after], minlength=L + 1)[1:] / n
    z = (f_used - p_used) / np.sqrt(p_used * (1 - p_used) / n)
    assert np.abs(z).max() < 3.5, z


def test_scale_moves_accept_with_target_ratio_times_numerical_jacobian():
    """Every scale / location / shear / dispersion move: its log acceptance ratio equals the
    brute-force joint log density (exact NB likelihood, priors, dynamics evidence) of the
    proposed state minus the current one, plus log |det| of the map's Jacobian computed by
    finite differences of the implemented map (the maps are affine)."""
    from neurodyn.bicluster.model import Priors, SamplerConfig
    from neurodyn.bicluster.relabel import dynamics_log_evidence
    from neurodyn.bicluster.sampler import Kernel
    from neurodyn.bicluster.target import Model

    rng = np.random.default_rng(0)
    N, T = 3, 7
    y = rng.poisson(3.0, (N, T)).astype(float)
    m = Model(y, SamplerConfig(latent_dim=2, max_states=2), Priors())
    scaler = Kernel(m).scaler
    st = m.init_state("one", rng)
    st.s = rng.integers(0, 2, T)
    st.theta = rng.normal(size=st.theta.shape)
    st.r = rng.uniform(2, 8, N)
    X = rng.normal(size=(1, T, m.q))
    mem = np.arange(N)
    p = m.pri

    def log_joint(X, theta, r):
        psi = linear_predictor(X, st.z, theta, m.off)
        ll = np.sum(gammaln(y + r[:, None]) - gammaln(r)[:, None] - r[:, None] * np.logaddexp(0, psi)
                    - y * np.logaddexp(0, -psi))
        d = theta - m.m0
        return (ll - 0.5 * np.sum(m.prec * d * d) + np.sum((p.r_shape - 1) * np.log(r) - p.r_rate * r)
                - 0.5 * np.sum(X[:, 0] ** 2) / p.v0
                + dynamics_log_evidence(X, st.s, m.L, p.k0, m.psi0, m.nu0))

    def flat(X, theta, r):
        return np.concatenate([X.ravel(), theta.ravel(), r])

    e = 0.3
    for kind in scaler.kinds():

        def move(v, kind=kind):
            Xv = v[:X.size].reshape(X.shape)
            st.theta = v[X.size:X.size + st.theta.size].reshape(st.theta.shape)
            evv = dynamics_log_evidence(Xv, st.s, m.L, p.k0, m.psi0, m.nu0)
            log_r, x_new, th_new, _ = scaler.log_ratio(Xv.copy(), 0, mem, kind, e, st, evv)
            return log_r, flat(x_new[None], th_new, v[-N:])  # r is left alone

        v0 = flat(X, st.theta, st.r)
        theta0 = st.theta.copy()
        log_r, v1 = move(v0)
        jac = np.stack([(move(v0 + 1e-6 * u)[1] - v1) / 1e-6 for u in np.eye(v0.size)], axis=1)
        new = log_joint(v1[:X.size].reshape(X.shape), v1[X.size:-N].reshape(theta0.shape), st.r)
        expect = new - log_joint(X, theta0, st.r) + np.linalg.slogdet(jac)[1]
        assert log_r == pytest.approx(expect, abs=1e-4), kind
        st.theta = theta0
    for i in range(N):  # dispersion: neuron i alone
        e = np.zeros(N)
        e[i] = 0.4
        log_r = scaler.dispersion_log_ratio(X, st, e)[i]
        th1, r1 = st.theta.copy(), st.r * np.exp(e)
        th1[i, 0] -= e[i]
        # map (r_i, d_i) -> (a r_i, d_i - e): log |det J| = e
        expect = log_joint(X, th1, r1) - log_joint(X, st.theta, st.r) + e[i]
        assert log_r == pytest.approx(expect, abs=1e-6)


def test_until_converged_stops_all_chains_together_and_says_why():
    """--until-converged: chains stop after the same number of sweeps, early, and the output
    names the rule that ended the run (targets met; time budget). Chains interleaved in this
    process (jobs=1); :func:`test_parallel_chains_equal_serial_ones` runs the parallel path."""
    jobs = 1
    from neurodyn.bicluster.fit import fit
    from neurodyn.bicluster.model import Priors, SamplerConfig, Until

    rec, _ = _small_counts()
    y = rec.data.T.astype(float)[:, :80]
    cfg = SamplerConfig(iters=2000, burn_in=5, thin=1, warmup=2, max_states=3)
    easy = Until(rhat=10.0, ess=1.0, seconds=600.0, every=0.0)
    res = fit(y, cfg, Priors(), seed=1, chains=2, jobs=jobs, until=easy)
    d = res["diagnostics"]
    assert d["stopped_by"] == "converged"
    n = res["traces"]["loglik"].shape[1]
    assert 20 <= n < 200 and res["traces"]["n_states_all"].shape == (2, d["sweeps_per_chain"])
    res = fit(y, cfg, Priors(), seed=1, chains=2, jobs=jobs,
              until=Until(rhat=1.0001, ess=1e9, seconds=0.0, every=0.0))
    assert res["diagnostics"]["stopped_by"] == "time budget"
    assert res["diagnostics"]["sweeps_per_chain"] < 2000


def test_parallel_chains_equal_serial_ones():
    """Chains in worker processes (a fork server: safe after this test session's numba and BLAS
    threads ran) draw what the serial chains draw, and --until-converged stops them."""
    from neurodyn.bicluster.fit import fit
    from neurodyn.bicluster.model import Priors, SamplerConfig, Until

    rec, _ = _small_counts()
    y = rec.data.T.astype(float)[:, :60]
    cfg = SamplerConfig(iters=2000, burn_in=2, thin=1, warmup=2, max_states=3)
    until = Until(rhat=10.0, ess=1.0, seconds=600.0, every=0.0)
    par = fit(y, cfg, Priors(), seed=4, chains=2, jobs=2, until=until)
    ser = fit(y, cfg, Priors(), seed=4, chains=2, jobs=1, until=until)
    assert par["diagnostics"]["stopped_by"] == "converged"
    assert par["diagnostics"]["sweeps_per_chain"] < 2000
    for name in ("n_states_all", "loglik"):  # the chains stop a few sweeps apart: common prefix
        a, b = par["traces"][name], ser["traces"][name]
        n = min(a.shape[1], b.shape[1])
        assert n >= 20 or name == "loglik"
        np.testing.assert_array_equal(a[:, :n], b[:, :n])


def test_noise_scale_move_ratio_and_invariance():
    """Collapsed scale move of Q_l: (1) its prior ratio equals inverse-Wishart x matrix-normal
    log densities (scipy) plus the log Jacobian by finite differences; (2) alternated with FFBS
    of the trajectories it leaves the same distribution of Q as the exact Gibbs pair
    X | Q (FFBS) and Q | X, A, b (inverse-Wishart); a wrong ratio shifts the moments."""
    from scipy.stats import invwishart

    from neurodyn.bicluster.model import Priors, SamplerConfig
    from neurodyn.bicluster.noise import NoiseScale, log_scale_ratio
    from neurodyn.bicluster.states import _iw_draw, mn_logpdf
    from neurodyn.bicluster.target import Model

    rng = np.random.default_rng(1)
    q, k0, psi0, nu0 = 2, 1.0, 0.1, 6.0
    Q = np.array([[0.3, 0.1], [0.1, 0.2]])
    ws = [rng.normal(size=(q, q + 1)) * 0.3 for _ in range(2)]
    c = 1.7

    def log_prior(Qm):
        return (invwishart(df=nu0, scale=psi0 * np.eye(q)).logpdf(Qm)
                + sum(mn_logpdf(W, np.zeros_like(W), Qm, k0 * np.eye(q + 1)) for W in ws))

    iu = np.triu_indices(q)

    def vech_map(v, c=c):
        M = np.zeros((q, q))
        M[iu] = v
        M = M + np.triu(M, 1).T
        return (c * M)[iu]

    v0 = Q[iu]
    jac = np.stack([(vech_map(v0 + 1e-6 * u) - vech_map(v0)) / 1e-6 for u in np.eye(v0.size)], 1)
    expect = log_prior(c * Q) - log_prior(Q) + np.linalg.slogdet(jac)[1]
    assert log_scale_ratio(Q, ws, c, psi0, nu0, k0) == pytest.approx(expect, abs=1e-6)

    # (2) invariance on a small problem: 2 neurons x 40 bins, one cluster, two fixed states
    N, T = 2, 40
    m = Model(rng.poisson(2.0, (N, T)).astype(float), SamplerConfig(latent_dim=1, max_states=2),
              Priors(q_mean=0.2, nu0_extra=3.0))
    st = m.init_state("one", rng)
    st.s = np.repeat([0, 1, 0, 1], 10)
    st.theta = rng.normal(size=st.theta.shape) * 0.5
    kap, om = 3.0 * rng.normal(size=(N, T)), rng.uniform(2.0, 6.0, (N, T))  # informative
    A = np.stack([0.5 * np.eye(q), -0.3 * np.eye(q)])
    st.dyn = [(A, np.array([[0.1, 0.0], [0.0, -0.2]]))]
    st.Q = np.stack([0.2 * np.eye(q), 0.2 * np.eye(q)])
    info = obs_info(kap, om, m.off, st.theta, np.arange(N))
    move = NoiseScale(m, sd=0.5, rounds=4)  # several: a wrong ratio drifts further

    def draw_x():
        st.xs = [m.info_pass(info, st.dyn[0], st.Q, st.s, rng, True)[0]]

    def gibbs_q():
        X, (A, b) = st.xs[0], st.dyn[0]
        for l in range(2):
            t = np.flatnonzero(st.s[1:] == l) + 1
            e = X[t] - X[t - 1] @ A[l].T - b[l]
            W = np.column_stack([A[l], b[l]])
            st.Q[l] = _iw_draw(m.psi0 * np.eye(q) + k0 * W @ W.T + e.T @ e, m.nu0 + q + 1 + t.size,
                               rng)

    def run(with_move, n=2000):
        """Q recorded after the move (or after the reference's extra Gibbs pair): a move that
        breaks the target's invariance leaves it off there."""
        out = []
        draw_x()
        for _ in range(n):
            gibbs_q()
            draw_x()
            if with_move:
                move.step(st, kap, om, rng)
            else:
                gibbs_q()
            out.append([np.log(np.trace(st.Q[0])), np.log(np.trace(st.Q[1])), st.Q[0, 0, 1]])
            draw_x()
        return np.array(out)[200:]

    ref = run(False)
    new = run(True)
    assert 0.3 < st.stats["noise_scale_acc"] / st.stats["noise_scale_prop"] < 0.95
    def se2(a, n_batches=20):  # squared standard error of the mean by batch means
        a = a[: len(a) // n_batches * n_batches].reshape(n_batches, -1, a.shape[1]).mean(1)
        return a.var(0, ddof=1) / n_batches

    se = np.sqrt(se2(ref) + se2(new))
    assert np.all(np.abs(ref.mean(0) - new.mean(0)) < 4 * se), (ref.mean(0), new.mean(0), se)

