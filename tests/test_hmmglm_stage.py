"""The ``states`` stage, its CLI, ``simulate hmmglm``, figures and bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurodyn.errors import InputError
from neurodyn.hmmglm.recordings import to_recording
from neurodyn.hmmglm.simulate import simulate_hmmglm
from neurodyn.hmmglm.stage import run
from neurodyn.io.store import read_recordings, write_recordings
from neurodyn.recording import Recording

FAST = dict(restarts=1, max_iter=15, mstep_iter=10)


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("hmm") / "sim.h5"
    y, truth = simulate_hmmglm(2, 6, 4, 500, seed=2, strength=(0.5, 0.9))
    write_recordings(p, [to_recording(y, truth, seq_len=500)], stage="simulate-hmmglm",
                     extra={"ground_truth": truth})
    return p


def test_cli_simulate_states_and_figures(cli, tmp_path, sim_file):
    out = tmp_path / "states.h5"
    r = cli("states", sim_file, "--out", out, "--states", "2", "--prior", "onehot",
            "--restarts", "1", "--max-iter", "15", "--mstep-iter", "10")
    assert r.exit_code == 0, r.output
    with h5py.File(out, "r") as f:
        assert f.attrs["stage"] == "states"
        g = f["hmmglm|sim"]
        post = g["posterior"][()]
        assert post.shape == (2000, 2) and np.allclose(post.sum(1), 1, atol=1e-4)
        assert g["weights"].shape == (2, 6, 6) and g["adjacency_prob"].shape == (2, 6, 6, 3)
        assert set(np.unique(g["adjacency"][()])) <= {-1, 0, 1}
        assert np.isfinite(g.attrs["heldout_bits_per_spike"])
        assert g.attrs["heldout_bits_per_spike"] > 0.0
        np.testing.assert_array_equal(g["sequence_starts"][()], [0, 500, 1000, 1500])
        # Viterbi path agrees with the true states up to relabelling
        vit = g["viterbi"][()]
    truth = h5py.File(sim_file, "r")["ground_truth/states"][()]
    agree = max(np.mean(vit == truth), np.mean(vit == 1 - truth))
    assert agree > 0.8  # plumbing check on 2,000 bins; recovery is tested elsewhere
    from neurodyn.plots.states import draw
    paths = draw(out, tmp_path / "fig")
    assert len(paths) == 4 and all(p.stat().st_size > 1000 for p in paths)


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
        g = f["hmmglm|sim"]
        ms = g["model_selection"]
        assert ms["k_values"][()].tolist() == [1, 2, 3]
        assert ms.attrs["best"] >= 2  # one state cannot explain a switching recording
        assert ms["heldout_bits"].shape == (3, 2)
        assert g["W0"].shape == (6, 6)


def _write(tmp_path, traces, modality="spikes", name="bad.h5", **kw):
    rec = Recording(traces=traces, labels=[f"n{i}" for i in range(traces.shape[1])],
                    modality=modality, fs=10.0, id="r", **kw)
    return write_recordings(tmp_path / name, [rec])


def test_bad_input(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.poisson(1.0, (60, 3)).astype(np.float32)
    p = _write(tmp_path, y)
    with pytest.raises(InputError, match="states"):
        run(p, tmp_path / "o.h5", states="100", **FAST)
    with pytest.raises(InputError, match="mismatched trial lengths"):
        run(p, tmp_path / "o.h5", states="2", trial_length=7, **FAST)
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
