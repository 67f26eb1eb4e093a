"""Figures of the ``states`` stage: state timeline; HMM-GLM weights, priors, EM trace;
Gaussian HMM power maps and spectra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from neurodyn.hmmglm import result
from neurodyn.hmmglm.result import StatesFit
from neurodyn.plots import style


def draw(result_path: Path, outdir: Path, fmt: str = "png") -> list[Path]:
    """Draw the HMM-GLM figures of every recording in a ``states.h5``.

    Per recording: ``states_timeline`` (posterior over time, Viterbi raster, events shaded).
    Per fitted model (each recording, or once for ``/joint`` of a joint fit, named
    ``joint``): ``states_weights`` (W_k per state, shared colour scale), ``states_prior``
    (W0 for the gaussian prior; the learned class table and argmax adjacency for onehot) and
    ``states_trace`` (EM objective per iteration, and the basis decay tau when learned).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style.use()
    result_path, outdir = Path(result_path), Path(outdir)
    cap = style.caption_from(result_path)
    out: list[Path] = []
    for rid, d in result.read(result_path).items():
        name = style.safe_name(rid)
        if d.posterior is not None:
            out.append(_timeline(plt, style, d, rid, name, cap, outdir, fmt))
        if d.has_parameters:
            out += _parameters(plt, style, d, name, cap, outdir, fmt)
        if d.power_maps is not None:
            out.append(_spectral(plt, style, d, rid, name, cap, outdir, fmt))
    return out


def _spectral(plt, style, d: StatesFit, rid: str, name: str, cap: str, outdir: Path,
              fmt: str) -> Path:
    """Power map per state and band (dB vs the mean, channels x states) and each state's
    spectrum averaged over channels."""
    maps = np.asarray(d.power_maps, float)  # (K, C, B)
    K, C, B = maps.shape
    labels = [str(x) for x in d.labels]
    bands = [str(b) for b in d.bands]
    fig, axes = plt.subplots(1, B + 1, figsize=(2.6 * B + 4.2, max(3.2, 0.16 * C + 1.6)),
                             gridspec_kw={"width_ratios": [1] * B + [2.2]})
    v = float(np.abs(maps).max()) or 1.0
    for b in range(B):
        ax = axes[b]
        im = ax.imshow(maps[:, :, b].T, aspect="auto", cmap=style.DIVERGING, vmin=-v, vmax=v)
        ax.set_title(bands[b])
        ax.set_xticks(range(K))
        ax.set_xlabel("state")
        if b == 0 and C <= 64:
            ax.set_yticks(range(C))
            ax.set_yticklabels(labels, fontsize=6)
        else:
            ax.set_yticks([])
    fig.subplots_adjust(bottom=0.32, wspace=0.3)
    x0, x1 = axes[0].get_position().x0, axes[B - 1].get_position().x1
    cax = fig.add_axes((x0, 0.13, x1 - x0, 0.025))
    fig.colorbar(im, cax=cax, orientation="horizontal",
                 label="band power vs the recording's mean (dB)")
    ax = axes[B]
    f = np.asarray(d.frequencies, float)
    spec = np.asarray(d.spectra, float).mean(axis=1)
    for k in range(K):
        ax.semilogy(f, spec[k], color=style.color(k), label=f"state {k}")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("PSD, channel mean")
    ax.legend(fontsize=7)
    dwell = d.attr("mean_dwell_s")
    ax.set_title(f"{rid}: spectra" + (f" (mean dwell {1e3 * float(dwell):.0f} ms)"
                                      if dwell is not None else ""))
    style.add_caption(fig, cap.says(
        f"Gaussian hidden Markov model with {K} states fitted to {rid} ({C} channels): band "
        "power of each state relative to the recording's mean, per channel (rows) and band "
        "(panels; colour: dB, red above, blue below the mean), and each state's power "
        "spectrum averaged over channels (right, log scale).",
        "" if C <= 64 else f"{C} channels: channel names not drawn."))
    return style.save(fig, outdir, f"states_power_{name}", fmt)


