"""`booktune report RUN`: write RUN/report.html and RUN/report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def report(
    run: Annotated[Path, typer.Argument(help="A run folder made by `booktune run` or `booktune train`.")],
    data: Annotated[Optional[Path], typer.Option(help="The prepared data folder (default: the one the run used).")]
    = None,
) -> None:
    """Write a self-contained HTML report (and Markdown) of a run: data, loss curves, metrics, voice, samples."""
    from rich.markup import escape

    from booktune import api
    from booktune.console import console

    html, md = api.report(run, data)
    console.print(f"report: [bold]{escape(str(html))}[/] (and {escape(md.name)})")
