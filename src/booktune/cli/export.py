"""`booktune export RUN --format F [--quant Q] [--out DIR]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from booktune.cli.options import ConfigOpt, Overwrite, config_options


@config_options("export", "chat", only={"export": ("format", "quant", "push_to_hub"),
                                        "chat": ("system_prompt", "temperature", "top_p", "max_new_tokens")})
def export(
    run: Annotated[Path, typer.Argument(help="A finished run folder made by `booktune train` or `booktune run`.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the export (default: "
                                                "RUN/export/FORMAT).")] = None,
    overwrite: Overwrite = False,
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Export a trained run for other tools: one GGUF file with an Ollama Modelfile, merged safetensors for
    transformers, or the adapter alone as a GGUF LoRA for llama.cpp. Each export carries a model card (README.md)."""
    from booktune import api

    api.export(run, out, config=config, overwrite=overwrite, **overrides)