def _timeline(plt, style, d: StatesFit, rid: str, name: str, cap: str, outdir: Path,
              fmt: str) -> Path:
    """Posterior stack, Viterbi raster and events of one recording."""
    post = np.asarray(d.posterior, float)
    K = post.shape[1]
    t = np.asarray(d.time, float)
    events = d.events
    # 1. timeline (the events row only when the recording has events)
    has_ev = len(events) > 0
    fig, axes = plt.subplots(2 + has_ev, 1, figsize=(10, 4.6 if has_ev else 4.0), sharex=True,
                             gridspec_kw={"height_ratios": [3, 1, 0.7][:2 + has_ev]})
    a1, a2 = axes[:2]
    tt, pp = style.decimate(t, post)
    a1.stackplot(tt, pp.T, colors=style.colors(K), labels=[f"state {k}" for k in range(K)],
                 lw=0)
    a1.set_ylim(0, 1)
    a1.set_ylabel("p(state)")
    a1.legend(loc="upper right", ncol=min(K, 8), fontsize=7)
    a1.set_title(f"{rid}: state posterior" + (", Viterbi path and events" if has_ev
                                              else " and Viterbi path"))
    tz, zz = style.decimate_labels(t, np.asarray(d.viterbi))
    a2.imshow(zz[None, :], aspect="auto", cmap=style.category_cmap(K), vmin=-0.5,
              vmax=K - 0.5, extent=(tz[0], tz[-1], 0, 1), interpolation="nearest")
    a2.set_yticks([])
    a2.set_ylabel("Viterbi")
    if has_ev:
        style.shade_events(axes[2], events, alpha=0.5)
        axes[2].set_yticks([])
        axes[2].set_ylabel("events")
    axes[-1].set_xlabel("time (s)")
    model = "hidden Markov model" if d.power_maps is not None else "HMM-GLM"
    kinds = ", ".join(dict.fromkeys(str(x) for x in events["label"]))[:120] if has_ev else ""
    style.add_caption(fig, cap.says(
        f"States of the {K}-state {model} fitted to {rid}: posterior probability of each "
        "state over time (top, stacked to 1), the most likely state sequence (Viterbi path, "
        "middle; colours as above)" + (f" and the recording's events ({kinds}, bottom)."
                                       if has_ev else "."),
        "" if has_ev else "The recording has no events: no event row drawn."))
    return style.save(fig, outdir, f"states_timeline_{name}", fmt)


def _weight_unit(d: StatesFit) -> str:
    """Unit of the coupling weights: log-rate (Poisson exp), drive (softplus/sigmoid), or
    z-score per z-score (Gaussian)."""
    obs = str(d.attr("observation", ""))
    if obs == "gaussian":
        return "z-score per z-scored history"
    link = str(d.attr("link", ""))
    return "log rate per filtered count" if link == "exp" else "drive per filtered count"


