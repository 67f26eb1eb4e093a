"""``neurodyn inspect``: what an HDF5 file holds, its provenance and completeness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodyn.cli._app import app


def describe(path: Path, max_items: int = 40) -> str:
    """A readable multi-line summary of a neurodyn HDF5 file."""
    import h5py  # here, not at module level: every command imports this module

    from neurodyn.io import layout, store

    p = store.provenance(path)
    lines = [f"{path}", f"  stage: {p.get('stage', '?')}   complete: {bool(p.get('complete', False))}"]
    for key in ("neurodyn_version", "command", "seed", "started", "finished", "input_digest"):
        if key in p:
            lines.append(f"  {key}: {p[key]}")
    if p.get("parameters"):
        lines.append(f"  parameters: {store.prov.to_json(p['parameters'])}")
    for src, h in (p.get("inputs") or {}).items():
        lines.append(f"  input: {src} {h[:19]}...")
    lines.append("  contents:")
    count = 0
    with store.open_h5(path, require_complete=False) as f:
        if "recordings" in f:
            for g in f["recordings"].values():
                a = g.attrs
                T, N = g["traces"].shape
                lines.append(
                    f"    recording {a['id']}: {a['modality']}, {T} x {N}, {a['fs']:.4g} Hz, "
                    f"units {a['units']}, subject {a['subject'] or '-'}"
                )
        if "connectome" in f:
            for g in f["connectome"].values():
                lines.append(f"    connectome {g.attrs['name']}: {g['labels'].shape[0]} neurons, {g['pre'].shape[0]} edges")

        def visit(name: str, obj: h5py.HLObject) -> None:
            nonlocal count
            if name.startswith(("recordings", "connectome")) or count >= max_items:
                return
            if isinstance(obj, h5py.Dataset) and not layout.is_dimension_only(obj):
                count += 1
                dims = name.rsplit("/", 1)[-1] if obj.is_scale else ", ".join(
                    d[0].name.rsplit("/", 1)[-1] if len(d) else "?" for d in obj.dims)
                units = obj.attrs.get("units")
                units = f" [{units.decode() if isinstance(units, bytes) else units}]" if units else ""
                lines.append(f"    /{name}: {obj.shape} {obj.dtype}"
                             + (f" ({dims}){units}" if obj.ndim else units))

        f.visititems(visit)
    if count >= max_items:
        lines.append(f"    ... (first {max_items} datasets shown)")
    return "\n".join(lines)


@app.command()
def inspect(files: Annotated[list[Path], typer.Argument(help="neurodyn HDF5 files.")]) -> None:
    """Print what each file holds, its provenance, and whether it was written completely.

    Example: neurodyn inspect run/sample/*/affinity.h5
    """
    for path in files:
        typer.echo(describe(path))
