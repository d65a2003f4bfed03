"""`booktune inspect BOOK`: see what extraction kept and removed on each page, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from booktune.cli.options import ConfigOpt, config_options


@config_options("prepare", only={"prepare": ("password", "ocr")})
def inspect(
    book: Annotated[Path, typer.Argument(help="A PDF book to inspect.", show_default=False)],
    page: Annotated[list[int] | None, typer.Option(
        "--page", "-p", help="Page number to show (1-based); repeat for several. Default: all pages.")] = None,
    max_kept: Annotated[int, typer.Option(help="Show at most this many kept lines per page (0 = all).")] = 0,
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Show what extraction kept and removed on each page, and why.

    Page by page: the lines kept and the lines removed with the reason (head, folio, footnote, front/back matter),
    each note and each paragraph joined over a page or column turn with its evidence, then a summary."""
    from booktune import api
    from booktune.console import console
    from booktune.ingest.inspect import render

    reports = api.inspect(book, pages=list(page) if page else None, config=config, **overrides)
    render(reports, console, max_kept=max_kept)
