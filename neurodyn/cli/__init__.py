"""The ``neurodyn`` command line. Each submodule registers its commands on ``app``.

Command modules import their stage (numba kernels, scipy, MNE...) inside the command
function, not at module level: importing every stage takes about ten times longer than
importing this package (12 s against 1.4 s on a loaded 2-core machine), and ``neurodyn
--help``, ``neurodyn formats`` and every usage error would pay for it. This is the one place
where neurodyn imports its own modules inside functions (``tests/test_imports.py``).
"""

from __future__ import annotations

import sys

# importing each command module registers its commands on `app`
from neurodyn.cli import (  # noqa: F401
    bicluster,
    communities,
    connectome,
    export,
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
