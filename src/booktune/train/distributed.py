"""Scale-out decisions: which process this is, which cards to train on, DDP or FSDP, the batch per step.

booktune does not distribute anything itself. torchrun / `accelerate launch` start one process per GPU, and
accelerate (inside transformers' Trainer) runs PyTorch DDP or FSDP. This module only decides, from plain data:
- who talks and writes: rank 0 only (`World.main`);
- which cards: on a mixed machine the largest card (or the cards like it), since DDP runs at the small card's pace;
- DDP when the model fits one card, FSDP full-shard when it does not (`choose_strategy`);
- gradient accumulation from a global batch, so N processes see the same examples per step as one.

Everything that decides is a pure function of its arguments (card lists, env dicts), tested without GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Mapping

STRATEGIES = ("auto", "ddp", "fsdp")
SAME_CLASS = 0.9  # cards within 10 % of the largest card's memory count as equal


class DistributedError(ValueError):
    """A scale-out setting that cannot work here; the message names the field."""


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


def parse_gpus(gpus: str | int | None, available: int) -> int | None:
    """'all' -> every visible card, 'N' -> N; None when no launch was asked for."""
    if gpus is None or str(gpus).strip() == "":
        return None
    text = str(gpus).strip().lower()
    if text == "all":
        if available == 0:
            raise DistributedError("config field train.gpus: 'all' asked for, but no CUDA GPU is visible")
        return available
    if not text.isdigit() or int(text) < 1:
        raise DistributedError(f"config field train.gpus: expected a number of GPUs or 'all' (got {gpus!r})")
    return int(text)


def choose_cards(cards: list[Card], count: int, strategy: str = "auto") -> CardChoice:
    """`count` cards to train on. Under 'auto', cards much smaller than the largest are left out, and why is said."""
    if count > len(cards):
        seen = ", ".join(c.label() for c in cards) or "none"
        raise DistributedError(f"config field train.gpus: {count} GPUs asked for, but {len(cards)} visible ({seen})")
    ranked = sorted(cards, key=lambda c: (-c.memory, c.index))[:count]
    kept = like_largest(ranked) if strategy == "auto" else ranked
    left = [c for c in ranked if c not in kept]
    indices = tuple(sorted(c.index for c in kept))
    if left and len(kept) == 1:
        note = (f"training on {kept[0].label()} alone: DDP across unequal cards runs at the small card's pace "
                f"(left out: {', '.join(c.label() for c in left)})")
    elif left:
        note = (f"training on the {len(kept)} cards like the largest; left out {', '.join(c.label() for c in left)}: "
                "DDP across unequal cards runs at the small card's pace")
    elif len({c.memory for c in kept}) > 1 or len({c.name for c in kept}) > 1:
        note = "these cards differ: every step waits for the slowest, and FSDP shards fill the smallest first"
    else:
        note = ""
    return CardChoice(indices, note)


def default_card(cards: list[Card]) -> CardChoice:
    """One process without --device: the largest card, saying so when the machine's cards differ."""
    best = largest(cards)
    others = [c for c in cards if c is not best and c.memory < SAME_CLASS * best.memory]
    note = f"training on {best.label()}, the largest card" if others else ""
    return CardChoice((best.index,), note)


def choose_strategy(requested: str, *, processes: int, fits_one_card: bool | None) -> tuple[str, str]:
    """('single' | 'ddp' | 'fsdp', why). `fits_one_card` is plan's verdict, None when unknown."""
    if requested not in STRATEGIES:
        raise DistributedError(f"config field train.distributed: {requested!r} is not one of {', '.join(STRATEGIES)}")
    if processes <= 1:
        return "single", ""
    if requested == "ddp":
        why = " (plan: the model may not fit one card; try --distributed fsdp)" if fits_one_card is False else ""
        return "ddp", f"DDP as asked{why}"
    if requested == "fsdp":
        return "fsdp", "FSDP full-shard as asked"
    if fits_one_card is False:
        return "fsdp", "FSDP full-shard: plan says the model does not fit one card, so its weights are sharded"
    known = "plan says the model fits one card" if fits_one_card else "no memory estimate for this model"
    return "ddp", f"DDP: {known}, so each card holds a whole copy and the data is split"


def global_grad_accum(global_batch_size: int | None, batch_size: int, grad_accum: int, processes: int) -> int:
    """Accumulation steps that make `global_batch_size` examples per optimizer step over `processes` ranks."""
    if global_batch_size is None:
        return grad_accum
    per_pass = batch_size * processes
    if global_batch_size % per_pass:
        raise DistributedError(
            f"config field train.global_batch_size: {global_batch_size} is not a multiple of batch_size "
            f"{batch_size} x {processes} process(es) = {per_pass}"
        )
    return global_batch_size // per_pass


