"""The ``neurodyn`` command line. Each submodule registers its commands on ``app``."""

from __future__ import annotations

import sys

from neurodyn.cli._app import app, simulate_app
from neurodyn.cli import ingest, inspect, simulate  # noqa: E402,F401  (register commands)
from neurodyn.cli import preprocess, connectome, communities, states, bicluster, pipeline, report  # noqa: E402,F401,I001

__all__ = ["app", "simulate_app", "main"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
