"""A simulated 5-worm collection, in the published parquet layout, through the real reader and
ingest -> preprocess -> affinity -> factorize -> communities: the planted groups come back."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from neurodyn.io.store import strings
from neurodyn.names import CANONICAL_NEURONS
from neurodyn.simulate_collection import read_truth


@pytest.mark.slow
def test_collection_parquet_to_communities(cli, tmp_path):
    d = tmp_path
    ok = lambda res: res.exit_code == 0 or pytest.fail(res.output)  # noqa: E731
    ok(cli("simulate", "collection", "--worms", "5", "--datasets", "Yemini2021", "--frames",
           "300-360", "--segment", "15", "--noise", "0.1", "--seed", "0", "--out", d / "c.parquet"))
    truth = read_truth(d / "c.parquet")
    planted = sum(truth.groups, [])
    # the planted neurons plus every 25th other canonical name as background (a --neurons
    # selection, pushed down into the parquet read, keeps the tensor small)
    neurons = planted + [n for n in CANONICAL_NEURONS if n not in planted][::25]
    ok(cli("ingest", d / "c.parquet", "--labeled-only", "--neurons", ",".join(neurons),
           "--out", d / "rec.h5"))
    ok(cli("preprocess", d / "rec.h5", "--normalize", "zscore", "--out", d / "pre.h5"))
    ok(cli("affinity", d / "pre.h5", "--out", d / "aff.h5"))
    ok(cli("factorize", d / "aff.h5", "--rank", "4", "--restarts", "1", "--max-iter", "60", "--seed", "0",
           "--out", d / "ntf.h5"))
    ok(cli("communities", d / "ntf.h5", "--out", d / "com.h5", "--seed", "0"))
    with h5py.File(d / "aff.h5") as f:
        assert f.attrs["n_animals"] == 5 and 0.3 < f.attrs["observed_fraction"] < 0.95
    with h5py.File(d / "com.h5") as f:
        labels = strings(f["labels"])
        member = truth.membership(labels)
        assert (member >= 0).sum() >= 24 and (member < 0).sum() >= 4
        parts = [f[k]["membership"][()] for k in f if k.startswith("component_")]
    # each planted group is one community of some component (group vs rest)
    for g in range(len(truth.groups)):
        best = max(normalized_mutual_info_score(member == g, p) for p in parts)
        assert best >= 0.8, (g, best)
    # and a shuffled truth is not: the threshold is one a broken pipeline misses
    shuffled = np.random.default_rng(0).permutation(member)
    assert max(normalized_mutual_info_score(shuffled == 0, p) for p in parts) < 0.5
