"""Shared fixtures: the real data beside the checkout, temporary run directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NEURODYN_SHARED", ROOT.parent / "shared")) / "data"
SAMPLE = ROOT / "sample_data"


def _needs_service(item: pytest.Item) -> bool:
    return item.get_closest_marker("slurm") is not None or item.get_closest_marker("browser") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run order for two workers: modules with long tests first (so that the last modules to start
    are short and both workers finish together), then the tests that need Chromium or SLURM (which
    scripts/test.sh sets up in the background meanwhile), then the rest. A module's own tests stay
    together (its long ones first); scripts/test.sh runs each module on one worker
    (``--dist loadfile``, modules in this order)."""
    long_modules = {it.path for it in items if it.get_closest_marker("slow") and not _needs_service(it)}

    module_index = {p: i for i, p in enumerate(dict.fromkeys(it.path for it in items))}

    def rank(item: pytest.Item) -> tuple[int, int, bool]:
        if _needs_service(item):
            return 1, 0, False
        if item.path in long_modules:  # module by module, its long tests first
            return 0, module_index[item.path], item.get_closest_marker("slow") is None
        return 2, 0, False

    items.sort(key=rank)


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
