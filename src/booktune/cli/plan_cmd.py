"""`booktune plan`: will this model train on this card? Peak GPU memory from the model config alone."""

from __future__ import annotations

from typing import Annotated, Optional

import typer


def plan(
    model: Annotated[str, typer.Option(help="Base model: 'default', a local folder or a Hub id (config only).")]
    = "default",
    max_seq_length: Annotated[int, typer.Option(help="Longest training row, in tokens.")] = 1024,
    batch_size: Annotated[int, typer.Option(help="Rows per step.")] = 1,
    gpu_mem: Annotated[Optional[float], typer.Option(help="Card memory in GiB (default: this GPU's, else 24).")]
    = None,
    backend: Annotated[str, typer.Option(help="'unsloth', 'hf', or 'auto' (unsloth when installed).")] = "auto",
    lora_r: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    four_bit: Annotated[bool, typer.Option("--4bit/--no-4bit", help="4-bit NF4 base weights.")] = True,
    offload_activations: Annotated[Optional[bool], typer.Option(
        help="Unsloth: checkpointed activations in CPU memory (default: on, off under DDP where they fit).")] = None,
    gpus: Annotated[int, typer.Option(min=1, help="GPUs the run is spread over, one process each.")] = 1,
    distributed: Annotated[str, typer.Option(help="With --gpus above 1: 'ddp', 'fsdp', or 'auto' (DDP when the "
                                                  "run fits one card, else FSDP).")] = "auto",
) -> None:
    """Predict peak GPU memory of a QLoRA run and whether it fits, with the largest batch or sequence that would."""
    from booktune.console import console
    from booktune.plan import GIB, PlanError, Settings, card_memory, describe, load_shape
    from booktune.plan_distributed import describe_split
    from booktune.train.backends import BACKENDS, unsloth_installed

    if backend not in BACKENDS:
        raise PlanError(f"--backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "unsloth" if unsloth_installed() else "hf"
    card = gpu_mem * GIB if gpu_mem else (card_memory() or 24 * GIB)
    settings = Settings(batch_size, max_seq_length, backend, lora_r, four_bit, offload=offload_activations is not False)
    shape = load_shape(model)
    lines = describe(shape, settings, card)
    if gpus > 1:
        lines += describe_split(shape, settings, card, gpus, distributed, offload_activations)
    for line in lines:
        console.print(line)
