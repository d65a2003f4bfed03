"""`booktune run BOOKS...`: the whole pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from booktune.cli.options import Books, ConfigOpt, Overwrite, config_options


@config_options("prepare", "train", "eval", "export")
def run(
    books: Books,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for data/, run/ and export/.")] = Path(
        "outputs/booktune"),
    resume: Annotated[bool, typer.Option(help="Continue training from the last complete checkpoint.")] = False,
    overwrite: Overwrite = False,
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Everything: prepare, held-out loss, train, held-out loss again, sample continuations, report, export (one
    q8_0 GGUF and an Ollama Modelfile in OUT/export; --export none skips it), summary."""
    from booktune import api

    api.run(books, out, config=config, overwrite=overwrite, resume=resume, **overrides)
