"""`booktune evaluate RUN [--data DATA]`: what `booktune run` measures, for a run `booktune train` made."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from booktune.cli.options import ConfigOpt, config_options


@config_options("eval")
def evaluate(
    run: Annotated[Path, typer.Argument(help="A run folder made by `booktune train` or `booktune run`.")],
    data: Annotated[Optional[Path], typer.Option(help="The prepared data folder (default: the one the run used).")]
    = None,
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Measure a trained run on its held-out text: loss of the base model and of the adapter, base and tuned
    continuations of held-out prompts and their voice distance; recorded in the run folder and its report."""
    from booktune import api

    api.evaluate(run, data, config=config, **overrides)
