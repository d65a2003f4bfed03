"""The one rich console booktune prints through, and its progress bars."""

from __future__ import annotations

import logging
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# soft_wrap: a path or command line is never broken across lines, so it can be copied from a terminal or a log.
console = Console(highlight=False, soft_wrap=True)
# bitsandbytes speaks on import on CPUs without its optional kernels; set before any stage imports it
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def show(box: Any) -> None:
    """Print a table or panel: a box lays out its own lines (wrapped cells, a centred title), which the console's soft
    wrap would otherwise cut at the border or leave flush left."""
    console.print(box, soft_wrap=False)


def progress_bar(transient: bool = False) -> Progress:
    """A progress bar with counts, elapsed and remaining time; use as a context manager."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}", markup=False),  # book names and logs: text, never markup
        console=console,
        transient=transient,
    )


def quiet_libraries() -> None:
    """Silence library chatter that booktune reports better itself (its own bars and summaries)."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
