"""A small synthetic run directory in the stage layouts, for report demos and tests.

Not a model: the arrays are drawn at random with planted structure, only so that figures,
the timeline, the report and the connectome comparison have something realistic to read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from neurodyn.bicluster import result as bicluster_result
from neurodyn.community import result as community_result
from neurodyn.connectome import Connectome
from neurodyn.hmmglm import result as states_result
from neurodyn.io.groups import events_tree
from neurodyn.io.store import atomic_h5, write_recordings
from neurodyn.recording import Recording
from neurodyn.tensor import result as ntf_result


def planted_connectome(labels: list[str], groups: np.ndarray, seed: int, name: str = "planted"
                       ) -> Connectome:
    """A connectome dense within ``groups`` (same value, >= 0) and sparse between them."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    same = (groups[:, None] == groups[None, :]) & (groups[:, None] >= 0)
    p = np.where(same, 0.7, 0.05)
    chem = (rng.random((n, n)) < p) * rng.integers(1, 8, (n, n))
    np.fill_diagonal(chem, 0)
    e = np.triu(rng.random((n, n)) < p * 0.3, 1)
    elec = (e | e.T).astype(float)
    return Connectome(name, labels, chem.astype(float), elec)


def make_run(rundir: str | Path, *, seed: int = 0, n_neurons: int = 24, n_frames: int = 600,
             fs: float = 2.0, n_states: int = 3, rank: int = 3) -> dict:
    """Write ``recordings.h5, ntf.h5, communities.h5, states.h5, bicluster.h5`` into ``rundir``.

    Returns the planted truth: ``labels``, ``groups`` (N,), ``states`` per recording id.
    """
    rundir = Path(rundir)
    rng = np.random.default_rng(seed)
    labels = [f"N{i:02d}" for i in range(n_neurons)]
    groups = np.arange(n_neurons) % rank
    rng.shuffle(groups)
    con = planted_connectome(labels, groups, seed + 1)
    t = np.arange(n_frames) / fs
    recs, truth_states = [], {}
    for a in range(2):
        seg = np.sort(rng.choice(np.arange(20, n_frames - 20), n_states * 2 - 1, replace=False))
        z = np.zeros(n_frames, dtype=int)
        for i, b in enumerate(seg):
            z[b:] = (i + 1) % n_states
        truth_states[f"sim/animal{a}"] = z
        x = rng.standard_normal((n_frames, n_neurons)).astype(np.float32)
        x += (groups[None, :] == z[:, None]) * 2.0
        ev = pd.DataFrame({"onset": [t[n_frames // 4]], "offset": [t[n_frames // 2]],
                           "label": ["stimulus"]})
        recs.append(Recording(traces=x, labels=labels, modality="calcium", fs=fs, units="dF/F",
                              id=f"sim/animal{a}", subject=f"animal{a}", dataset="synthetic",
                              events=ev))
    rec_p = write_recordings(rundir / "recordings.h5", recs, [con], params={"seed": seed},
                             seed=seed)
    # NTF
    W = 30
    win = np.stack([np.linspace(0, t[-1] - 10, W), np.linspace(10, t[-1], W)], 1)
    pairs_factor = rng.random((n_neurons * (n_neurons - 1) // 2, rank))
    time_f = np.abs(rng.standard_normal((W, rank))) + np.sin(np.linspace(0, 3, W))[:, None] ** 2
    mats = np.zeros((rank, n_neurons, n_neurons))
    for r in range(rank):
        v = (groups == r) + 0.1 * rng.random(n_neurons)
        mats[r] = np.outer(v, v)
        np.fill_diagonal(mats[r], 0)
    ranks = np.arange(1, rank + 3)
    ntf = ntf_result.NTFResult(
        factors={"pairs": pairs_factor, "time": time_f, "animal": rng.random((2, rank)),
                 "weights": np.linspace(2, 1, rank)},
        matrices=mats, labels=labels, pairs=np.stack(np.triu_indices(n_neurons, 1), 1),
        windows=win, animals=["sim/animal0", "sim/animal1"],
        rank_selection={"ranks": ranks, "error": 0.5 / ranks,
                        "heldout_error": 0.5 / ranks + 0.02 * ranks,
                        "stability": np.linspace(1, 0.6, ranks.size)},
        restarts={}, rank=rank, relative_error=0.123, stability=0.9, best_seed=seed,
        events=pd.DataFrame({"onset": [t[n_frames // 4]] * 2, "offset": [t[n_frames // 2]] * 2,
                             "label": ["stimulus"] * 2, "animal": ["sim/animal0", "sim/animal1"]}),
    )
    with atomic_h5(rundir / "ntf.h5", stage=ntf_result.STAGE, params={"rank": rank},
                   inputs=[rec_p], seed=seed) as f:
        ntf_result.write(f, ntf)
    ntf_p = rundir / "ntf.h5"
    comms = {}
    for r in range(rank):
        mem = np.where(groups == r, 0, 1 + (rng.random(n_neurons) < 0.5))
        comms[r] = community_result.ComponentCommunities(
            membership=mem, block_matrix=rng.random((3, 3)), levels=[mem],
            attrs=dict(n_blocks=3, method="sbm", description_length=-100.0 * (r + 1),
                       degree_corrected=False))
    with atomic_h5(rundir / "communities.h5", stage=community_result.STAGE,
                   params={"resolution": 1.0}, inputs=[ntf_p], seed=seed) as f:
        community_result.write(f, community_result.CommunitiesResult(labels, comms))
    common = {"labels": np.array(labels, dtype=object), "time": t,
              "events": events_tree(recs[0].events)}
    fits = []
    for rid, z in truth_states.items():
        post = np.full((n_frames, n_states), 0.1 / (n_states - 1))
        post[np.arange(n_frames), z] = 0.9
        post = post + 0.05 * rng.random(post.shape)
        post /= post.sum(1, keepdims=True)
        w = rng.standard_normal((n_states, n_neurons, n_neurons)) * 0.1
        w += 0.5 * (groups[:, None] == groups[None, :])[None]
        tr = np.full((n_states, n_states), 0.02 / (n_states - 1))
        np.fill_diagonal(tr, 0.98)
        fits.append(states_result.StatesFit(rid, {
            "@id": rid, "posterior": post, "viterbi": z, "weights": w,
            "adjacency": np.abs(w).mean(0), "loglik_trace": -1000 + np.cumsum(rng.random(20)),
            "bias": rng.standard_normal((n_states, n_neurons)), "transition": tr, **common,
            "@heldout_loglik": -812.5, "@n_states": n_states, "@prior": "none",
            "@heldout_score": 0.25, "@heldout_unit": "bits/spike", "@converged": True}))
    with atomic_h5(rundir / "states.h5", stage=states_result.STAGE,
                   params={"n_states": n_states}, inputs=[rec_p], seed=seed) as f:
        states_result.write(f, fits)
    bics = []
    for rid, z in truth_states.items():
        zz = z.copy()
        flip = rng.random(n_frames) < 0.1
        zz[flip] = rng.integers(0, n_states, flip.sum())
        lat = rng.standard_normal((rank, n_frames, 2)).cumsum(1) * 0.1
        traces = {"n_clusters": rng.integers(2, 5, (2, 50)),
                  "n_states": rng.integers(2, 5, (2, 50)),
                  "loglik": -5000 + rng.random((2, 50)).cumsum(1)}
        bics.append(bicluster_result.BiclusterFit(rid, {
            "@id": rid, "state_sequence": zz, "neuron_clusters": groups,
            "neuron_similarity": (groups[:, None] == groups[None, :]).astype(float),
            "state_similarity": (zz[:, None] == zz[None, :]).astype(np.float32),
            "latent": {"mean": lat, "lower": lat - 0.2, "upper": lat + 0.2},
            "traces": traces, **common}))
    with atomic_h5(rundir / "bicluster.h5", stage=bicluster_result.STAGE,
                   params={"n_iter": 100}, inputs=[rec_p], seed=seed) as f:
        bicluster_result.write(f, bics)
    return {"labels": labels, "groups": groups, "states": truth_states, "connectome": con}
