"""Gaussian HMM states on EEG features (``states --features bandpower|tde``) and the
self-reporting model selection shared with ``factorize --rank auto``."""

from __future__ import annotations

import itertools
import json

import h5py
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.stats import multivariate_normal

from neurodyn.hmmglm.features import (
    bandpower_features,
    flat_fraction,
    parse_bands,
    tde_features,
    time_delay_embed,
)
from neurodyn.hmmglm.forward_backward import forward_loglik
from neurodyn.hmmglm.gaussian_hmm import (
    decode,
    emission_loglik,
    expand,
    fit_gaussian_hmm,
    heldout_loglik,
)
from neurodyn.hmmglm.gaussian_stage import scan_states
from neurodyn.hmmglm.simulate import simulate_oscillatory_states
from neurodyn.io.store import write_recordings
from neurodyn.recording import Recording
from neurodyn.selection import Selection, edge_warnings, one_se_choice

BANDS = "alpha=8-13,beta=13-30"


def accuracy(truth: np.ndarray, path: np.ndarray, K: int) -> float:
    """Agreement of two label sequences after the best one-to-one relabelling."""
    M = np.zeros((K, K))
    np.add.at(M, (truth, path), 1)
    r, c = linear_sum_assignment(-M)
    return M[r, c].sum() / truth.size


@pytest.fixture(scope="module")
def eeg():
    """60 s of 8-channel, 100 Hz EEG whose alpha / beta power switches among 3 states."""
    return simulate_oscillatory_states(3, 8, 60.0, 100.0, mean_dwell_s=1.0, seed=1)


@pytest.fixture(scope="module")
def eeg_file(tmp_path_factory, eeg):
    x, truth = eeg
    rec = Recording(x, [f"C{i}" for i in range(x.shape[1])], "eeg", fs=100.0, id="sim/eeg",
                    units="uV")
    p = tmp_path_factory.mktemp("eeg") / "eeg.h5"
    write_recordings(p, [rec], stage="test")
    return p


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_bandpower_hmm_recovers_planted_states(eeg, covariance):
    x, truth = eeg
    F = bandpower_features(x, 100.0, parse_bands(BANDS), 0.1)
    fit = fit_gaussian_hmm(F.X, 3, covariance=covariance, seed=0)
    _, path, _ = decode(fit.model, F.X, np.array([0]), np.array([len(F.X)]))
    mid = (F.rows[:, 0] + F.rows[:, 1]) // 2
    assert accuracy(truth["states"][mid], path, 3) >= 0.9
    # a 1-state model or a shuffled path would score about 1/3 to 1/2
    assert accuracy(truth["states"][mid], np.random.default_rng(0).permutation(path), 3) < 0.6


def test_emission_loglik_matches_scipy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    means = rng.normal(size=(2, 3))
    A = rng.normal(size=(2, 3, 3))
    covs = A @ A.transpose(0, 2, 1) + np.eye(3)
    ll = emission_loglik(X, means, covs)
    for k in range(2):
        np.testing.assert_allclose(ll[:, k], multivariate_normal(means[k], covs[k]).logpdf(X))
    var = np.abs(rng.normal(size=(2, 3))) + 0.5
    lld = emission_loglik(X, means, var)
    for k in range(2):
        np.testing.assert_allclose(lld[:, k], multivariate_normal(means[k], np.diag(var[k])).logpdf(X))


def _brute_loglik(ll: np.ndarray, pi0: np.ndarray, P: np.ndarray, d: int) -> float:
    """log p(y) summed over every state path: a run entered inside the data must last >= d
    samples before it may leave (the first run began before the data and is free; the last
    may be cut by the end of the data)."""
    T, K = ll.shape
    total = 0.0
    for z in itertools.product(range(K), repeat=T):
        p = pi0[z[0]] * np.exp(ll[0, z[0]])
        run, first = 1, True
        for t in range(1, T):
            if z[t] == z[t - 1]:
                p *= 1.0 if (not first and run < d) else P[z[t], z[t]]
                run += 1
            else:
                if not first and run < d:
                    p = 0.0
                    break
                p *= P[z[t - 1], z[t]]
                run, first = 1, False
            p *= np.exp(ll[t, z[t]])
        total += p
    return float(np.log(total))


