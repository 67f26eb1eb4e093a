"""Structure-versus-function figure: inferred and anatomical matrices side by side, plus null."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from neurodyn.analysis import compare_result
from neurodyn.io.layout import group_name
from neurodyn.plots import style


def draw(result_path: Path, outdir: Path, fmt: str = "png") -> list[Path]:
    """One figure per scored source in ``compare.h5``."""
    import matplotlib.pyplot as plt

    style.use()
    paths = []
    caption = style.caption_from(result_path)
    res = compare_result.read(result_path)
    con, syn = res.connectome, res.synapses
    for key, g in res.scores.items():
        if g.inferred is None:
            continue
        a = g.attrs
        lab = [str(x) for x in g.labels]
        order = g.order
        s = np.asarray(g.inferred)[np.ix_(order, order)]
        m = np.asarray(g.anatomical)[np.ix_(order, order)]
        lab = [lab[i] for i in order]
        null = np.empty(0) if g.null_roc is None else np.asarray(g.null_roc)
        n = len(lab)
        side = 4.2 if n <= 40 else min(9.0, 2.0 + 0.055 * n)  # room for neuron names
        fig = plt.figure(figsize=(2 * side + 4.1, side + 1.4))
        gs = fig.add_gridspec(1, 3, width_ratios=[1, 1, 0.55], wspace=0.35)
        ax1, ax2, ax3 = (fig.add_subplot(gs[0, i]) for i in range(3))
        s_off = s.copy()
        np.fill_diagonal(s_off, np.nan)
        im1 = ax1.imshow(s_off, cmap=style.SEQUENTIAL, interpolation="nearest")
        ax1.set_title(f"inferred: {a.get('source', key)}")
        fig.colorbar(im1, ax=ax1, fraction=0.046, pad=0.02, label="|interaction| (a.u.)")
        im2 = ax2.imshow(np.log1p(m), cmap="cividis", interpolation="nearest")
        ax2.set_title(f"anatomical: {con} ({syn})")
        fig.colorbar(im2, ax=ax2, fraction=0.046, pad=0.02, label="log(1 + synapse count)")
        for ax in (ax1, ax2):
            style.label_matrix_axes(ax, lab)
            ax.set_xlabel(ax.get_xlabel() or "postsynaptic / neuron j")
            ax.set_ylabel(ax.get_ylabel() or "presynaptic / neuron i")
        if null.size:
            ax3.hist(null, bins=30, color=style.color(1), alpha=0.8, label="label-permutation null")
        ax3.axvline(float(a.get("roc_auc", np.nan)), color=style.color(5), lw=2, label="observed")
        ax3.set_xlabel("ROC AUC")
        ax3.set_ylabel("permutations (count)")
        ax3.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax3.legend(frameon=False, loc="upper left")
        ax3.set_title(f"ROC AUC {a.get('roc_auc', np.nan):.3f} (p={a.get('p_roc', np.nan):.3g})\n"
                      f"PR AUC {a.get('pr_auc', np.nan):.3f} (chance "
                      f"{a.get('chance_pr_auc', np.nan):.3f}, p={a.get('p_pr', np.nan):.3g})",
                      fontsize=8)
        extra = (f"{a.get('n_neurons', len(lab))} shared neurons, "
                 f"{a.get('n_only_inferred', 0)} only inferred, "
                 f"{a.get('n_only_connectome', 0)} only in connectome")
        fig.subplots_adjust(left=0.07, right=0.98, top=0.88)
        style.add_caption(fig, caption.says(
            f"Inferred interactions ({a.get('source', key)}, left; colour: absolute "
            f"interaction) beside the anatomical connectome ({con}"
            + (f", {syn}" if syn else "") + "; middle; colour: log(1 + synapse count)) "
            f"over the {len(lab)} shared neurons, in the same order; right, the ROC AUC of "
            "the inferred weights as a predictor of an anatomical connection against its "
            "label-permutation null (histogram) with the observed value (line).", extra))
        paths.append(style.save(fig, outdir, f"compare_{style.safe_name(group_name(key))}", fmt))
    return paths
