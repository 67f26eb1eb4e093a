"""Per-recording stage files (neurodyn.io.groups) through the states and bicluster result
modules: round trip, old group names, the stage check, reading some ids only."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from neurodyn.bicluster import result as bicluster_result
from neurodyn.errors import InputError
from neurodyn.hmmglm import result as states_result
from neurodyn.io.groups import events_tree
from neurodyn.io.store import atomic_h5


def test_states_result_round_trip_old_names_and_stage_check(tmp_path):
    ev = pd.DataFrame({"onset": [1.0], "offset": [2.0], "label": ["odor"]})
    post = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], np.float32)
    fits = [states_result.StatesFit("spikes/a", {"@id": "spikes/a", "posterior": post,
                                                 "viterbi": np.array([0, 1, 0], np.int16),
                                                 "events": events_tree(ev), "@n_states": 2}),
            states_result.StatesFit(states_result.JOINT, {"weights": np.ones((2, 1, 1))})]
    p = tmp_path / "states.h5"
    with atomic_h5(p, stage=states_result.STAGE) as f:
        states_result.write(f, fits)
    with h5py.File(p) as f:
        assert sorted(f) == ["joint", "spikes%2Fa"]  # io.layout.group_name
    back = states_result.read(p)
    assert list(back) == ["joint", "spikes/a"]
    a = back["spikes/a"]
    np.testing.assert_array_equal(a.posterior, post)
    assert a.attr("n_states") == 2 and a.weights is None and not a.has_parameters
    pd.testing.assert_frame_equal(a.events, ev)
    assert back["joint"].is_joint and back["joint"].has_parameters
    assert states_result.ids(p) == ["spikes/a"]  # groups with a state path
    assert list(states_result.read(p, ["spikes/a", "other"])) == ["spikes/a"]
    assert states_result.StatesFit.posterior.name == "posterior"
    # files of older versions: "/" written as "|", no id attribute
    old = tmp_path / "old.h5"
    with atomic_h5(old, stage=bicluster_result.STAGE) as f:
        f.create_group("spikes|b").create_dataset("state_sequence", data=[0, 0, 1])
    fit = bicluster_result.read(old)["spikes/b"]
    np.testing.assert_array_equal(fit.state_sequence[fit.state_similarity_bins], [0, 0, 1])
    assert fit.events.empty and fit.diagnostics == {} and fit.traces == {}
    with pytest.raises(InputError, match="not a states file"):
        states_result.read(old)
