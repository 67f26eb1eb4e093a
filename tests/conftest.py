"""Shared fixtures: the real data beside the checkout, temporary run directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NEURODYN_SHARED", ROOT.parent / "shared")) / "data"
SAMPLE = ROOT / "sample_data"


def shared_file(relpath: str) -> Path:
    """Path of a file in ../shared/data; skips (fails under CI) when it is absent."""
    p = SHARED / relpath
    if not p.exists():
        msg = f"real data file {p} is absent (../shared is only beside the team's checkouts)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI must have it")
        pytest.skip(msg)
    return p


@pytest.fixture
def dag_h5() -> Path:
    return shared_file("celegans-dag2023/2022-07-26-31-data.h5")


@pytest.fixture
def varshney_mat() -> Path:
    return shared_file("celegans-connectome/ConnOrdered_040903.mat")


@pytest.fixture
def white_json() -> Path:
    return shared_file("celegans-connectome/white_1986_whole.json")


@pytest.fixture
def cli():
    """Invoke the Typer app in-process: ``cli("ingest", ...)`` -> click Result."""
    from typer.testing import CliRunner

    from neurodyn.cli import app

    runner = CliRunner()

    def run(*args: str | os.PathLike):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def saved_figures(monkeypatch):
    """The matplotlib Figures that ``neurodyn.plots.style.save`` writes, by file stem.

    Figure tests inspect what was drawn (axes, labels, plotted data) instead of file sizes.
    """
    from neurodyn.plots import style

    figs = {}
    real = style.save

    def save(fig, outdir, name, fmt="png", **kw):
        figs[style.safe_name(name)] = fig  # still inspectable after plt.close; its caption:
        return real(fig, outdir, name, fmt, **kw)  # fig.neurodyn_caption

    monkeypatch.setattr(style, "save", save)
    return figs
