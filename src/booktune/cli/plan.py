"""`booktune plan`: will this run train on this card? Peak GPU memory from the model's config alone."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from booktune.cli.options import ConfigOpt, config_options


@config_options("train")
def plan(
    gpu_mem: Annotated[Optional[float], typer.Option(help="Card memory in GiB (default: this GPU's, else 24).")]
    = None,
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Predict peak GPU memory of a training run, and whether it fits.

    From the model's config alone: the parts of the peak, the verdict for the card, and the largest batch or
    sequence that would fit. Takes the same training options (and config file) as `booktune train`."""
    from booktune import api

    api.plan(gpu_mem=gpu_mem, config=config, **overrides)
