"""The ``neurodyn`` command line. Each submodule registers its commands on ``app``."""

from __future__ import annotations

import sys

# importing each command module registers its commands on `app`
from neurodyn.cli import (  # noqa: F401
    bicluster,
    communities,
    connectome,
    ingest,
    inspect,
    pipeline,
    preprocess,
    report,
    simulate,
    states,
)
from neurodyn.cli._app import app, simulate_app

__all__ = ["app", "simulate_app", "main"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
