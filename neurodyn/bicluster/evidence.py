"""Log evidence of a fixed neuron partition by thermodynamic integration.

    log p(y | z, r) = integral over beta in [0, 1] of E_beta[log p(y | psi, r)]

where E_beta is the expectation under the tempered posterior prior x likelihood^beta with the
neuron labels z and the dispersions r held fixed; everything else (theta, trajectories,
dynamics, noise covariances, states and transitions) is integrated. Each rung of the beta
ladder runs the sampler's own blocks at that beta (:class:`~.target.Model` with ``beta``,
labels fixed), started from the previous rung's state, so the ladder anneals from the prior.

Use it when two chains stop at different partitions: a large evidence gap says the sampler is
stuck in the worse one; a small one says the posterior itself has several modes.
"""

from __future__ import annotations

import numpy as np

from neurodyn.bicluster.model import Priors, SamplerConfig
from neurodyn.bicluster.sampler import Kernel
from neurodyn.bicluster.states import sample_ab_prior
from neurodyn.bicluster.target import Model


def log_evidence(
    y: np.ndarray, z: np.ndarray, cfg: SamplerConfig, pri: Priors, seed: int,
    r: np.ndarray | float | None = None, rungs: int = 40, sweeps: int = 40, discard: int = 10,
    beta_min: float = 1e-4,
) -> dict:
    """Thermodynamic-integration estimate of log p(y | z, r).

    Parameters
    ----------
    y : (N, T) counts.   z : (N,) neuron labels (any integers).   seed : random seed.
    r : fixed NB dispersions (scalar or (N,)); default the prior mean r_shape / r_rate (the
        Poisson option always uses its own fixed r).
    rungs : number of betas, geometric from ``beta_min`` to 1; [0, beta_min] is taken at the
        first rung's value.
    sweeps, discard : sweeps per rung, of which the first ``discard`` are not averaged.

    Returns
    -------
    dict with ``log_evidence``, its Monte Carlo standard error ``se`` (batch means per rung; the
    discretisation error of the ladder is not included), ``betas`` and ``mean_loglik`` per rung.
    """
    if sweeps - discard < 4:
        raise ValueError("need at least 4 averaged sweeps per rung")
    if np.shape(z) != (np.shape(y)[0],):
        raise ValueError(f"z has shape {np.shape(z)}; need one label per neuron ({np.shape(y)[0]})")
    if not 0.0 < beta_min < 1.0:
        raise ValueError("beta_min must be in (0, 1)")
    rng = np.random.default_rng(seed)
    model = Model(y, cfg, pri, beta=beta_min)
    kernel = Kernel(model)
    _, z = np.unique(np.asarray(z), return_inverse=True)
    st = model.init_state("one", rng)
    st.z = z.astype(np.int64)
    st.xs = [np.zeros((model.T, model.q)) for _ in range(int(z.max()) + 1)]
    st.dyn = [sample_ab_prior(st.Q, pri.k0, rng) for _ in st.xs]
    if model.nb:
        st.r = np.broadcast_to(pri.r_shape / pri.r_rate if r is None else r, (model.N,)).astype(float)
    psi = model.psi(st)
    betas = np.geomspace(beta_min, 1.0, rungs)
    means, ses = np.empty(rungs), np.empty(rungs)
    for k, beta in enumerate(betas):
        model.beta = float(beta)
        ll = np.empty(sweeps - discard)
        for it in range(sweeps):
            psi = kernel.sweep(st, psi, rng, labels=False)
            if it >= discard:
                ll[it - discard] = model.loglik(st, psi)
        means[k] = ll.mean()
        batches = ll[: ll.size // 4 * 4].reshape(4, -1).mean(axis=1)
        ses[k] = batches.std(ddof=1) / 2.0
    w = np.zeros(rungs)  # trapezoid weights, plus [0, beta_min] at the first rung
    w[:-1] += 0.5 * np.diff(betas)
    w[1:] += 0.5 * np.diff(betas)
    w[0] += beta_min
    return {"log_evidence": float(w @ means), "se": float(np.sqrt(np.sum((w * ses) ** 2))),
            "betas": betas, "mean_loglik": means}
