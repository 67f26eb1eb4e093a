"""`neurodyn simulate collection`: the published parquet layout, read by the real reader."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from neurodyn.io.registry import find_reader, read
from neurodyn.simulate_collection import SOURCE_DATASETS, allocate_worms, read_truth

PUBLISHED = {
    "source_dataset", "raw_data_file", "worm", "neuron", "slot", "is_labeled_neuron",
    "smooth_method", "interpolate_method", "normalization_method", "original_calcium_data",
    "calcium_data", "original_time_in_seconds", "time_in_seconds", "original_max_timesteps",
    "max_timesteps",
}


def test_allocation_matches_published_counts():
    published = {ds: v[0] for ds, v in SOURCE_DATASETS.items()}
    assert allocate_worms(sum(published.values())) == published  # 912 worms
    alloc = allocate_worms(900)
    assert sum(alloc.values()) == 900 and alloc["Lin2023"] == 569 and alloc["Uzel2022"] == 6
    assert allocate_worms(5, ["Kato2015", "Yemini2021"]) == {"Kato2015": 1, "Yemini2021": 4}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from typer.testing import CliRunner

    from neurodyn.cli import app

    out = tmp_path_factory.mktemp("coll") / "c.parquet"
    res = CliRunner().invoke(app, ["simulate", "collection", "--worms", "6", "--out", str(out),
                                   "--datasets", "Kato2015,Yemini2021",
                                   "--frames", "200-260", "--segment", "15", "--seed", "3"])
    assert res.exit_code == 0, res.output
    return out


def test_layout_and_real_reader(small):
    assert set(pq.read_schema(small).names) == PUBLISHED
    assert find_reader(small).name == "celegans-parquet"
    recs = read(small)
    assert len(recs) == 6 and {r.dataset for r in recs} == {"Kato2015", "Yemini2021"}
    for r in recs:
        _, n_lab, n_rec, _ = SOURCE_DATASETS[r.dataset]
        lab = r.channel_info["is_labeled"].to_numpy()
        assert 0.8 * n_rec <= r.n_channels <= 1.2 * n_rec + 1, r.id
        assert 0.8 * n_lab <= lab.sum() <= 1.2 * n_lab + 1, r.id
        assert 200 <= r.n_samples <= 260 and abs(r.fs - 3.0) < 0.01
        assert np.allclose(r.traces.mean(0), 0, atol=1e-4) and np.allclose(r.traces.std(0), 1, atol=1e-3)


def test_planted_groups_coactivate(small):
    truth = read_truth(small)
    assert len(truth.groups) == 4 and all(len(g) == 8 for g in truth.groups)
    rec = next(r for r in read(small) if r.dataset == "Yemini2021")
    memb = truth.membership(rec.labels)
    t = rec.times
    for g in range(4):
        idx = np.flatnonzero(memb == g)
        assert idx.size >= 2, "popular neurons are labelled in a 110-neuron worm"
        on = (np.floor(t / truth.segment_s) % 4) == g
        c_on = np.corrcoef(rec.traces[on][:, idx].T)[np.triu_indices(idx.size, 1)].mean()
        c_off = np.corrcoef(rec.traces[~on][:, idx].T)[np.triu_indices(idx.size, 1)].mean()
        assert c_on > 0.5 and c_off < 0.2, (g, c_on, c_off)


def test_bad_options(cli, tmp_path):
    out = tmp_path / "x.parquet"
    res = cli("simulate", "collection", "--worms", "3", "--frames", "9-3", "--out", out)
    assert res.exit_code == 2 and "--frames" in res.output
    res = cli("simulate", "collection", "--worms", "3", "--datasets", "Foo2020", "--out", out)
    assert res.exit_code == 2 and "--datasets" in res.output
    assert not out.exists() and not list(tmp_path.iterdir())
