"""``neurodyn states`` (HMM-GLM state switching) and ``neurodyn simulate hmmglm``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import Out, Seed, app, done, simulate_app
from neurodyn.io.outputs import check_output


def summary_lines(path: Path) -> list[str]:
    """What a user must see of a states file: selection tables, held-out gain, dwell times."""
    from neurodyn.io.store import open_h5, read_tree
    from neurodyn.selection import from_tree

    out = []
    with open_h5(path) as f:
        for name, g in f.items():
            if not hasattr(g, "keys"):
                continue
            who = str(g.attrs.get("id", name.replace("|", "/")))
            if "model_selection" in g and "@parameter" in read_tree(g["model_selection"]):
                out += [f"{who}: {line}" for line in from_tree(read_tree(g["model_selection"])).lines()]
            a = g.attrs
            bits = []
            if "n_states" in a:
                bits.append(f"{int(a['n_states'])} states")
            if "heldout_gain" in a:
                bits.append(f"held-out {float(a['heldout_score']):+.4f} {a['heldout_unit']}, "
                            f"gain over 1 state {float(a['heldout_gain']):+.4f}")
            elif "heldout_bits_per_spike" in a:
                bits.append(f"held-out {float(a['heldout_bits_per_spike']):+.4f} "
                            f"{a.get('heldout_unit', '')} over a constant rate")
            if "mean_dwell_s" in a:
                bits.append(f"mean dwell {float(a['mean_dwell_s']) * 1e3:.0f} ms, "
                            f"{int(a['n_switches'])} switches")
            if bits:
                out.append(f"{who}: " + "; ".join(bits))
    return out


def summary(path: Path) -> None:
    """Print :func:`summary_lines` (silent under --quiet)."""
    from neurodyn.cli._app import STATE

    if STATE["verbose"] >= 0:
        for line in summary_lines(path):
            typer.echo(line)

PRIOR_HELP = ("Weight prior: none (each state's W free), gaussian (W_k ~ N(W0, sigma^2), shared W0 "
              "learned), onehot (W_k = class * strength, classes inh/none/exc with a learned "
              "prior table shared by states; exact per-pair conditional class posteriors).")


@app.command("states")
def states_cmd(
    input: Annotated[Path, typer.Argument(help="Recordings file (e.g. run/recordings.h5).")],
    out: Out = Path("states.h5"),
    states: Annotated[str, typer.Option("--states", "-k", help="Number of states, or 'auto' (held-out CV over --states-range).")] = "5",
    states_range: Annotated[str, typer.Option(help="Candidates for --states auto: 2-8 or 2,4,6.")] = "2-8",
    prior: Annotated[str, typer.Option(help=PRIOR_HELP)] = "none",
    observation: Annotated[str, typer.Option(help="auto (spikes: poisson; calcium/other: gaussian), poisson, bernoulli (events = count > 0) or gaussian (identity link on z-scored traces; used for calcium unless deconvolved events are given as a spikes recording).")] = "auto",
    link: Annotated[str, typer.Option(help="Poisson link: softplus, exp, or sigmoid (rate-capped, as in Li et al. 2024).")] = "softplus",
    rate_cap: Annotated[float, typer.Option(help="Maximum rate (counts/bin) of the sigmoid link.")] = 5.0,
    lags: Annotated[int, typer.Option(min=1, help="History length in bins of the normalised exponential basis.")] = 5,
    tau: Annotated[float, typer.Option(min=0.0, help="Decay (bins) of the basis; 0 = lags/2. With --learn-basis, the starting value.")] = 0.0,
    learn_basis: Annotated[bool, typer.Option("--learn-basis/--fixed-basis", help="Learn the basis decay tau inside EM (one tau shared by all neurons and states; Newton steps in log tau after each M-step, bounded to 0.05..100*lags bins). Use when the history time scale is unknown; the learned tau, basis and its trace are saved.")] = False,
    self_history: Annotated[bool, typer.Option("--self-history/--no-self-history", help="Let each neuron's own history drive it.")] = True,
    restarts: Annotated[int, typer.Option(min=1, help="EM restarts (k-means initialisations drawn from --seed).")] = 3,
    max_iter: Annotated[int, typer.Option(min=1, help="EM iteration cap.")] = 100,
    tol: Annotated[float, typer.Option(min=0.0, help="Convergence: relative change of the EM objective.")] = 1e-5,
    mstep_iter: Annotated[int, typer.Option(min=1, help="Cap on Newton steps per M-step (each (state, neuron) GLM stops on its own Newton decrement).")] = 25,
    sticky: Annotated[float, typer.Option(min=0.0, help="Extra Dirichlet pseudo-count on self-transitions.")] = 10.0,
    sigma: Annotated[float, typer.Option(min=0.0, help="Gaussian prior sd of W_k around W0; 0 = learn it.")] = 0.1,
    l2: Annotated[float, typer.Option(min=0.0, help="Ridge on W for --prior none.")] = 1e-2,
    test_fraction: Annotated[float, typer.Option(help="Last fraction of every trial held out for the bits/spike score.")] = 0.2,
    folds: Annotated[int, typer.Option(min=2, help="Time-block folds for --states auto.")] = 3,
    trial_length: Annotated[int, typer.Option(min=0, help="Bins per trial when a recording holds equal-length trials back to back (0: the recording's meta sequence_length, else one sequence).")] = 0,
    recordings: Annotated[str, typer.Option(help="Comma-separated recording ids (default all).")] = "",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Parallel processes for the --states auto scan (candidates x folds; -1: all cores). Results do not depend on it.")] = 1,
    # -- Gaussian HMM on oscillation features (EEG/MEG/LFP) ----------------------------------
    features: Annotated[str, typer.Option(help="Model: glm (HMM-GLM on the traces), bandpower (Gaussian HMM on log band-power envelopes per channel and band, in --window windows), tde (Gaussian HMM on the time-delay embedded signal, +-embed lags, PCA-reduced: osl-dynamics / HMM-MAR), auto (bandpower for EEG recordings, glm otherwise).")] = "auto",
    bands: Annotated[str, typer.Option(help="Frequency bands (Hz) for bandpower features and the power maps: name=lo-hi,...")] = "delta=1-4,theta=4-8,alpha=8-13,beta=13-30",
    window: Annotated[float, typer.Option(help="bandpower: window (s) over which band power is averaged; one model time step.")] = 0.1,
    embed: Annotated[int, typer.Option(min=0, help="tde: lags (samples) on each side of every sample.")] = 7,
    pca: Annotated[int, typer.Option(min=0, help="Principal components kept (0: tde 2 x channels, bandpower all features).")] = 0,
    covariance: Annotated[str, typer.Option(help="Gaussian state covariance: full, diag, or auto (tde full, bandpower diag).")] = "auto",
    min_dwell: Annotated[float, typer.Option(min=0.0, help="Minimum time (s) a state lasts once entered (exact, by an expanded state chain); 0 = none.")] = 0.0,
    # ------------------------------------------------------------------------------------------
    joint: Annotated[bool, typer.Option("--joint/--per-recording", help="--joint: ONE model (shared W_k, biases, transitions, initial distribution, basis, prior) fitted to all selected recordings, e.g. trials or animals of one set recorded with the same channels; each recording keeps its own sequences (history and held-out blocks never cross recordings) and gets its own posterior and Viterbi path, parameters are written once under /joint. Needs identical channel labels in the same order and one observation model; a neuron is dropped only if silent in every recording. --per-recording (default): an independent model per recording.")] = False,
    seed: Seed = 0,
) -> None:
    """Hidden brain / network states per recording: HMM-GLM, or Gaussian HMM on EEG features.

    --features glm (default for spikes and calcium): a hidden Markov model whose states are
    coupled GLMs. --features bandpower (default for EEG) or tde: a Gaussian HMM on band-power
    envelopes or time-delay embedded signals; output adds per-state power maps (dB vs the
    mean), spectra per channel, dwell times and occupancy. Every fit is scored on held-out
    data against a 1-state (no switching) model; --states auto prints each candidate's
    cross-validated score with its standard error, the choice and why.

    Drive of neuron n in state k: bias_k[n] + sum_m W_k[n, m] h_t[m], h the history filtered
    by a normalised exponential basis. Spike counts use a Poisson (or Bernoulli) model;
    calcium traces use an explicit Gaussian observation model on z-scored traces. Silent
    neurons are dropped with a warning. Output: posterior, Viterbi path, W_k, biases,
    transitions, W0 / adjacency, log-likelihood trace and held-out bits/spike per recording
    (with --joint: parameters once under /joint, posterior and Viterbi path per recording).
    """
    check_output(out, [input])

    from neurodyn.hmmglm.stage import run

    path = run(input, out, seed=seed, states=states, states_range=states_range, prior=prior,
               observation=observation, link=link, rate_cap=rate_cap, lags=lags, tau=tau,
               self_history=self_history, restarts=restarts, max_iter=max_iter, tol=tol,
               mstep_iter=mstep_iter, sticky=sticky, sigma=sigma, l2=l2,
               test_fraction=test_fraction, folds=folds, trial_length=trial_length,
               recordings=recordings, joint=joint, learn_basis=learn_basis, jobs=jobs,
               features=features, bands=bands, window=window, embed=embed, pca=pca,
               covariance=covariance, min_dwell=min_dwell)
    summary(path)
    done(path, "states" + (", joint over recordings" if joint else ""))


@simulate_app.command("hmmglm")
def simulate_hmmglm_cmd(
    out: Out = Path("sim_hmmglm.h5"),
    states: Annotated[int, typer.Option(min=1, help="Hidden states K.")] = 5,
    neurons: Annotated[int, typer.Option(min=2, help="Neurons N.")] = 20,
    sequences: Annotated[int, typer.Option(min=1, help="Trials (sequences).")] = 50,
    length: Annotated[int, typer.Option(min=2, help="Bins per trial.")] = 2000,
    resample: Annotated[float, typer.Option(min=0.0, max=1.0, help="Fraction of pairs each state redraws from the shared connectome.")] = 0.2,
    stay: Annotated[float, typer.Option(min=0.0, max=1.0, help="Self-transition probability.")] = 0.99,
    fs: Annotated[float, typer.Option(help="Bins per second (time axis only).")] = 100.0,
    lags: Annotated[int, typer.Option(min=1, help="Lags of the history basis.")] = 5,
    tau: Annotated[float, typer.Option(min=0.0, help="Decay (bins) of the history basis; 0 = lags/2.")] = 0.0,
    recordings: Annotated[int, typer.Option(min=1, help="Split the trials into this many recordings (sim/rec0, ...) drawn from the same model, e.g. to test --joint.")] = 1,
    seed: Seed = 0,
) -> None:
    """Spike counts from the HMM-GLM with a shared connectome (defaults: the published setting,
    K=5, N=20, 50 trials x 2,000 bins, classes inh/none/exc with p = 0.1/0.8/0.1).

    Trials are stored back to back in one spikes recording (meta sequence_length), or split
    into --recordings recordings; true state intervals are their events; /ground_truth
    holds states (all trials concatenated, recordings in order), weights, biases,
    transitions, adjacency, connectome, strength, basis and recording_stops (bins).
    """
    import numpy as np

    check_output(out)

    from neurodyn.errors import InputError
    from neurodyn.hmmglm.recordings import to_recordings
    from neurodyn.hmmglm.simulate import simulate_hmmglm
    from neurodyn.io.store import write_recordings

    if recordings > sequences:
        raise InputError("--recordings", f"{recordings} recordings need at least as many "
                                         f"trials (--sequences {sequences})")
    params = dict(n_states=states, n_neurons=neurons, n_sequences=sequences, seq_len=length,
                  resample=resample, stay=stay, fs=fs, lags=lags, tau=tau,
                  recordings=recordings, seed=seed)
    y, truth = simulate_hmmglm(states, neurons, sequences, length, resample=resample, stay=stay,
                               n_lags=lags, tau=tau or None, seed=seed)
    recs = to_recordings(y, truth, recordings, fs=fs, seq_len=length)
    truth["recording_stops"] = np.cumsum([r.n_samples for r in recs])
    path = write_recordings(out, recs, params=params, seed=seed, stage="simulate-hmmglm",
                            extra={"ground_truth": truth})
    done(path, f"{sequences} trials x {length} bins in {recordings} recording(s), "
               f"{neurons} neurons, {states} states")
