"""``neurodyn states`` (HMM-GLM state switching) and ``neurodyn simulate hmmglm``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from neurodyn.cli._app import Out, Seed, app, done, selection_lines, simulate_app
from neurodyn.cli.options import stage_command
from neurodyn.hmmglm.params import StatesParams
from neurodyn.io.outputs import check_output


def summary_lines(path: Path) -> list[str]:
    """What a user must see of a states file: selection tables, held-out gain, dwell times."""
    from neurodyn.io.store import open_h5, recording_id

    out = selection_lines(path)
    with open_h5(path) as f:
        for name, g in f.items():
            if not hasattr(g, "keys"):
                continue
            who = str(g.attrs.get("id", recording_id(name)))
            a = g.attrs
            bits = []
            if "n_states" in a:
                bits.append(f"{int(a['n_states'])} states")
            if "heldout_gain" in a:
                bits.append(f"held-out {float(a['heldout_score']):+.4f} {a['heldout_unit']} "
                            f"(1 state: {float(a['baseline_score']):+.4f}; gain of switching "
                            f"{float(a['heldout_gain']):+.4f})")
            if "mean_dwell_s" in a:
                bits.append(f"mean dwell {float(a['mean_dwell_s']) * 1e3:.0f} ms, "
                            f"{int(a['n_switches'])} switches")
            if "observation" in a and a["observation"] == "gaussian" and "dropped" in g \
                    and len(g["dropped"]):
                names = [v.decode() if isinstance(v, bytes) else str(v) for v in g["dropped"][()]]
                bits.append(f"not modelled (not brain channels): {', '.join(names)}")
            if bits:
                out.append(f"{who}: " + "; ".join(bits))
    return out


def summary(path: Path) -> None:
    """Print :func:`summary_lines` (silent under --quiet)."""
    from neurodyn.cli._app import STATE

    if STATE["verbose"] >= 0:
        for line in summary_lines(path):
            typer.echo(line)


@app.command("states")
@stage_command(StatesParams)
def states_cmd(
    input: Annotated[Path, typer.Argument(metavar="RECORDINGS", help="Recordings file (e.g. run/recordings.h5).")],
    out: Out = Path("run/states.h5"),
    seed: Seed = 0,
    *,
    params: StatesParams,
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

    Example: neurodyn states run/recordings.h5 --out run/states.h5 --states auto --prior gaussian
    --history 0.05
    """
    check_output(out, [input])

    from neurodyn.hmmglm.stage import run

    path = run(input, out, params, seed=seed)
    summary(path)
    done(path, "states" + (", joint over recordings" if params.joint else ""))


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

    Example: neurodyn simulate hmmglm --out sim.h5 --states 3 && neurodyn states sim.h5 -k 3
    """
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
