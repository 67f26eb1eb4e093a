"""Figures, one module per stage; each exposes ``draw(result_path, outdir, fmt) -> list[Path]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Sidecar of a figure file holding its caption as JSON (``ntf_rank.png`` -> ``ntf_rank.png.json``):
#: ``caption`` (what is shown, in words), ``data`` (files and seeds), ``parameters`` per file.
CAPTION_SUFFIX = ".json"


def read_caption(figure: str | Path) -> dict[str, Any]:
    """The caption file of a figure (``{}`` when there is none or it is unreadable)."""
    side = Path(str(figure) + CAPTION_SUFFIX)
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
