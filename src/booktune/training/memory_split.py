"""Per-GPU memory of a run spread over N GPUs (DDP or FSDP full-shard), and whether a model fits one card.

`training.memory` predicts the single-GPU peak in parts; DDP and FSDP treat the parts differently:
- weights: DDP keeps a whole copy per GPU; FSDP keeps 1/N, plus the decoder layers it has gathered whole at a time
  (the current one and the prefetched next one).
- adapter: LoRA weights, gradients and optimizer moments. DDP keeps them whole, plus the gradient buckets it
  all-reduces (4 bytes a LoRA parameter); FSDP shards them 1/N, with fp32 moments (torch's AdamW).
- activations: set by the per-GPU batch (batch_size x max_seq_length), the same under both.
- overhead: CUDA context, the same. (NCCL's own buffers, a few hundred MiB, are not counted yet.)

Checked against the per-GPU peaks benchmarks/train_scaling.py measured (docs/benchmarks.md, "Scale-out";
tests/training/test_training_scaleout.py holds them).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from booktune.training.memory import ADAPTER, Plan, PlanError, estimate

if TYPE_CHECKING:
    from booktune.config import TrainConfig
    from booktune.training.backends.base import Backend

BUCKET = 4.0  # bytes per LoRA parameter: DDP's fp32 gradient buckets
FSDP_ADAPTER = 16.0  # bytes per LoRA parameter under FSDP: fp32 weight, gradient and torch AdamW's two moments
HEADROOM = 1.0  # share of a card a plan may fill and still be said to fit (plan's totals include slack)


def per_gpu(single: Plan, gpus: int, strategy: str) -> Plan:
    """One GPU's share when the same per-GPU batch runs on `gpus` GPUs under 'ddp' or 'fsdp'."""
    if gpus <= 1 or strategy == "single":
        return single
    if strategy == "ddp":
        return replace(single, adapter=single.adapter * (1 + BUCKET / ADAPTER))
    if strategy == "fsdp":
        gathered = 2 * single.layer  # the current layer and the prefetched next one, unsharded
        adapter = single.adapter * FSDP_ADAPTER / ADAPTER / gpus  # torch's AdamW: bitsandbytes' cannot step shards
        return replace(single, weights=single.weights / gpus + gathered, adapter=adapter)
    raise ValueError(f"unknown strategy {strategy!r}")


def fits_one_card(train: TrainConfig, backend: Backend, card_bytes: int, ddp_gpus: int = 1) -> bool | None:
    """Whether the whole run fits one card of `card_bytes`, alone or as one of `ddp_gpus` DDP ranks (None: the
    model cannot be sized)."""
    try:
        plan = per_gpu(estimate(train, backend), ddp_gpus, "ddp" if ddp_gpus > 1 else "single")
    except PlanError:
        return None
    return plan.total <= HEADROOM * card_bytes


def weights_fit(train: TrainConfig, backend: Backend, card_bytes: int, gpus: int = 2) -> bool | None:
    """Whether the base weights (4-bit where asked) can load whole on one card and then be sharded there.

    accelerate's FSDP2 preparation keeps the whole state dict referenced while fully_shard copies each rank's shard,
    so the card holds the whole model plus its 1/N shard for a moment (docs/distributed.md)."""
    try:
        single = estimate(train, backend)
    except PlanError:
        return None
    return single.weights * (1 + 1 / max(gpus, 1)) + single.overhead + 2 * single.layer <= card_bytes
