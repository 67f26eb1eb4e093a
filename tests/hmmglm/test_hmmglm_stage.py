"""The ``states`` stage, its CLI, ``simulate hmmglm``, figures and bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from helpers import assert_not_blank, one_line_error

from neurodyn.errors import InputError
from neurodyn.hmmglm.basis import exp_basis
from neurodyn.hmmglm.recordings import to_recording
from neurodyn.hmmglm.simulate import simulate_hmmglm
from neurodyn.hmmglm.stage import run
from neurodyn.io.store import read_recordings, write_recordings
from neurodyn.params import ParamError
from neurodyn.recording import Recording

FAST = dict(restarts=1, max_iter=15, mstep_iter=10)


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("hmm") / "sim.h5"
    y, truth = simulate_hmmglm(2, 6, 4, 500, seed=2, strength=(0.5, 0.9))
    write_recordings(p, [to_recording(y, truth, seq_len=500)], stage="simulate-hmmglm",
                     extra={"ground_truth": truth})
    return p


def test_cli_simulate_states_and_figures(cli, tmp_path, sim_file, saved_figures):
    out = tmp_path / "states.h5"
    r = cli("states", sim_file, "--out", out, "--states", "2", "--prior", "onehot",
            "--restarts", "1", "--max-iter", "15", "--mstep-iter", "10")
    assert r.exit_code == 0, r.output
    with h5py.File(out, "r") as f:
        assert f.attrs["stage"] == "states"
        g = f["hmmglm%2Fsim"]
        post = g["posterior"][()]
        assert post.shape == (2000, 2) and np.allclose(post.sum(1), 1, atol=1e-4)
        assert g["weights"].shape == (2, 6, 6) and g["adjacency_prob"].shape == (2, 6, 6, 3)
        assert set(np.unique(g["adjacency"][()])) <= {-1, 0, 1}
        assert np.isfinite(g.attrs["heldout_score"])
        assert g.attrs["heldout_score"] > 0.0
        np.testing.assert_array_equal(g["sequence_starts"][()], [0, 500, 1000, 1500])
        # Viterbi path agrees with the true states up to relabelling
        vit = g["viterbi"][()]
    truth = h5py.File(sim_file, "r")["ground_truth/states"][()]
    agree = max(np.mean(vit == truth), np.mean(vit == 1 - truth))
    assert agree > 0.8  # plumbing check on 2,000 bins; recovery is tested elsewhere
    from neurodyn.plots.states import draw
    paths = draw(out, tmp_path / "fig")
    assert len(paths) == 4
    for p in paths:
        assert_not_blank(p)
    figs = {k.split("_")[1]: f for k, f in saved_figures.items()}  # timeline, weights, prior, trace
    assert sorted(figs) == ["prior", "timeline", "trace", "weights"]
    with h5py.File(out, "r") as f:
        g = f["hmmglm%2Fsim"]
        W, trace = g["weights"][()], g["loglik_trace"][()]
    post_ax = figs["timeline"].axes[0]
    assert len(post_ax.collections) == 2 and post_ax.get_ylabel() == "p(state)"  # one band per state
    raster = figs["timeline"].axes[1].images[0].get_array()[0]  # the Viterbi path, subsampled
    assert set(np.unique(raster)) == set(np.unique(vit))
    shown = [a.images[0].get_array() for a in figs["weights"].axes if a.images]
    assert len(shown) == 2 and all(np.allclose(s, w) for s, w in zip(shown, W))
    [line] = figs["trace"].axes[0].lines
    assert np.allclose(line.get_ydata(), trace)


def test_simulate_cli_writes_ground_truth(cli, tmp_path):
    out = tmp_path / "s.h5"
    r = cli("simulate", "hmmglm", "--out", out, "--sequences", "2", "--length", "50",
            "--neurons", "5", "--states", "3")
    assert r.exit_code == 0, r.output
    rec, = read_recordings(out)
    assert rec.modality == "spikes" and rec.data.shape == (100, 5)
    assert rec.meta["sequence_length"] == 50
    with h5py.File(out, "r") as f:
        assert f["ground_truth/weights"].shape == (3, 5, 5)
        assert f["ground_truth/states"].shape == (100,)


def test_gaussian_prior_and_auto_states(tmp_path, sim_file):
    out = run(sim_file, tmp_path / "g.h5", prior="gaussian", states="auto", states_range="1-3",
              folds=2, **FAST)
    with h5py.File(out, "r") as f:
        g = f["hmmglm%2Fsim"]
        ms = g["model_selection"]
        assert ms["values"][()].tolist() == [1, 2, 3]
        assert ms.attrs["chosen"] >= 2  # one state cannot explain a switching recording
        assert ms["scores"].shape == (3, 2) and ms.attrs["unit"] == "bits/spike"
        assert np.all(ms["gain"][()][1:] > 0) and ms["gain"][0] == 0
        assert g.attrs["heldout_unit"] == "bits/spike" and g.attrs["heldout_gain"] > 0
        assert g["W0"].shape == (6, 6)


def _write(tmp_path, traces, modality="spikes", name="bad.h5", **kw):
    rec = Recording(traces=traces, labels=[f"n{i}" for i in range(traces.shape[1])],
                    modality=modality, fs=10.0, id="r", **kw)
    return write_recordings(tmp_path / name, [rec])


def test_bad_input(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.poisson(1.0, (60, 3)).astype(np.float32)
    p = _write(tmp_path, y)
    with pytest.raises(ParamError, match="states"):  # the CLI names --states, a pipeline its key
        run(p, tmp_path / "o.h5", states="100", **FAST)
    with pytest.raises(InputError, match="mismatched trial lengths"):
        run(p, tmp_path / "o.h5", states="2", trial_duration=0.7, **FAST)  # 7 bins at 10 Hz
    with pytest.raises(ParamError, match="not a whole number of bins"):
        run(p, tmp_path / "o.h5", states="2", trial_duration=0.75, **FAST)
    mask = np.ones_like(y, dtype=bool)
    mask[5, 1] = False
    y_nan = y.copy()
    y_nan[5, 1] = np.nan
    with pytest.raises(InputError, match="unobserved"):
        run(_write(tmp_path, y_nan, mask=mask, name="nan.h5"), tmp_path / "o.h5", **FAST)
    with pytest.raises(InputError, match="non-negative integers"):
        run(_write(tmp_path, y + 0.5, name="frac.h5"), tmp_path / "o.h5", **FAST)
    with pytest.raises(InputError, match="no neuron"):
        run(_write(tmp_path, np.zeros((60, 3), np.float32), name="zero.h5"), tmp_path / "o.h5",
            **FAST)
    with pytest.raises(InputError, match="gaussian"):
        run(_write(tmp_path, y, modality="calcium", name="ca.h5"), tmp_path / "o.h5",
            observation="poisson", **FAST)
    assert not (tmp_path / "o.h5").exists()


def test_silent_neuron_dropped_and_calcium_gaussian(tmp_path, cli):
    rng = np.random.default_rng(1)
    y = rng.poisson(1.0, (80, 4)).astype(np.float32)
    y[:, 2] = 0
    out = run(_write(tmp_path, y), tmp_path / "o.h5", states="2", **FAST)
    with h5py.File(out, "r") as f:
        g = f["r"]
        assert [s.decode() for s in g["dropped"][()]] == ["n2"]
        assert g["weights"].shape == (2, 3, 3)
        assert np.all(np.isfinite(g["posterior"][()]))
    ca = rng.normal(size=(80, 3)).astype(np.float32)
    out = run(_write(tmp_path, ca, modality="calcium", name="ca.h5"), tmp_path / "c.h5",
              states="2", **FAST)
    with h5py.File(out, "r") as f:
        assert f["r"].attrs["observation"] == "gaussian"
        assert f["r"]["noise_var"].shape == (3,)
    r = cli("states", tmp_path / "missing.h5", "--out", tmp_path / "x.h5")
    assert r.exit_code == 2 and "error:" in r.output


# -- joint fits over the recordings of one file ------------------------------------------------
def _match(true, fitted, K):
    from scipy.optimize import linear_sum_assignment

    C = np.zeros((K, K))
    np.add.at(C, (true, fitted), 1)
    r, c = linear_sum_assignment(-C)
    return C[r, c].sum() / true.size, c


@pytest.fixture(scope="module")
def two_recordings(tmp_path_factory):
    """Two recordings of 4 trials x 500 bins each, drawn from the SAME HMM-GLM."""
    from neurodyn.hmmglm.recordings import to_recordings

    p = tmp_path_factory.mktemp("joint") / "two.h5"
    y, truth = simulate_hmmglm(3, 8, 8, 500, seed=4, strength=(0.5, 0.9))
    recs = to_recordings(y, truth, 2, seq_len=500)
    write_recordings(p, recs, stage="simulate-hmmglm", extra={"ground_truth": truth})
    return p, truth


def test_joint_fit_shares_one_model_and_recovers_each_recording(tmp_path, two_recordings):
    src, truth = two_recordings
    out = run(src, tmp_path / "j.h5", states="3", joint=True, restarts=1, max_iter=30)
    z = truth["states"]
    with h5py.File(out, "r") as f:
        j = f["joint"]
        assert json.loads(j.attrs["recordings"]) == ["hmmglm/sim/rec0", "hmmglm/sim/rec1"]
        W = j["weights"][()]
        assert W.shape == (3, 8, 8) and j["labels"].shape == (8,)
        total = 0.0
        paths = []
        for r in range(2):
            g = f[f"hmmglm%2Fsim%2Frec{r}"]
            assert "weights" not in g and g.attrs["parameters"] == "/joint"
            np.testing.assert_array_equal(g["sequence_starts"][()], [0, 500, 1000, 1500])
            assert g["posterior"].shape == (2000, 3) and g["time"].shape == (2000,)
            assert np.isfinite(g.attrs["heldout_score"])
            acc, _ = _match(z[2000 * r:2000 * (r + 1)], g["viterbi"][()], 3)
            assert acc >= 0.9, (r, acc)
            paths.append(g["viterbi"][()])
            total += g.attrs["loglik"]
        assert np.isclose(total, j.attrs["loglik"])
    # one labelling for both recordings: the shared W matches the truth under one matching
    acc, perm = _match(z, np.concatenate(paths), 3)
    assert acc >= 0.9
    assert np.corrcoef(W[perm].ravel(), truth["weights"].ravel())[0, 1] >= 0.8


def test_joint_over_one_recording_is_the_per_recording_fit(tmp_path, sim_file):
    a = run(sim_file, tmp_path / "a.h5", states="2", **FAST)
    b = run(sim_file, tmp_path / "b.h5", states="2", joint=True, **FAST)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for name in ("weights", "bias", "transition"):
            np.testing.assert_array_equal(fa["hmmglm%2Fsim"][name][()], fb["joint"][name][()])
        np.testing.assert_array_equal(fa["hmmglm%2Fsim/viterbi"][()], fb["hmmglm%2Fsim/viterbi"][()])
        assert np.isclose(fa["hmmglm%2Fsim"].attrs["heldout_score"],
                          fb["joint"].attrs["heldout_score"])


def test_joint_sequences_and_silent_neurons(tmp_path):
    """Each recording keeps its own trials (also for --states auto); a neuron silent in one
    recording is kept, one silent in every recording is dropped."""
    rng = np.random.default_rng(3)
    ya = rng.poisson(1.0, (300, 4)).astype(np.float32)
    yb = rng.poisson(1.0, (200, 4)).astype(np.float32)
    ya[:, 1] = 0
    ya[:, 3] = yb[:, 3] = 0
    labels = ["a", "b", "c", "d"]
    recs = [Recording(traces=ya, labels=labels, modality="spikes", fs=10.0, id="x/A",
                      meta={"sequence_length": 100}),
            Recording(traces=yb, labels=labels, modality="spikes", fs=10.0, id="x/B")]
    src = write_recordings(tmp_path / "in.h5", recs)
    out = run(src, tmp_path / "o.h5", states="auto", states_range="1-2", folds=2, joint=True,
              **FAST)
    with h5py.File(out, "r") as f:
        assert f["joint/model_selection/scores"].shape == (2, 2)
        assert "model_selection" not in f["x%2FA"]
        assert [s.decode() for s in f["joint/labels"][()]] == ["a", "b", "c"]
        assert [s.decode() for s in f["joint/dropped"][()]] == ["d"]
        np.testing.assert_array_equal(f["x%2FA/sequence_starts"][()], [0, 100, 200])
        np.testing.assert_array_equal(f["x%2FB/sequence_starts"][()], [0])
        np.testing.assert_array_equal(f["x%2FB/sequence_stops"][()], [200])


def test_time_options_in_seconds_convert_with_the_bin_width(tmp_path, sim_file):
    """--history / --decay / --trial-duration are seconds, converted with the recording's
    100 Hz bins; the output records both units."""
    out = run(sim_file, tmp_path / "s.h5", states="2", history=0.07, decay=0.025,
              trial_duration=2.5, test_fraction=0.0, **FAST)
    with h5py.File(out, "r") as f:
        g = f["hmmglm%2Fsim"]
        assert g["basis"].shape == (7,)
        np.testing.assert_allclose(g["basis"][()], exp_basis(7, 2.5), rtol=1e-6)
        np.testing.assert_array_equal(g["sequence_starts"][()], np.arange(0, 2000, 250))
        a = {k: g.attrs[k] for k in g.attrs if k.endswith(("_bins", "_s"))}
        assert a == pytest.approx({"history_bins": 7, "history_s": 0.07, "decay_bins": 2.5,
                                   "decay_s": 0.025, "trial_bins": 250, "trial_s": 2.5,
                                   "bin_width_s": 0.01, "tau_s": 0.025})
        assert json.loads(f.attrs["parameters"])["history"] == 0.07


def test_former_bin_valued_options_still_work(cli, tmp_path, sim_file, caplog):
    """--lags / --tau / --trial-length (bins) are hidden, warn, and give the same fit as
    their seconds-valued successors; giving both forms is refused."""
    new, old = tmp_path / "new.h5", tmp_path / "old.h5"
    common = ["--states", "2", "--restarts", "1", "--max-iter", "5", "--mstep-iter", "5"]
    r = cli("states", sim_file, "--out", new, "--history", "0.04", "--decay", "0.015",
            "--trial-duration", "10", *common)
    assert r.exit_code == 0, r.output
    r = cli("states", sim_file, "--out", old, "--lags", "4", "--tau", "1.5",
            "--trial-length", "1000", *common)
    assert r.exit_code == 0, r.output
    assert "--lags (in bins) is deprecated" in caplog.text and "use --history" in caplog.text
    with h5py.File(new, "r") as a, h5py.File(old, "r") as b:
        np.testing.assert_array_equal(a["hmmglm%2Fsim/weights"][()], b["hmmglm%2Fsim/weights"][()])
        assert b["hmmglm%2Fsim"].attrs["history_s"] == pytest.approx(0.04)
        assert b["hmmglm%2Fsim"].attrs["trial_s"] == pytest.approx(10.0)
    help_text = cli("states", "--help").output
    assert "--history" in help_text and "--lags" not in help_text
    r = cli("states", sim_file, "--out", tmp_path / "x.h5", "--lags", "4", "--history", "0.1")
    assert r.exit_code == 2 and "--lags" in r.output and "not both" in r.output


def test_joint_cli_with_learned_basis_and_figures(cli, tmp_path):
    sim = tmp_path / "sim.h5"
    r = cli("simulate", "hmmglm", "--out", sim, "--states", "2", "--neurons", "6",
            "--sequences", "4", "--length", "400", "--recordings", "2", "--tau", "1.5")
    assert r.exit_code == 0, r.output
    out = tmp_path / "states.h5"
    r = cli("states", sim, "--out", out, "--states", "2", "--joint", "--learn-basis",
            "--decay", "0.03", "--prior", "gaussian", "--restarts", "1", "--max-iter", "20")
    assert r.exit_code == 0, r.output
    with h5py.File(out, "r") as f:
        j = f["joint"]
        assert j.attrs["basis_learned"] and j["tau_trace"][0] == 3.0
        assert j.attrs["tau"] < 3.0 and j["W0"].shape == (6, 6)
        np.testing.assert_allclose(j["basis"][()], exp_basis(5, j.attrs["tau"]))
    from neurodyn.plots.states import draw

    names = sorted(p.name for p in draw(out, tmp_path / "fig"))
    assert names == ["states_prior_joint.png", "states_timeline_hmmglm_sim_rec0.png",
                     "states_timeline_hmmglm_sim_rec1.png", "states_trace_joint.png",
                     "states_weights_joint.png"]


def test_joint_rejects_mismatched_recordings(cli, tmp_path):
    rng = np.random.default_rng(0)
    y = rng.poisson(1.0, (60, 3)).astype(np.float32)
    mk = lambda rid, labels, modality="spikes": Recording(  # noqa: E731
        traces=y, labels=labels, modality=modality, fs=10.0, id=rid)
    src = write_recordings(tmp_path / "mix.h5", [mk("r0", ["a", "b", "c"]),
                                                 mk("r1", ["a", "c", "b"])])
    r = cli("states", src, "--out", tmp_path / "o.h5", "--joint")
    one_line_error(r, str(src), "[r1]", "channel 1")
    assert not (tmp_path / "o.h5").exists()
    src = write_recordings(tmp_path / "mod.h5", [mk("r0", ["a", "b", "c"]),
                                                 mk("r1", ["a", "b", "c"], "calcium")])
    with pytest.raises(InputError, match=r"\[r1\].*gaussian observation model"):
        run(src, tmp_path / "o.h5", joint=True, **FAST)
    # per recording, the same files are fine to fit separately
    assert run(src, tmp_path / "o.h5", states="2", **FAST).exists()
