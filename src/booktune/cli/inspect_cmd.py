"""`booktune inspect BOOK`: see what extraction kept and removed on each page, and why."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from booktune.ingest.types import BookError


def inspect(
    book: Path = typer.Argument(..., help="A PDF book to inspect.", show_default=False),
    page: list[int] | None = typer.Option(None, "--page", "-p", help="Page number to show (1-based); repeat for several. Default: all pages."),
    password: str | None = typer.Option(None, "--password", help="Password of an encrypted PDF."),
    max_kept: int = typer.Option(0, "--max-kept", help="Show at most this many kept lines per page (0 = all)."),
) -> None:
    """Show, page by page, the lines kept and the lines removed with the reason (head, folio, footnote, front/back matter), then a summary."""
    from booktune.ingest.inspect import render
    from booktune.ingest.pdf import explain_pdf

    console = Console()
    if book.suffix.lower() != ".pdf":
        console.print(f"[red]error:[/red] {book}: inspect reads PDF books only")
        raise typer.Exit(code=2)
    try:
        reports = explain_pdf(book, password=password, pages=list(page) if page else None)
    except BookError as err:
        console.print(f"error: {err}", style="red", markup=False)
        raise typer.Exit(code=1) from None
    if page and not reports:
        console.print(f"error: {book}: no such page (the book has fewer pages)", style="red", markup=False)
        raise typer.Exit(code=2)
    render(reports, console, max_kept=max_kept)