def accelerate_fsdp_env(env: Mapping[str, str] | None = None) -> bool:
    """True when `accelerate launch --use_fsdp` (or its config file) already asked for FSDP."""
    env = os.environ if env is None else env
    return str(env.get("ACCELERATE_USE_FSDP", "false")).lower() in ("1", "true")


def backend_for(backend: str, strategy: str) -> tuple[str, str]:
    """The backend to run under `strategy`, and a note when it had to change.

    Unsloth 2026.10 pins each rank to its LOCAL_RANK card and sets DDP's unused-parameter search for LoRA
    (unsloth/models/loader_utils.py prepare_device_map, models/_ddp_defaults.py), so it runs under DDP. Its FSDP
    path is its own (UNSLOTH_FSDP2=1, its own fully_shard wrap), not accelerate's plugin that booktune configures:
    mixing the two would run half-configured, so FSDP trains with the hf backend.
    """
    if strategy == "fsdp" and backend in ("unsloth", "auto"):
        note = "FSDP trains with the hf backend (Unsloth shards with its own FSDP2 path, not accelerate's)"
        return "hf", note if backend == "unsloth" else ""
    return backend, ""


def trainer_args(strategy: str, *, gradient_checkpointing: bool) -> dict[str, Any]:
    """Extra TrainingArguments for DDP / FSDP (empty for one process). FSDP wraps each decoder layer (the model's
    _no_split_modules); transformers then wraps the LoRA layers apart and, for a 4-bit base, sets FSDP's mixed
    precision to the quant storage dtype (transformers/distributed/fsdp.py update_fsdp_plugin_peft)."""
    if strategy == "single":
        return {}
    extra: dict[str, Any] = {"ddp_find_unused_parameters": False,  # every LoRA weight gets a gradient each step
                             "save_on_each_node": False}
    if gradient_checkpointing:  # reentrant checkpointing marks LoRA weights ready twice under DDP
        extra["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    if strategy == "fsdp":
        # Full state dicts: checkpoints that resume on any number of processes, and an adapter like one GPU's.
        extra |= {"fsdp": True, "fsdp_config": {"version": 2, "reshard_after_forward": True,
                                                "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
                                                "state_dict_type": "FULL_STATE_DICT"},
                  # bitsandbytes' 8-bit AdamW cannot step FSDP2's DTensor shards (measured on 2 x H100: "got mixed
                  # torch.Tensor and DTensor"); the LoRA moments are sharded, so fp32 ones cost 1/N each.
                  "optim": "adamw_torch"}
    return extra


def load_device(strategy: str, device: str, weights_fit_card: bool | None = None) -> str:
    """Where each rank loads the base model: its own card, unless FSDP must shard weights too big for it; then
    the CPU (bitsandbytes quantizes there too) and FSDP moves each rank's shard to its card."""
    return "cpu" if strategy == "fsdp" and weights_fit_card is not True else device


def choose_offload(requested: bool | None, *, strategy: str, backend: str, kept_fits: bool | None) -> tuple[bool, str]:
    """Unsloth's activation offload (offload_activations): as asked, else on, except under DDP where plan says the
    card holds the kept activations. Each DDP step waits for the slower rank, and the offload's host copies make steps
    uneven: on 2 x H200, 8B shape, 30 steps, two ranks offloading ran at 16,964 tok/s, keeping them at 18,378
    (docs/distributed.md). One process keeps offloading: 1.6 GiB less on the 8B shape, 4 % slower there."""
    if requested is not None:
        return requested, ""
    if strategy != "ddp" or backend != "unsloth" or kept_fits is not True:
        return True, ""
    return False, "checkpointed activations kept on the GPU: each step waits for the slower rank (offload_activations)"


@dataclass(frozen=True)
class ScaleOut:
    """How this process trains: alone, or as one rank of a DDP / FSDP group."""

    strategy: str  # 'single' | 'ddp' | 'fsdp'
    processes: int
    grad_accum: int
    note: str = ""
    weights_fit_card: bool | None = None  # plan: the whole 4-bit base fits this rank's card before sharding
    offload_activations: bool = True  # Unsloth: checkpointed layer inputs in CPU memory (choose_offload)
    offload_note: str = ""

    def load_device(self, device: str) -> str:
        return load_device(self.strategy, device, self.weights_fit_card)

    def trainer_args(self, gradient_checkpointing: bool) -> dict[str, Any]:
        return trainer_args(self.strategy, gradient_checkpointing=gradient_checkpointing)

    def callbacks(self) -> list[Any]:
        from booktune.train.callbacks import QuantStatesFollowShards

        return [QuantStatesFollowShards()] if self.strategy == "fsdp" else []


def early_strategy(requested: str, env: Mapping[str, str] | None = None) -> str:
    """The strategy as far as it is known before any model is read: 'fsdp' only when asked for by name (or by
    `accelerate launch --use_fsdp`). `--gpus` resolves 'auto' before launching, so its processes see the answer."""
    w = world(env)
    if not w.distributed:
        return "single"
    return "fsdp" if requested == "fsdp" or accelerate_fsdp_env(env) else "ddp"


def scale_out(requested: str, *, device: str, settings: Any, global_batch_size: int | None, batch_size: int,
              grad_accum: int, backend: str = "hf", offload_activations: bool | None = None,
              env: Mapping[str, str] | None = None) -> ScaleOut:
    """The strategy for this process's group (every rank reaches the same answer), its accumulation steps, and
    whether Unsloth offloads activations (`offload_activations` None: choose_offload decides).

    `settings` carries the train fields plan's estimate reads (model, batch_size, max_seq_length, lora_r, ...)."""
    settings = SimpleNamespace(**settings) if isinstance(settings, Mapping) else settings
    w = world(env)
    accum = global_grad_accum(global_batch_size, batch_size, grad_accum, w.size)
    if w.distributed and device.startswith("cpu"):
        accept_cpu_ordinals()
    if w.distributed and accelerate_fsdp_env(env):
        strategy, note = "fsdp", "FSDP, as `accelerate launch` was configured"
    else:
        fits = card_fits(settings, device) if w.distributed and requested == "auto" else None
        strategy, note = choose_strategy(requested, processes=w.size, fits_one_card=fits)
    if strategy == "fsdp" and backend == "unsloth":  # 'auto' found the model too big only now, Unsloth loaded
        raise DistributedError("config field train.distributed: 'auto' needs FSDP for this model, which the unsloth "
                               "backend does not run; pass --distributed fsdp (trains with hf) or --backend hf")
    weights_fit = card_fits(settings, device, weights_only=True) if strategy == "fsdp" else None
    kept_fits = None  # asked of plan only when choose_offload would read it
    if offload_activations is None and strategy == "ddp" and backend == "unsloth":
        kept = SimpleNamespace(**vars(settings) | {"offload_activations": False})
        kept_fits = card_fits(kept, device, ddp_gpus=w.size)
    offload, offload_note = choose_offload(offload_activations, strategy=strategy, backend=backend,
                                           kept_fits=kept_fits)
    return ScaleOut(strategy, w.size, accum, note, weights_fit, offload, offload_note)


def card_fits(settings: Any, device: str, weights_only: bool = False, ddp_gpus: int = 1) -> bool | None:
    """plan's verdict for this process's card: the whole run (alone, or as one of `ddp_gpus` DDP ranks), or just the
    base weights (None on a CPU or without an estimate)."""
    if not device.startswith("cuda"):
        return None
    import torch

    from booktune.plan_distributed import fits_one_card, weights_fit

    index = torch.device(device).index or 0
    card = int(torch.cuda.get_device_properties(index).total_memory * memory_fraction(index))
    return weights_fit(settings, card, world().size) if weights_only else fits_one_card(settings, card, ddp_gpus)


def memory_fraction(index: int) -> float:
    """The share of the card this process may allocate (torch.cuda.set_per_process_memory_fraction; 1.0 if unset)."""
    import torch

    get = getattr(torch.cuda, "get_per_process_memory_fraction", None)  # torch >= 2.10
    return float(get(index)) if get is not None else 1.0


def move_quant_states(model: Any, device: Any) -> int:
    """Move bitsandbytes' 4-bit quantization states (absmax, codebook) to `device`; how many moved.

    A 4-bit base loaded on the CPU for FSDP is quantized there. fully_shard moves the weight shards to the GPU; each
    Linear4bit also keeps its QuantState as a plain module attribute, which bitsandbytes reads back after every
    all-gather (nn/modules.py fix_4bit_weight_quant_state_from_module) and which follows the weight only when it moves
    through Params4bit.to. A guard: whatever is still elsewhere is moved."""
    import torch

    target, moved = torch.device(device), 0
    for module in model.modules():
        state = getattr(module, "quant_state", None)
        if state is not None and hasattr(state, "absmax") and state.absmax.device != target:
            state.to(target)
            moved += 1
    return moved


def full_state_dict(trainer: Any) -> dict[str, Any]:
    """The model's whole state dict gathered from FSDP shards; every rank must call it, rank 0 gets the tensors."""
    return trainer.accelerator.get_state_dict(trainer.model)


def accept_cpu_ordinals() -> None:
    """Let torch.load map to 'cpu:0'. accelerate names the device of a multi-process CPU run 'cpu:0', and
    transformers resumes the optimizer with map_location=args.device, which torch.load cannot restore to."""
    import torch.serialization as ser

    def restore(obj: Any, location: str) -> Any:
        return obj if location.startswith("cpu:") else None

    if not getattr(ser, "_booktune_cpu_ordinals", False):
        ser.register_package(11, lambda obj: None, restore)
        ser._booktune_cpu_ordinals = True
