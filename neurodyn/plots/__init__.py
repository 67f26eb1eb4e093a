"""Figures, one module per stage; each exposes ``draw(result_path, outdir, fmt) -> list[Path]``."""
