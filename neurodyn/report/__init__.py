"""Figures and the self-contained HTML report of a run directory.

:mod:`figures` redraws every figure from the stage files (no recomputation);
:mod:`numbers` reads the key numbers of a stage file; :mod:`build` writes ``report.html``;
:mod:`html` renders it; :mod:`synthetic` writes a small run directory for tests and demos.
"""

from neurodyn.report.build import build_report
from neurodyn.report.figures import draw_all, draw_sections, plot_function, stage_files, unit_dirs
from neurodyn.report.numbers import key_numbers

__all__ = ["build_report", "draw_all", "draw_sections", "key_numbers", "plot_function",
           "stage_files", "unit_dirs"]
