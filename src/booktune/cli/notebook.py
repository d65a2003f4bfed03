"""`booktune notebook BOOKS --out NoteBooks/<Author>/finetune.ipynb`: a self-contained notebook per data source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from booktune.cli.options import Books, ConfigOpt, Overwrite, config_options


@config_options("prepare", "train", "eval", "export")
def notebook(
    books: Books,
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="The notebook to write, e.g. NoteBooks/<Author>/finetune.ipynb.")] = Path("finetune.ipynb"),
    kernel: Annotated[str, typer.Option(help="The Jupyter kernel it runs in, e.g. one named for its environment.")]
    = "python3",
    overwrite: Overwrite = False,
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Write a self-contained Jupyter notebook for one data source: install, config, then prepare, preview, plan,
    train, evaluate and chat cells through the Python API. The options given become its config cell."""
    from booktune import api

    api.notebook(books, out, kernel=kernel, config=config, overwrite=overwrite, **overrides)