def _parameters(plt, style, d: StatesFit, name: str, cap: str, outdir: Path, fmt: str
                ) -> list[Path]:
    """Weights per state, learned prior and EM trace of one fitted model."""
    out: list[Path] = []
    labels = [str(x) for x in d.labels]
    # 2. weights per state
    W = np.asarray(d.weights, float)
    K = W.shape[0]
    vmax = float(np.abs(W).max()) or 1.0
    n = len(labels)
    side = 2.8 if n <= 30 else min(6.5, 2.2 + 0.04 * n)  # room for readable neuron names
    cols = min(K, 5 if n <= 30 else 3)
    rows = int(np.ceil(K / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols + 1.2, (side + 0.6) * rows),
                             squeeze=False)
    for k in range(rows * cols):
        ax = axes.flat[k]
        if k >= K:
            ax.axis("off")
            continue
        im = ax.imshow(W[k], cmap=style.DIVERGING, vmin=-vmax, vmax=vmax,
                       interpolation="nearest")
        ax.set_title(f"W state {k}", bbox=dict(facecolor=style.color(k), alpha=0.35, lw=0,
                                                 boxstyle="round,pad=0.2"))
        first_col = k % cols == 0
        style.label_matrix_axes(ax, labels, x=True, y=first_col)
        if not first_col:
            ax.set_yticks([])
        if k != (rows - 1) * cols:  # the axis label (and its "k of n names" note) once
            ax.set_xlabel("")
    unit = _weight_unit(d)
    style.add_caption(fig, cap.says(
        f"Coupling weights of the {K}-state HMM-GLM, one panel per state: W[post, pre] is the "
        "effect of the presynaptic neuron's filtered history (columns) on the postsynaptic "
        f"neuron's drive (rows), {unit}; one colour scale for all states (red excitatory, blue "
        "inhibitory)."))
    fig.subplots_adjust(right=0.88, wspace=0.15)
    cax = fig.add_axes((0.9, 0.3, 0.012, 0.55))
    fig.colorbar(im, cax=cax, label=f"coupling W[post, pre]\n({unit})")
    out.append(style.save(fig, outdir, f"states_weights_{name}", fmt))
    # 3. learned prior
    if d.W0 is not None:  # gaussian prior
        fig, ax = plt.subplots(figsize=(4.5, 4))
        W0 = np.asarray(d.W0, float)
        v = float(np.abs(W0).max()) or 1.0
        im = ax.imshow(W0, cmap=style.DIVERGING, vmin=-v, vmax=v)
        ax.set_title(f"shared mean W0 (sigma={float(d.attr('sigma', np.nan)):.3g})")
        style.label_matrix_axes(ax, labels)
        fig.colorbar(im, ax=ax, shrink=0.8, label=f"W0 ({_weight_unit(d)})")
        style.add_caption(fig, cap.says(
            "Gaussian prior of the HMM-GLM: the shared mean coupling W0 around which each "
            "state's weights vary with standard deviation sigma (rows postsynaptic, columns "
            "presynaptic)."))
        out.append(style.save(fig, outdir, f"states_prior_{name}", fmt))
    elif d.adjacency_prior is not None:  # onehot prior
        tab = np.asarray(d.adjacency_prior, float)
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
        for ax, c, title in zip(axes, (0, 2), ("p(inhibitory)", "p(excitatory)")):
            im = ax.imshow(tab[..., c], cmap=style.SEQUENTIAL, vmin=0, vmax=1)
            ax.set_title(f"learned prior {title}")
            style.label_matrix_axes(ax, labels)
        fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04, label="prior probability")
        consensus = tab.argmax(-1) - 1
        axes[2].imshow(consensus, cmap=style.DIVERGING, vmin=-1, vmax=1)
        axes[2].set_title("prior argmax (blue inh, white none, red exc)")
        style.label_matrix_axes(axes[2], labels)
        style.add_caption(fig, cap.says(
            "One-hot prior of the HMM-GLM, learned and shared by all states: probability that "
            "each pair (rows postsynaptic, columns presynaptic) is inhibitory (left) or "
            "excitatory (middle), and the most probable class (right)."))
        out.append(style.save(fig, outdir, f"states_prior_{name}", fmt))
    # 4. EM trace
    tr = np.asarray(d.loglik_trace, float)
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    fig.subplots_adjust(left=0.2, right=0.84)
    ax.plot(np.arange(1, tr.size + 1), tr, marker=".", color=style.color(4))
    ax.set_xlabel("EM iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("log posterior (nats)")
    bits = d.attr("heldout_score")
    ax.set_title(f"EM objective; held-out {bits:.4f} {d.attr('heldout_unit', '')}"
                 if bits is not None else "EM objective")
    if d.tau_trace is not None:
        taus = np.asarray(d.tau_trace, float)
        ax2 = ax.twinx()
        ax2.plot(np.arange(1, taus.size + 1), taus, ls="--", color=style.color(1))
        tau = float(d.attr("tau", taus[-1]))
        dt = d.attr("bin_width_s")
        ax2.set_ylabel(f"basis tau (bins); learned {tau:.3g}"
                       + (f" = {1e3 * tau * float(dt):.3g} ms" if dt is not None else ""),
                       color=style.color(1))
    style.add_caption(fig, cap.says(
        "Convergence of EM: the objective (log posterior, nats) after each iteration"
        + ("; dashed, right axis: the learned decay tau of the history basis"
           if d.tau_trace is not None else "") + (f". Held-out score {bits:.4f} {d.attr('heldout_unit', '')} over a "
                       "constant rate per neuron." if bits is not None else ".")))
    out.append(style.save(fig, outdir, f"states_trace_{name}", fmt))
    return out
