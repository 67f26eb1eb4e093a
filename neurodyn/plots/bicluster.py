"""Figures of the bicluster stage (drawn from its output file; no computation here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from neurodyn.bicluster.diagnostics import RHAT_LIMIT
from neurodyn.io.outputs import atomic_path
from neurodyn.io.store import open_h5, read_tree
from neurodyn.plots.style import RC


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def draw(result_path: Path, outdir: Path, fmt: str = "png") -> list[Path]:
    """Draw, per recording: similarity matrices reordered by cluster, the state sequence with
    events shaded, latent trajectories per cluster with 95% bands, and trace plots.

    Returns the written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with open_h5(result_path) as f:
        groups = {k: read_tree(g) for k, g in f.items()}
    for key, r in groups.items():
        rid = _safe(str(r.get("@id", key)))
        z, s = r["neuron_clusters"], r["state_sequence"]
        t = r["time"]
        # 1. similarity matrices
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        for ax, mat, lab, title in ((axes[0], r["neuron_similarity"], z, "neurons"),
                                    (axes[1], r["state_similarity"],
                                     s[np.asarray(r.get("state_similarity_bins", np.arange(s.size)))],
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
        fig.colorbar(im, ax=axes, shrink=0.8, label="P(same cluster)")
        written.append(_save(fig, outdir / f"bicluster_{rid}_similarity.{fmt}"))
        # 2. state sequence
        fig, ax = plt.subplots(figsize=(10, 2.5))
        ev = r.get("events", {})
        for on, off in zip(np.atleast_1d(ev.get("onset", [])), np.atleast_1d(ev.get("offset", []))):
            ax.axvspan(on, off, color="0.85", lw=0)
        ax.step(t, s, where="post", color="C3")
        ax.set_yticks(np.unique(s))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("state")
        ax.set_title("state sequence (point estimate); shaded: recording events")
        written.append(_save(fig, outdir / f"bicluster_{rid}_states.{fmt}"))
        # 3. latent trajectories
        lat = r["latent"]
        mean, lo, hi = lat["mean"], lat["lower"], lat["upper"]
        K, _, q = mean.shape
        fig, axes = plt.subplots(K, 1, figsize=(10, 1.8 * K + 0.5), squeeze=False, sharex=True)
        for k in range(K):
            ax = axes[k, 0]
            for j in range(q):
                ax.fill_between(t, lo[k, :, j], hi[k, :, j], color=f"C{j}", alpha=0.25, lw=0)
                ax.plot(t, mean[k, :, j], color=f"C{j}", lw=0.8, label="mu" if j == 0 else f"x{j}")
            ax.set_ylabel(f"cluster {k}\n({int(np.sum(z == k))} neurons)")
        axes[0, 0].legend(loc="upper right", ncol=q, fontsize=7)
        axes[-1, 0].set_xlabel("time (s)")
        fig.suptitle("latent trajectories (canonical form), posterior mean and 95% band")
        written.append(_save(fig, outdir / f"bicluster_{rid}_latents.{fmt}"))
        # 4. traces
        tr = r["traces"]
        diag = r.get("diagnostics", {})
        fig, axes = plt.subplots(3, 1, figsize=(8, 6.5), sharex=True)
        for ax, name in zip(axes, ("n_clusters", "n_states", "loglik")):
            arr = np.atleast_2d(tr[name])
            for c in range(arr.shape[0]):
                ax.plot(arr[c], lw=0.8, label=f"chain {c}")
            ax.set_ylabel(name)
            if name != "loglik":  # counts of clusters and states
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(_diag_text(diag, name), fontsize=8, loc="left")
        axes[0].legend(fontsize=7)
        axes[-1].set_xlabel("thinned sample (after burn-in)")
        written.append(_save(fig, outdir / f"bicluster_{rid}_traces.{fmt}"))
    return written


def _diag_text(diag: dict, name: str) -> str:
    """"R-hat 1.23 (not mixed) | ESS bulk 45, tail 30" from a fit's diagnostics attributes."""
    rh = float(diag.get(f"@rhat_{name}", np.nan))
    if np.isnan(rh):
        head = "R-hat n/a (one chain, or constant)"
    else:
        head = f"R-hat {rh:.3f}" + (" (not mixed)" if rh > RHAT_LIMIT else "")
    eb, et = (float(diag.get(f"@ess_{k}_{name}", np.nan)) for k in ("bulk", "tail"))
    return f"{head} | ESS bulk {eb:.0f}, tail {et:.0f}"


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, option="--outdir") as tmp:
            fig.savefig(tmp, dpi=RC["savefig.dpi"], bbox_inches="tight",  # as every figure
                        format=path.suffix.lstrip("."))
    finally:
        plt.close(fig)
    return path