def test_minimum_dwell_chain_is_exact():
    rng = np.random.default_rng(3)
    T, K, d = 7, 2, 3
    ll = rng.normal(size=(T, K))
    P = np.array([[0.7, 0.3], [0.4, 0.6]])
    pi0 = np.array([0.6, 0.4])
    pe, Pe = expand(pi0, P, d)
    got = forward_loglik(np.repeat(ll, d, axis=1), pe, Pe)[0]
    assert np.isclose(got, _brute_loglik(ll, pi0, P, d))
    # d = 1 is the plain HMM
    pe1, Pe1 = expand(pi0, P, 1)
    assert np.isclose(forward_loglik(ll, pe1, Pe1)[0], _brute_loglik(ll, pi0, P, 1))


def test_minimum_dwell_viterbi_runs(eeg):
    x, _ = eeg
    F = bandpower_features(x, 100.0, parse_bands(BANDS), 0.05)
    fit = fit_gaussian_hmm(F.X, 3, sticky=0.0, min_dwell=6, restarts=1, max_iter=20, seed=0)
    _, path, _ = decode(fit.model, F.X, np.array([0]), np.array([len(F.X)]))
    runs = np.diff(np.r_[0, np.flatnonzero(np.diff(path)) + 1, path.size])
    assert runs[1:-1].min() >= 6


def test_time_delay_embedding_layout():
    x = np.arange(20, dtype=float).reshape(10, 2)
    E = time_delay_embed(x, 2)
    assert E.shape == (6, 10)
    # row 0 is centred on sample 2; channel-major columns, lags -2..2
    np.testing.assert_array_equal(E[0, :5], x[0:5, 0])
    np.testing.assert_array_equal(E[0, 5:], x[0:5, 1])


def test_selection_rule_and_edge_warnings():
    v = np.array([2, 3, 4, 5])
    mean = np.array([1.0, 1.9, 2.0, 2.05])
    se = np.full(4, 0.1)
    k, why = one_se_choice(v, mean, se, True, "states")
    assert k == 4 and "within one standard error" in why
    sel = Selection("states", v, mean, se, "nats/sample", True, 5, "best")
    assert "largest candidate" in edge_warnings(sel, "--states-range")[0]
    sel = Selection("rank", v, mean, se, "relative error", False, 2, "best")
    assert "smallest candidate" in edge_warnings(sel, "--ranks")[0]
    assert edge_warnings(sel, "--ranks", lower_bound=2) == []


def test_no_switching_gives_negative_gain_warning():
    """Stationary Gaussian noise: extra states overfit, the held-out gain over 1 state is <= 0."""
    X = np.random.default_rng(0).normal(size=(600, 4))
    kw = dict(covariance="full", sticky=10.0, min_dwell=1, restarts=1, max_iter=30, tol=1e-5)
    sel = scan_states(X, np.array([0]), np.array([600]), [2, 3], 3, 0, kw, 1, None)
    assert sel.gain[sel.index] <= 0
    assert any("does not predict held-out data better than 1 state" in w for w in sel.warnings)
    assert sel.unit == "nats/sample"


def test_cli_states_auto_reports_itself(cli, tmp_path, eeg_file, monkeypatch):
    monkeypatch.setattr("neurodyn.progress.LOG_INTERVAL_S", 0.0)  # a log line per update
    out = tmp_path / "states.h5"
    r = cli("states", eeg_file, "--out", out, "--states", "auto", "--states-range", "2-3",
            "--bands", BANDS, "--restarts", "1", "--max-iter", "30")
    assert r.exit_code == 0, r.output
    text = r.stdout
    assert "held-out log-likelihood, 3-fold CV (nats/sample)" in text
    assert "chosen states = 3" in text and "<- chosen" in text
    assert "largest candidate" in text  # 3 planted states, the top of 2-3
    assert "mean dwell" in text
    # not a terminal: progress as log lines over (K x folds + final fits) x EM iterations
    progress = [x for x in r.stderr.splitlines() if x.startswith("states sim/eeg: ")]
    assert progress and "EM it)" in progress[0] and "ETA" in progress[0]
    assert progress[-1].startswith("states sim/eeg: 100%")
    with h5py.File(out, "r") as f:
        g = f["sim%2Feeg"]
        ms = g["model_selection"]
        assert ms.attrs["unit"] == "nats/sample" and ms.attrs["chosen"] == 3
        assert ms["scores"].shape == (2, 3) and np.all(ms["se"][()] > 0)
        assert any("largest candidate" in w for w in json.loads(ms.attrs["warnings"]))
        assert g.attrs["heldout_unit"] == "nats/sample" and g.attrs["heldout_gain"] > 0
        assert g["power_maps"].shape == (3, 8, 2) and g["spectra"].shape[:2] == (3, 8)
        assert g["posterior"].shape[0] == g["time"].shape[0] == 600
        assert 0.3 < g.attrs["mean_dwell_s"] < 3.0  # planted: 1 s
        # the state with raised alpha has positive alpha power in its map
        maps = g["power_maps"][()]
        assert maps.max() > 3.0 and maps.min() < -1.0


