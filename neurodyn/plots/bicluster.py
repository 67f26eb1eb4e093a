"""Figures of the bicluster stage (drawn from its output file; no computation here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from neurodyn.bicluster import result
from neurodyn.bicluster.diagnostics import RHAT_LIMIT
from neurodyn.plots import style

TRACE_LABELS = {"n_clusters": "neuron clusters", "n_states": "states",
                "loglik": "log-likelihood (nats)"}


def draw(result_path: Path, outdir: Path, fmt: str = "png") -> list[Path]:
    """Draw, per recording: similarity matrices reordered by cluster, the state sequence with
    events shaded, latent trajectories per cluster with 95% bands, and trace plots.

    Returns the written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style.use()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    cap = style.caption_from(result_path)
    written: list[Path] = []
    for who, r in result.read(result_path).items():
        rid = style.safe_name(who)
        z, s = r.neuron_clusters, r.state_sequence
        t = r.time
        n_cl, n_st = len(np.unique(z)), len(np.unique(s))
        fitted = (f"Bayesian bi-clustering (MCMC) of the spike counts of {who} "
                  f"({len(z)} neurons x {len(s)} bins)")
        # 1. similarity matrices
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        for ax, mat, lab, title in ((axes[0], r.neuron_similarity, z, "neurons"),
                                    (axes[1], r.state_similarity,
                                     s[r.state_similarity_bins],
                                     "time bins")):
            order = np.argsort(lab, kind="stable")
            im = ax.imshow(np.asarray(mat)[np.ix_(order, order)], vmin=0, vmax=1, cmap="viridis",
                           interpolation="nearest")
            bounds = np.flatnonzero(np.diff(lab[order])) + 0.5
            for bd in bounds:
                ax.axhline(bd, color="w", lw=0.6)
                ax.axvline(bd, color="w", lw=0.6)
            ax.set_title(f"{title} (ordered by cluster)")
        fig.suptitle("posterior similarity")
        fig.colorbar(im, ax=axes, shrink=0.8, label="P(same cluster) (probability)")
        n_sim = np.asarray(r.state_similarity).shape[0]
        style.add_caption(fig, cap.says(
            f"{fitted}: posterior probability that two neurons share a cluster (left) and that "
            f"two time bins share a dynamical state (right), ordered by the point estimate "
            f"({n_cl} neuron clusters, {n_st} states; white lines: boundaries).",
            f"Time bins: {n_sim} of {len(s)} evenly spaced bins shown." if n_sim < len(s) else ""))
        written.append(style.save(fig, outdir, f"bicluster_{rid}_similarity", fmt, tight=True))
        # 2. state sequence
        fig, ax = plt.subplots(figsize=(10, 2.5))
        ev = r.events
        onsets = ev["onset"].to_numpy(float)
        for on, off in zip(onsets, ev["offset"].to_numpy(float)):
            ax.axvspan(on, off, color="0.85", lw=0)
        ax.step(t, s, where="post", color=style.color(5))
        ax.set_yticks(np.unique(s))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("state")
        ax.set_title("state sequence (point estimate)"
                     + ("; shaded: recording events" if onsets.size else ""))
        style.add_caption(fig, cap.says(
            f"{fitted}: the point estimate of the dynamical state of each time bin ({n_st} "
            "states; the number of states is inferred)"
            + ("; shaded: the recording's events." if onsets.size else "."),
            "" if onsets.size else "The recording has no events to shade."))
        written.append(style.save(fig, outdir, f"bicluster_{rid}_states", fmt, tight=True))
        # 3. latent trajectories
        lat = r.latent
        mean, lo, hi = lat["mean"], lat["lower"], lat["upper"]
        K, _, q = mean.shape
        fig, axes = plt.subplots(K, 1, figsize=(10, 1.8 * K + 0.5), squeeze=False, sharex=True)
        for k in range(K):
            ax = axes[k, 0]
            for j in range(q):
                c = style.trace_color(j)
                ax.fill_between(t, lo[k, :, j], hi[k, :, j], color=c, alpha=0.25, lw=0)
                ax.plot(t, mean[k, :, j], color=c, lw=0.8, label="mu" if j == 0 else f"x{j}")
            ax.set_ylabel(f"cluster {k}\n({int(np.sum(z == k))} neurons)")
        axes[0, 0].legend(loc="upper right", ncol=q, fontsize=7)
        axes[-1, 0].set_xlabel("time (s)")
        fig.suptitle("latent trajectories (canonical form), posterior mean and 95% band")
        style.add_caption(fig, cap.says(
            f"{fitted}: latent trajectory of each of the {K} neuron clusters (one row each, "
            f"with its number of neurons): baseline mu and {q - 1} latent dimension(s) in "
            "canonical form (dimensionless), posterior mean (line) and 95% credible band "
            "(shaded)."))
        written.append(style.save(fig, outdir, f"bicluster_{rid}_latents", fmt, tight=True))
        # 4. traces
        tr = r.traces
        diag = r.diagnostics
        fig, axes = plt.subplots(3, 1, figsize=(8, 6.5), sharex=True)
        for ax, name in zip(axes, result.TRACE_NAMES):
            arr = np.atleast_2d(tr[name])
            for c in range(arr.shape[0]):
                ax.plot(arr[c], lw=0.8, label=f"chain {c}")
            ax.set_ylabel(TRACE_LABELS[name])
            if name != "loglik":  # counts of clusters and states: integer ticks, even if flat
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
                lo, hi = float(np.min(arr)), float(np.max(arr))
                ax.set_ylim(min(lo - 0.5, hi - 1.5), max(hi + 0.5, lo + 1.5))
            ax.set_title(_diag_text(diag, name), fontsize=8, loc="left")
        axes[0].legend(fontsize=7)
        axes[-1].set_xlabel("thinned sample (after burn-in)")
        axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
        n_chains = np.atleast_2d(tr["loglik"]).shape[0]
        worst = max((float(diag.get(f"rhat_{n}", np.nan)) for n in
                     result.TRACE_NAMES), key=lambda v: -1 if np.isnan(v) else v)
        style.add_caption(fig, cap.says(
            f"MCMC trace plots of {who} ({n_chains} chain(s), one colour each): number of "
            "neuron clusters, number of states and log-likelihood of each kept draw, with "
            "the rank-normalised R-hat and effective sample sizes above each panel.",
            f"R-hat {worst:.2f} > {RHAT_LIMIT}: the chains have not mixed; run longer "
            "(--iters, --until-converged)." if worst > RHAT_LIMIT else ""))
        written.append(style.save(fig, outdir, f"bicluster_{rid}_traces", fmt, tight=True))
    return written


def _diag_text(diag: dict, name: str) -> str:
    """"R-hat 1.23 (not mixed) | ESS bulk 45, tail 30" from a fit's diagnostics attributes."""
    rh = float(diag.get(f"rhat_{name}", np.nan))
    if np.isnan(rh):
        head = "R-hat n/a (one chain, or constant)"
    else:
        head = f"R-hat {rh:.3f}" + (" (not mixed)" if rh > RHAT_LIMIT else "")
    eb, et = (float(diag.get(f"ess_{k}_{name}", np.nan)) for k in ("bulk", "tail"))
    return f"{head} | ESS bulk {eb:.0f}, tail {et:.0f}"
