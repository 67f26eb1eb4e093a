"""Several chains (in parallel processes) and the posterior summaries they produce."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from neurodyn.bicluster.diagnostics import summarize_traces
from neurodyn.bicluster.model import Priors, SamplerConfig, Until
from neurodyn.bicluster.sampler import BLOCKS, Chain, run_chain
from neurodyn.bicluster.summaries import expand_grid, point_estimate, trajectory_summary
from neurodyn.errors import InputError
from neurodyn.progress import bar


def check_counts(y: np.ndarray, source: str = "counts") -> np.ndarray:
    """Validate a (N, T) count matrix; returns it as float64.

    Raises
    ------
    InputError
        Non-finite, negative or non-integer values, or neurons with no spikes at all.
    """
    y = np.asarray(y, dtype=float)
    if y.ndim != 2 or y.shape[0] < 1 or y.shape[1] < 3:
        raise InputError(source, f"need a (neurons x bins) count matrix with >= 3 bins, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise InputError(source, "counts contain NaN or infinity")
    if (y < 0).any():
        raise InputError(source, "counts must be non-negative (found negative values)")
    if not np.all(y == np.round(y)):
        raise InputError(source, "counts must be integers (found non-integer values; bin spikes first)")
    silent = np.flatnonzero(y.sum(axis=1) == 0)
    if silent.size:
        raise InputError(source, f"{silent.size} neuron(s) never spike (e.g. index {silent[:5].tolist()}); drop them")
    return y


MIN_DRAWS = 20  # kept draws per chain before an adaptive run may stop (even out of time)


class Monitor:
    """The kept draws of every chain as they arrive, and the decision to stop."""

    def __init__(self, chains: int, until: Until | None) -> None:
        self.draws: list[list[tuple]] = [[] for _ in range(chains)]
        self.until = until
        self.t0 = time.monotonic()
        self.last = self.t0
        self.reason = "iters"  # why the run ended

    def add(self, chain: int, draw: tuple | None) -> None:
        if draw is not None:
            self.draws[chain].append(draw)

    def traces(self) -> dict[str, np.ndarray]:
        n = min(len(d) for d in self.draws)
        arr = np.array([d[:n] for d in self.draws], dtype=float).reshape(len(self.draws), n, 3)
        return {name: arr[:, :, j] for j, name in enumerate(("n_clusters", "n_states", "loglik"))}

    def done(self, force: bool = False) -> bool:
        """True when the run should stop (sets :attr:`reason`); checks at most every
        ``until.every`` seconds unless ``force``."""
        u = self.until
        now = time.monotonic()
        if u is None or (not force and now - self.last < u.every):
            return False
        self.last = now
        if min(len(d) for d in self.draws) < MIN_DRAWS:
            return False
        if now - self.t0 > u.seconds:
            self.reason = "time budget"
            return True
        diag = summarize_traces(self.traces())
        ok = all(np.isnan(v) or (v < u.rhat if k.startswith("rhat_") else v >= u.ess)
                 for k, v in diag.items() if k.startswith(("rhat_", "ess_bulk_")))
        if ok:
            self.reason = "converged"
        return ok


def _worker(args):
    y, cfg, pri, seed, init, chain, q, stop_at = args
    timing: dict = {}

    def cb(it: int, k: int, s: int, draw) -> None:
        try:
            q.put_nowait((chain, it, k, s, draw))
        except Exception:  # noqa: BLE001 - progress is best effort
            pass

    out = run_chain(y, cfg, pri, seed, init=init, callback=cb, timing=timing,
                    stop_at=None if stop_at is None else (lambda: stop_at.value))
    out["timing"] = timing
    return out


def fit(
    y: np.ndarray, cfg: SamplerConfig, pri: Priors, *, seed: int = 0, chains: int = 1,
    jobs: int = 1, inits: list[str] | None = None, desc: str = "bicluster",
    until: Until | None = None,
) -> dict:
    """Run ``chains`` chains on counts y (N, T) and summarise them.

    Chains get independent seeds spawned from ``seed``; with ``jobs > 1`` they run in parallel
    processes. With ``until`` the chains stop together (after the same number of sweeps) as
    soon as its targets are met or its time is up (all chains then run at once, in parallel
    processes or, without them, interleaved in this one); ``diagnostics/stopped_by`` says which
    ("converged", "time budget" or "iters"). Returns a dict of arrays (see :func:`summarize`).
    """
    y = check_counts(y)
    seeds = np.random.SeedSequence(seed).spawn(chains)
    inits = inits or [cfg.init] * chains
    pbar = bar(cfg.iters * chains, desc=desc, unit="it")
    state = {}
    mon = Monitor(chains, until)

    def show(c: int, k: int, s: int) -> None:
        state[c] = (k, s)
        ks = sorted(state.items())
        pbar.set_postfix(clusters="/".join(str(v[0]) for _, v in ks), states="/".join(str(v[1]) for _, v in ks),
                         refresh=False)
        pbar.update(1)

    outs = []
    tic = time.monotonic()
    # chains have their own seeds, so running them serially gives the same result; a daemonic
    # process (a dask or pipeline worker) may not start children, so it always does
    serial = jobs <= 1 or chains == 1 or mp.current_process().daemon
    if serial and until is None:
        for c in range(chains):
            timing: dict = {}
            o = run_chain(y, cfg, pri, seeds[c], init=inits[c], timing=timing,
                          callback=lambda it, k, s, draw, c=c: show(c, k, s))
            o["timing"] = timing
            outs.append(o)
    elif serial:  # interleaved, so that the chains can be compared as they go
        runs = [Chain(y, cfg, pri, seeds[c], inits[c]) for c in range(chains)]
        timings: list[dict] = [{} for _ in range(chains)]
        while runs[0].it < cfg.iters and not mon.done():
            for c, ch in enumerate(runs):
                mon.add(c, ch.step(timings[c]))
                show(c, len(ch.st.xs), ch.all_s[-1])
        for ch, timing in zip(runs, timings):
            outs.append(ch.result() | {"timing": timing})
    else:
        # a clean fork server: forking this process once numba / OpenMP threads run (an
        # earlier stage's kernels) can deadlock the child (as in :mod:`neurodyn.workers`)
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        with ctx.Manager() as manager:
            q = manager.Queue()
            stop_at = manager.Value("i", cfg.iters) if until is not None else None
            workers = chains if until is not None else min(jobs, chains)
            last = [0] * chains
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
                futs = [ex.submit(_worker, (y, cfg, pri, seeds[c], inits[c], c, q, stop_at))
                        for c in range(chains)]
                while not all(f.done() for f in futs):
                    try:
                        c, it, k, s, draw = q.get(timeout=0.2)
                        last[c] = it + 1
                        mon.add(c, draw)
                        show(c, k, s)
                    except queue_mod.Empty:
                        pass
                    if stop_at is not None and stop_at.value == cfg.iters and mon.done():
                        stop_at.value = max(last) + 2  # the chains behind catch up
                outs = [f.result() for f in futs]
    pbar.close()
    res = summarize(outs, cfg)
    res["diagnostics"]["stopped_by"] = mon.reason
    res["diagnostics"]["sweeps_per_chain"] = int(res["traces"]["n_states_all"].shape[1])
    res["diagnostics"]["wall_seconds"] = float(time.monotonic() - tic)
    return res


def summarize(outs: list[dict], cfg: SamplerConfig) -> dict:
    """Combine chain accumulators into point estimates, similarity matrices and diagnostics."""
    acc = outs[0]["acc"]
    for o in outs[1:]:
        acc.merge(o["acc"])
    n = acc.n
    psm_n = acc.neuron_co / n
    psm_s = (acc.state_co / n).astype(np.float32)
    z_hat = point_estimate(psm_n, cfg.loss)
    T = acc.lat_sum.shape[1]
    s_hat = expand_grid(point_estimate(psm_s.astype(float), cfg.loss), acc.grid, T)
    mean, lo, hi = trajectory_summary(acc, z_hat)
    # chains stopped by --until-converged in parallel processes may end a few sweeps apart (the
    # stop request reaches them with a lag): the traces are cut to the shortest
    n_kept = min(len(o["acc"].loglik) for o in outs)
    n_all = min(len(o["n_clusters_all"]) for o in outs)
    traces = {name: np.array([getattr(o["acc"], name)[:n_kept] for o in outs], dtype=float)
              for name in ("n_clusters", "n_states", "loglik")}
    diag: dict = summarize_traces(traces)
    kinds = ("split", "merge", "move", "anneal_split", "anneal_merge", "relabel", "relabel_bin",
             "state_split", "state_merge", "noise_scale", "scale_mu_scale",
             "scale_mu_shift", "scale_latent", "scale_dispersion", "swap")
    stats = {k: sum(o["stats"].get(k, 0) for o in outs) for kind in kinds for k in (f"{kind}_prop", f"{kind}_acc")}
    for kind in kinds:
        diag[f"{kind}_acceptance"] = stats[f"{kind}_acc"] / max(stats[f"{kind}_prop"], 1)
    sweeps = sum(o.get("sweeps", cfg.iters) for o in outs)
    timing = {b: float(sum(o["timing"].get(b, 0.0) for o in outs) / sweeps) for b in BLOCKS}
    kmax = int(traces["n_clusters"].max())
    return {
        "neuron_clusters": z_hat,
        "state_sequence": s_hat,
        "neuron_similarity": psm_n,
        "state_similarity": psm_s,
        "state_similarity_bins": acc.grid,
        "traces": {k: v for k, v in traces.items()}
        | {"n_clusters_all": np.array([o["n_clusters_all"][:n_all] for o in outs]),
           "n_states_all": np.array([o["n_states_all"][:n_all] for o in outs])},
        "chain_final_clusters": np.stack([o["final_z"] for o in outs]),  # compare chains
        "n_clusters_posterior": np.bincount(traces["n_clusters"].astype(int).ravel(), minlength=kmax + 1) / traces["n_clusters"].size,
        "latent": {"mean": mean, "lower": lo, "upper": hi},
        "parameters": {"d_mean": acc.d_sum / n, "r_mean": acc.r_sum / n,
                       "state_occupancy": acc.state_occ / max(acc.state_occ.sum(), 1)},
        "diagnostics": diag,
        "seconds_per_sweep": timing,
        "n_samples": int(n),
    }