def test_tde_features_fit(eeg):
    x, truth = eeg
    F = tde_features(x[:1500], 100.0, 5, 8, parse_bands(BANDS))
    assert F.X.shape == (1490, 8) and F.power.shape == (1490, 8, 2)
    fit = fit_gaussian_hmm(F.X, 3, restarts=1, max_iter=30, seed=0)
    ll1 = heldout_loglik(fit_gaussian_hmm(F.X, 1).model, F.X, np.array([0]), np.array([1490]))
    assert heldout_loglik(fit.model, F.X, np.array([0]), np.array([1490])) > ll1


def test_flat_stretch_is_measured_and_floored(eeg):
    x, _ = eeg
    x = x.copy()
    x[-600:] = 0.0  # the last 6 s of 60 s: a disconnected end
    F = bandpower_features(x, 100.0, parse_bands(BANDS), 0.1)
    assert abs(flat_fraction(F.power) - 0.1) < 0.02
    assert flat_fraction(bandpower_features(x[:-600], 100.0, parse_bands(BANDS), 0.1).power) == 0
    assert np.isfinite(F.X).all() and np.abs(F.X).max() < 10  # floored, not log(0)


def test_cli_tde_embedding_span_in_seconds(cli, tmp_path, eeg_file, caplog):
    """--embed-span is in seconds (converted with the recording's 100 Hz rate); the former
    --embed in samples still works, hidden and deprecated; giving both is refused."""
    common = ("--features", "tde", "--states", "2", "--bands", BANDS, "--restarts", "1",
              "--max-iter", "5", "--pca", "4")

    def lags(out, *opts):
        r = cli("states", eeg_file, "--out", out, *common, *opts)
        assert r.exit_code == 0, r.output
        with h5py.File(out, "r") as f:
            return int(f["sim%2Feeg"].attrs["embed_lags"]), r.output

    assert lags(tmp_path / "a.h5", "--embed-span", "0.05")[0] == 5
    assert lags(tmp_path / "b.h5")[0] == 3  # default 0.028 s at 100 Hz
    assert lags(tmp_path / "c.h5", "--embed", "2")[0] == 2
    assert "--embed (in samples) is deprecated" in caplog.text and "use --embed-span" in caplog.text
    r = cli("states", eeg_file, "--out", tmp_path / "d.h5", *common, "--embed", "2",
            "--embed-span", "0.05")
    assert r.exit_code == 2 and "not both" in r.output
    assert "--embed-span" in cli("states", "--help").output


def test_non_brain_channels_are_left_out(cli, tmp_path, eeg, caplog):
    """An ECG channel (typed by the reader from its EDF label) is not modelled as EEG: the
    states file lists it as dropped and the maps cover the EEG channels only."""
    import pandas as pd

    caplog.set_level("INFO")
    x, _ = eeg
    ecg = np.sin(2 * np.pi * 1.2 * np.arange(x.shape[0]) / 100.0)[:, None] * 50.0
    names = [f"C{i}" for i in range(x.shape[1])] + ["ECG ECG"]
    info = pd.DataFrame({"channel": names, "type": ["eeg"] * x.shape[1] + ["ecg"]})
    rec = Recording(np.hstack([x, ecg]), names, "eeg", fs=100.0, id="sim/eeg", units="uV",
                    channel_info=info)
    src = tmp_path / "eeg_ecg.h5"
    write_recordings(src, [rec], stage="test")
    out = tmp_path / "s.h5"
    r = cli("-v", "states", src, "--out", out, "--states", "3", "--bands", BANDS, "--restarts",
            "1", "--max-iter", "10")
    assert r.exit_code == 0, r.output
    assert "1 non-brain channel(s) left out of the state model: ECG ECG (ecg)" in caplog.text
    assert "not modelled (not brain channels): ECG ECG" in r.stdout
    with h5py.File(out, "r") as f:
        g = f["sim%2Feeg"]
        assert [v.decode() if isinstance(v, bytes) else v for v in g["dropped"][()]] == ["ECG ECG"]
        assert len(g["labels"]) == 8 and g["power_maps"].shape == (3, 8, 2)
