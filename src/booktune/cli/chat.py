"""`booktune chat RUN [--prompt TEXT]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from booktune.cli.options import ConfigOpt, config_options


@config_options("chat")
def chat(
    run: Annotated[Path, typer.Argument(help="A run folder made by `booktune train` or `booktune run`.")],
    prompt: Annotated[Optional[str], typer.Option("--prompt", "-p", help="Print one reply and exit.")] = None,
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Talk to a trained run: streams replies interactively, or prints one reply with --prompt."""
    from booktune import api

    api.chat(run, prompt, config=config, **overrides)
