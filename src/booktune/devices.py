"""Which process, which cards, which device and dtype: the choices that model loading, training and the memory
plan share.

Under torchrun / `accelerate launch` each process learns its place from the environment (`world`); on a machine with
unequal cards (an RTX 4090 beside a 2070 SUPER) one process trains on the largest card. Everything that decides is
a plain function of its arguments, tested without GPUs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from booktune.errors import BooktuneError

SAME_CLASS = 0.9  # cards within 10 % of the largest card's memory count as equal


class DeviceError(BooktuneError):
    """A device or precision setting this machine cannot honour; the message names the field."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (from torchrun's / accelerate's environment)."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world(env: Mapping[str, str] | None = None) -> World:
    env = os.environ if env is None else env
    rank = int(env.get("RANK", "0") or 0)
    return World(rank, int(env.get("LOCAL_RANK", str(rank)) or 0), int(env.get("WORLD_SIZE", "1") or 1))


def is_main_process() -> bool:
    """True in a single process and on rank 0 of a launched group: the one process that prints and writes."""
    return world().main


def silence_other_ranks() -> None:
    """Ranks other than 0 print nothing: one plan, one progress bar, one summary."""
    if not is_main_process():
        from booktune.console import console

        console.quiet = True


def wait_for_everyone() -> None:
    """A barrier across the launched processes (no-op in a single process)."""
    import torch
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        # Untold, NCCL guesses each rank's card from its rank and warns that this can hang; it is the current one.
        cards = [torch.cuda.current_device()] if dist.get_backend() == "nccl" else None
        dist.barrier(device_ids=cards)


def end_process_group() -> None:
    """Close the launched group before a CLI process exits: torch warns of leaked resources otherwise."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@dataclass(frozen=True)
class Card:
    index: int  # CUDA ordinal as this process sees it (after CUDA_VISIBLE_DEVICES)
    name: str
    memory: int  # bytes

    def label(self) -> str:
        return f"cuda:{self.index} ({self.name}, {self.memory / 2**30:.1f} GiB)"


def visible_cards() -> list[Card]:
    import torch

    if not torch.cuda.is_available():
        return []
    props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
    return [Card(i, p.name, p.total_memory) for i, p in enumerate(props)]


def largest(cards: list[Card]) -> Card:
    """The card with the most memory; the lowest index among equals."""
    return min(cards, key=lambda c: (-c.memory, c.index))


def like_largest(cards: list[Card]) -> list[Card]:
    top = largest(cards).memory
    return [c for c in cards if c.memory >= SAME_CLASS * top]


@dataclass(frozen=True)
class CardChoice:
    indices: tuple[int, ...]  # ascending CUDA ordinals
    note: str = ""  # one line telling the user why some cards were left out, or what to expect


def default_card(cards: list[Card]) -> CardChoice:
    """One process without --device: the largest card, saying so when the machine's cards differ."""
    best = largest(cards)
    others = [c for c in cards if c is not best and c.memory < SAME_CLASS * best.memory]
    note = f"training on {best.label()}, the largest card" if others else ""
    return CardChoice((best.index,), note)


def memory_fraction(index: int) -> float:
    """The share of the card this process may allocate (torch.cuda.set_per_process_memory_fraction; 1.0 if unset)."""
    import torch

    get = getattr(torch.cuda, "get_per_process_memory_fraction", None)  # torch >= 2.10
    return float(get(index)) if get is not None else 1.0


def pick_device(device: str | None = None) -> str:
    """`device` if given, else (and for a plain 'cuda') the largest CUDA GPU, else the CPU. Under torchrun /
    `accelerate launch` a CUDA device is always this process's own card, cuda:LOCAL_RANK (the launcher picked the
    cards)."""
    import torch

    if device and device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"config field train.device: {device!r} asked for, but no CUDA GPU is visible")
    if device and not device.startswith("cuda"):
        return device
    if not torch.cuda.is_available():
        return "cpu"
    if world().distributed:
        return f"cuda:{world().local_rank}"
    if device and device != "cuda":  # a card named by its index; plain "cuda" picks as unset does
        return device
    return f"cuda:{default_card(visible_cards()).indices[0]}"


def pick_dtype(dtype: str, device: str) -> Any:
    """Resolve 'auto' to bf16 where the device supports it; else fp16 on a GPU, fp32 on a CPU."""
    import torch

    named = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if dtype != "auto":
        return named[dtype]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_bf16() else torch.float32


NO_CPU_BF16 = "this CPU lacks AVX-512 and AMX"  # what decides bf16 on a CPU, as the plan and doctor word it


def cpu_bf16() -> bool:
    """Whether this CPU runs bf16 matrix products in its own instructions (AVX-512 or AMX, through oneDNN). An
    AVX2-only CPU emulates them element by element, far slower than float32 (docs/benchmarks.md)."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def dtype_note(device: str, dtype: Any) -> str:
    """Why a CPU trains in the dtype it does, where the dtype decides the speed; empty on a GPU."""
    import torch

    if device.startswith("cuda") or dtype not in (torch.float32, torch.bfloat16) or cpu_bf16():
        return ""
    if dtype == torch.float32:
        return f"{NO_CPU_BF16}, so bf16 would be emulated"
    return f"{NO_CPU_BF16}, so bf16 is emulated, far slower than --dtype fp32"


@contextlib.contextmanager
def cpu_threads(wide: bool) -> Iterator[None]:
    """Quantize on every core this process's share allows. torchrun starts each process with one thread, and a
    4-bit base loaded on the CPU for FSDP is quantized there, which on one thread takes minutes for a large base."""
    import torch

    before = torch.get_num_threads()
    if wide:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
        torch.set_num_threads(max(before, (os.cpu_count() or 1) // max(local, 1)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Precision:
    device: str
    dtype: Any  # torch.dtype of the base weights and autocast
    load_in_4bit: bool
    gradient_checkpointing: bool
    offload_activations: bool = True  # checkpointed layer inputs wait in CPU memory, where the backend can
    offload_embeddings: bool = False  # the input embedding waits in CPU memory, where the backend can

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")


def choose_precision(device: str | None, dtype: str, load_in_4bit: bool | None,
                     gradient_checkpointing: bool | None) -> Precision:
    """4-bit and checkpointing default on with CUDA and off on CPU, where they cost time and save nothing needed.
    The activation offload starts on; scale_out decides it for the run (scaleout.choose_offload)."""
    device = pick_device(device)
    on_gpu = device.startswith("cuda")
    four_bit = on_gpu if load_in_4bit is None else load_in_4bit
    if four_bit and not on_gpu:
        raise DeviceError("config field train.load_in_4bit: 4-bit training needs a CUDA GPU; use --no-4bit on CPU")
    checkpointing = on_gpu if gradient_checkpointing is None else gradient_checkpointing
    return Precision(device, pick_dtype(dtype, device), four_bit, checkpointing)
