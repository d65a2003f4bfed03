"""`booktune prepare BOOKS... --out DATA`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from booktune.cli.options import Books, ConfigOpt, Overwrite, config_options


@config_options("prepare", "train", only={"train": ("model", "trust_remote_code")})
def prepare(
    books: Books,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the prepared data.")] = Path("data"),
    overwrite: Overwrite = False,
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Extract, clean, chunk and format books into a chat dataset (HF dataset + JSONL + stats)."""
    from booktune import api

    api.prepare(books, out, config=config, overwrite=overwrite, **overrides)
