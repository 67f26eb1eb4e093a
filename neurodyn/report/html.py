"""Self-contained HTML rendering: inline CSS, images embedded as base64 data URIs, no scripts."""

from __future__ import annotations

import base64
import dataclasses
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurodyn.plots import read_caption

MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#fafafa;line-height:1.4}
header{background:#0072B2;color:#fff;padding:14px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;font-size:13px;opacity:.9}
nav{padding:8px 28px;background:#eef3f8;font-size:13px;border-bottom:1px solid #d6dee6}
nav a{margin-right:14px;color:#0072B2;text-decoration:none}
main{padding:0 28px 40px}
section{background:#fff;border:1px solid #e2e2e2;border-radius:6px;margin:18px 0;padding:4px 18px 14px}
h2{font-size:18px;border-bottom:2px solid #E69F00;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 6px;color:#444}
table{border-collapse:collapse;font-size:12px;margin:4px 0 8px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2} td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:11px;word-break:break-all}
figure{margin:10px 0 18px} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:13px;color:#333;max-width:60em} figcaption .src{color:#777;font-size:11px}
.note{color:#8a5a00;font-size:12px} details{font-size:12px;margin:6px 0}
"""


@dataclasses.dataclass
class Table:
    """A titled table: ``columns`` and ``rows`` (lists of cell values)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


@dataclasses.dataclass
class Section:
    """One report section (one stage, the timeline, or the connectome comparison)."""

    id: str
    title: str
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    numbers: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    tables: list[Table] = dataclasses.field(default_factory=list)
    figures: list[Path] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


def fmt_value(v: Any, full: bool = False) -> str:
    """Human-readable cell text (4 significant digits for floats; lists cut at 300 characters
    unless ``full``)."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float) or (hasattr(v, "dtype") and getattr(v, "ndim", 1) == 0
                                and v.dtype.kind == "f"):
        v = float(v)
        if math.isnan(v):
            return "n/a"
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        s = ", ".join(str(x) for x in v)
        return s if full or len(s) < 300 else s[:297] + "..."
    return str(v)


def data_uri(path: Path) -> str:
    """``data:<mime>;base64,...`` of an image file."""
    mime = MIME.get(Path(path).suffix.lower())
    if mime is None:
        raise ValueError(f"cannot embed {path} in HTML (use png or svg)")
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _e(x: Any, full: bool = False) -> str:
    return html.escape(fmt_value(x, full))


def _kv_table(d: Mapping[str, Any], cls: str = "", full: bool = False) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td class='{cls}'>{_e(v, full)}</td></tr>"
                   for k, v in d.items())
    return f"<table>{rows}</table>"


def _table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
    body = "".join(
        "<tr>" + "".join(
            f"<td class='{'num' if isinstance(c, (int, float)) else ''}'>{_e(c)}</td>" for c in r
        ) + "</tr>" for r in t.rows)
    return f"<h3>{html.escape(t.title)}</h3><table><tr>{head}</tr>{body}</table>"


def _provenance(p: Mapping[str, Any]) -> str:
    if not p:
        return ""
    out = ["<h3>What was run</h3>"]
    top = {k: p[k] for k in ("file", "stage", "command", "seed", "neurodyn_version", "started",
                             "finished") if k in p}
    out.append(_kv_table(top))
    params = p.get("parameters")
    if isinstance(params, Mapping) and params:
        out.append(f"<details><summary>parameters ({len(params)})</summary>"
                   + _kv_table(params, full=True) + "</details>")
    inputs = p.get("inputs")
    if isinstance(inputs, Mapping) and inputs:
        out.append("<details open><summary>inputs and their hashes</summary>"
                   + _kv_table(inputs) + "</details>")
    versions = p.get("versions")
    if isinstance(versions, Mapping) and versions:
        out.append("<details><summary>versions</summary>" + _kv_table(versions) + "</details>")
    return "".join(out)


def _figure(fig: Path, number: int) -> str:
    """One figure: the image, its caption in words, the files it was drawn from, and their
    parameters in a collapsed block (from the figure's caption file, when it has one)."""
    cap = read_caption(fig)
    words = html.escape(str(cap.get("caption", "")))
    data = html.escape(str(cap.get("data", "")))
    params = cap.get("parameters") if isinstance(cap.get("parameters"), Mapping) else {}
    block = "".join(
        f"<details><summary>parameters of {html.escape(str(f))} ({len(p)})</summary>"
        + _kv_table(p, full=True) + "</details>"
        for f, p in params.items() if isinstance(p, Mapping) and p)
    return (f"<figure id='figure-{number}'><img src='{data_uri(fig)}' "
            f"alt='{words or html.escape(fig.stem)}'><figcaption><b>Figure {number}.</b> "
            f"{words} <span class='src'>{data} File: {html.escape(fig.name)}.</span>"
            f"{block}</figcaption></figure>")


def render(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole report as one HTML string (no external resources)."""
    nav = "".join(f"<a href='#{html.escape(s.id)}'>{html.escape(s.title)}</a>" for s in sections)
    body = []
    number = 0
    for s in sections:
        parts = [f"<section id='{html.escape(s.id)}' class='stage'><h2>{html.escape(s.title)}</h2>"]
        parts += [f"<p class='note'>{html.escape(n)}</p>" for n in s.notes]
        parts.append(_provenance(s.provenance))
        if s.numbers:
            parts.append("<h3>Key numbers</h3>" + _kv_table(s.numbers, "num"))
        parts += [_table(t) for t in s.tables]
        if s.figures:
            parts.append("<h3>Figures</h3>")
        for fig in s.figures:
            number += 1
            parts.append(_figure(Path(fig), number))
        parts.append("</section>")
        body.append("".join(parts))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{''.join(body)}</main></body></html>"
    )
