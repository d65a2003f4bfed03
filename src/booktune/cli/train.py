"""`booktune train DATA --out RUN`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from booktune.cli.options import ConfigOpt, Overwrite, config_options


@config_options("train")
def train(
    data: Annotated[Path, typer.Argument(help="A folder made by `booktune prepare`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for the adapter.")] = Path("runs/booktune"),
    resume: Annotated[bool, typer.Option(help="Continue from the last complete checkpoint in --out.")] = False,
    overwrite: Overwrite = False,
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Train a LoRA adapter (loss on the answers only) on a prepared data folder."""
    from booktune import api
    from booktune.devices import end_process_group

    api.train(data, out, config=config, overwrite=overwrite, resume=resume, **overrides)
    end_process_group()  # a launched rank exits next (the API leaves the group to its caller)
