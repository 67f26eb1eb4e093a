"""Assertions shared by the test modules."""

import os
import time


def wait_for_services(timeout: float = 900.0) -> None:
    """Wait until scripts/test.sh's background set-up (Chromium, a local SLURM) has finished.

    scripts/test.sh installs and starts those services while the suite runs and names a flag file
    in ``NEURODYN_SETUP_DONE`` (and its own process in ``NEURODYN_SETUP_PID``); without them (plain
    ``pytest``) there is nothing to wait for.
    """
    flag = os.environ.get("NEURODYN_SETUP_DONE")
    pid = int(os.environ.get("NEURODYN_SETUP_PID", "0") or 0)
    deadline = time.monotonic() + timeout
    while flag and not os.path.exists(flag) and time.monotonic() < deadline:
        if pid:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:  # the set-up ended without finishing: stop waiting
                return
            except PermissionError:
                pass
        time.sleep(0.5)


def one_line_error(result, *needles: str) -> None:
    """A CLI result failed with exit 2 and one ``error:`` line on stderr naming ``needles``."""
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for n in needles:
        assert n in err, err
    assert "Traceback" not in result.output


def assert_not_blank(path, min_colors: int = 20, min_ink: float = 0.02):
    """A PNG that shows something: many distinct colours and some share of non-background pixels."""
    import numpy as np
    from matplotlib.image import imread

    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, img.shape
    colors, counts = np.unique(rgb_codes(img), return_counts=True)
    assert colors.size > min_colors, f"{path}: {colors.size} colours"
    ink = 1.0 - counts.max() / counts.sum()  # pixels other than the background colour
    assert ink > min_ink, f"{path}: {ink:.3f} of the pixels differ from the background"
    return img


def artists(ax) -> int:
    """Data-bearing artists of an Axes (lines, images, collections, patches)."""
    return len(ax.lines) + len(ax.images) + len(ax.collections) + len(ax.patches)


def rgb_codes(img, stride: int = 2):
    """One integer per pixel (every ``stride``-th row and column) for its 8-bit RGB colour:
    quick to count, unlike unique rows of a full-size image."""
    import numpy as np

    rgb = (np.asarray(img)[::stride, ::stride, :3] * 255).astype(np.uint32).reshape(-1, 3)
    return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def fit_bicluster_sim(seed, iters, init="factor", burn_in=None, anneal_every=0, temperatures=1,
                      **sim):
    """One bi-clustering chain on a simulated recording: (truth, neuron and state point
    estimates, accumulator); the second half of the sweeps kept unless ``burn_in``."""
    from neurodyn.bicluster.model import Priors, SamplerConfig
    from neurodyn.bicluster.sampler import run_chain
    from neurodyn.bicluster.simulate import simulate_bicluster
    from neurodyn.bicluster.summaries import point_estimate

    rec, truth = simulate_bicluster(seed=seed, **sim)
    y = rec.data.T.astype(float)
    cfg = SamplerConfig(iters=iters, burn_in=iters // 2 if burn_in is None else burn_in, thin=2,
                        init=init, anneal_every=anneal_every, temperatures=temperatures)
    out = run_chain(y, cfg, Priors(), seed + 100)
    acc = out["acc"]
    z = point_estimate(acc.neuron_co / acc.n)
    s = point_estimate((acc.state_co / acc.n).astype(float))
    return truth, z, s, acc
