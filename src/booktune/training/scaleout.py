"""Scale-out decisions: which cards to train on, DDP or FSDP, the batch per step, where activations wait.

booktune does not distribute anything itself. torchrun / `accelerate launch` start one process per GPU, and
accelerate (inside transformers' Trainer) runs PyTorch DDP or FSDP. This module only decides, from plain data:
- who talks and writes: rank 0 only (`devices.World.main`);
- which cards: on a mixed machine the largest card (or the cards like it), since DDP runs at the small card's pace;
- DDP when the model fits one card, FSDP full-shard when it does not (`choose_strategy`);
- gradient accumulation from a global batch, so N processes see the same examples per step as one.

Everything that decides is a pure function of its arguments (card lists, env dicts), tested without GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from booktune.devices import Card, CardChoice, like_largest, memory_fraction, world
from booktune.errors import BooktuneError

if TYPE_CHECKING:
    from booktune.config import TrainConfig
    from booktune.training.backends.base import Backend

STRATEGIES = ("auto", "ddp", "fsdp")


class DistributedError(BooktuneError):
    """A scale-out setting that cannot work here; the message names the field."""


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


def plan_gpus(gpus: str | None) -> int:
    """How many GPUs `booktune plan` sizes the run for: `train.gpus` ('all': the visible cards), else one."""
    from booktune.devices import visible_cards

    return parse_gpus(gpus, len(visible_cards()) if gpus == "all" else 0) or 1


def single_process(train: TrainConfig) -> None:
    """`booktune run` trains in its own process; several GPUs go through `booktune train --gpus N`."""
    if train.gpus:
        raise DistributedError("config field train.gpus: `booktune run` trains in this process; for several GPUs "
                               "run `booktune prepare`, then `booktune train --gpus N`")


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
                  # bitsandbytes' 8-bit AdamW cannot step FSDP2's DTensor shards (it raises "got mixed
                  # torch.Tensor and DTensor"); the LoRA moments are sharded, so fp32 ones cost 1/N each.
                  "optim": "adamw_torch"}
    return extra


def load_device(strategy: str, device: str, weights_fit_card: bool | None = None) -> str:
    """Where each rank loads the base model: its own card, unless FSDP must shard weights too big for it; then
    the CPU (bitsandbytes quantizes there too) and FSDP moves each rank's shard to its card."""
    return "cpu" if strategy == "fsdp" and weights_fit_card is not True else device


def choose_offload(requested: bool | None, *, strategy: str, backend: Backend,
                   kept_fits: bool | None) -> tuple[bool, str]:
    """The activation offload (offload_activations): as asked, else on, except under DDP where plan says the card
    holds the kept activations. Each DDP step waits for the slower rank, and the offload's host copies make steps
    uneven (docs/distributed.md). One process keeps offloading, which saves memory for little time."""
    if requested is not None:
        return requested, ""
    if strategy != "ddp" or not backend.offloads_activations or kept_fits is not True:
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
        from booktune.training.callbacks import QuantStatesFollowShards

        return [QuantStatesFollowShards()] if self.strategy == "fsdp" else []


def early_strategy(requested: str, env: Mapping[str, str] | None = None) -> str:
    """The strategy as far as it is known before any model is read: 'fsdp' only when asked for by name (or by
    `accelerate launch --use_fsdp`). `--gpus` resolves 'auto' before launching, so its processes see the answer."""
    w = world(env)
    if not w.distributed:
        return "single"
    return "fsdp" if requested == "fsdp" or accelerate_fsdp_env(env) else "ddp"


def scale_out(train: TrainConfig, *, device: str, backend: Backend,
              env: Mapping[str, str] | None = None) -> ScaleOut:
    """The strategy for this process's group (every rank reaches the same answer), its accumulation steps, and
    whether activations are offloaded (`train.offload_activations` None: choose_offload decides)."""
    w = world(env)
    accum = global_grad_accum(train.global_batch_size, train.batch_size, train.grad_accum, w.size)
    if w.distributed and device.startswith("cpu"):
        accept_cpu_ordinals()
    if w.distributed and accelerate_fsdp_env(env):
        strategy, note = "fsdp", "FSDP, as `accelerate launch` was configured"
    else:
        fits = card_fits(train, device, backend) if w.distributed and train.distributed == "auto" else None
        strategy, note = choose_strategy(train.distributed, processes=w.size, fits_one_card=fits)
    if strategy == "fsdp" and not backend.runs_fsdp:  # 'auto' found the model too big only now, the backend loaded
        raise DistributedError(f"config field train.distributed: 'auto' needs FSDP for this model, which the "
                               f"{backend.name} backend does not run; pass --distributed fsdp or --backend hf")
    weights_fit = card_fits(train, device, backend, weights_only=True) if strategy == "fsdp" else None
    kept_fits = None  # asked of plan only when choose_offload would read it
    if train.offload_activations is None and strategy == "ddp" and backend.offloads_activations:
        kept = train.model_copy(update={"offload_activations": False})
        kept_fits = card_fits(kept, device, backend, ddp_gpus=w.size)
    offload, offload_note = choose_offload(train.offload_activations, strategy=strategy, backend=backend,
                                           kept_fits=kept_fits)
    return ScaleOut(strategy, w.size, accum, note, weights_fit, offload, offload_note)


def card_fits(train: TrainConfig, device: str, backend: Backend, weights_only: bool = False,
              ddp_gpus: int = 1) -> bool | None:
    """plan's verdict for this process's card: the whole run (alone, or as one of `ddp_gpus` DDP ranks), or just the
    base weights (None on a CPU or without an estimate)."""
    if not device.startswith("cuda"):
        return None
    import torch

    from booktune.training.memory_split import fits_one_card, weights_fit

    index = torch.device(device).index or 0
    card = int(torch.cuda.get_device_properties(index).total_memory * memory_fraction(index))
    if weights_only:
        return weights_fit(train, backend, card, world().size)
    return fits_one_card(train, backend, card, ddp_gpus)


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


def describe_split(shape: Any, train: TrainConfig, backend: Backend, card_bytes: float, gpus: int) -> list[str]:
    """Lines for `booktune plan --gpus N`: the strategy and backend those processes would choose, the activation
    offload as scale_out would choose it, and each GPU's peak."""
    from booktune.training.backends import for_strategy
    from booktune.training.memory import gpu_view, predict
    from booktune.training.memory_split import HEADROOM, per_gpu

    asked = train.offload_activations
    train = gpu_view(train)
    strategy, why = choose_strategy(train.distributed, processes=gpus,
                                    fits_one_card=predict(shape, train, backend).total <= card_bytes)
    backend, note = for_strategy(backend, strategy)
    kept = per_gpu(predict(shape, train.model_copy(update={"offload_activations": False}), backend), gpus, strategy)
    offload, offload_note = choose_offload(asked, strategy=strategy, backend=backend,
                                           kept_fits=kept.total <= HEADROOM * card_bytes)
    mem = per_gpu(predict(shape, train.model_copy(update={"offload_activations": offload}), backend), gpus, strategy)
    return [f"on {gpus} GPUs: {why}", *[f"  {n}" for n in (note, offload_note) if n], *mem.summary(card_bytes, True)]
