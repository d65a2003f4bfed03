"""Per-GPU memory of a run spread over N GPUs (DDP or FSDP full-shard), and whether a model fits one card.

`booktune.plan` predicts the single-GPU peak in parts; DDP and FSDP treat the parts differently:
- weights: DDP keeps a whole copy per GPU; FSDP keeps 1/N, plus the decoder layers it has gathered whole at a time
  (the current one and the prefetched next one).
- adapter: LoRA weights, gradients and optimizer moments. DDP keeps them whole, plus the gradient buckets it
  all-reduces (4 bytes a LoRA parameter); FSDP shards them 1/N.
- activations: set by the per-GPU batch (batch_size x max_seq_length), the same under both.
- overhead: CUDA context, the same. (NCCL's own buffers, a few hundred MiB, are not counted yet.)

The split has not been checked against peaks measured on several GPUs yet (benchmarks/train_scaling.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from booktune.plan import ADAPTER, GIB, Plan, PlanError, memory_breakdown

BUCKET = 4.0  # bytes per LoRA parameter: DDP's fp32 gradient buckets
HEADROOM = 1.0  # share of a card a plan may fill and still be said to fit (plan's totals include slack)


def per_gpu(single: Plan, gpus: int, strategy: str) -> Plan:
    """One GPU's share when the same per-GPU batch runs on `gpus` GPUs under 'ddp' or 'fsdp'."""
    if gpus <= 1 or strategy == "single":
        return single
    if strategy == "ddp":
        return replace(single, adapter=single.adapter * (1 + BUCKET / ADAPTER))
    if strategy == "fsdp":
        gathered = 2 * single.layer  # the current layer and the prefetched next one, unsharded
        return replace(single, weights=single.weights / gpus + gathered, adapter=single.adapter / gpus)
    raise ValueError(f"unknown strategy {strategy!r}")


def estimate(train: Any, gpus: int = 1, strategy: str = "single") -> Plan:
    """Per-GPU memory for a TrainConfig-like `train`. Raises PlanError when the model's config cannot be read."""
    return per_gpu(Plan(**memory_breakdown(train)), gpus, strategy)


def fits_one_card(train: Any, card_bytes: int) -> bool | None:
    """Whether the whole run fits one card of `card_bytes` (None: the model cannot be sized)."""
    try:
        return estimate(train).total <= HEADROOM * card_bytes
    except PlanError:
        return None


def weights_fit(train: Any, card_bytes: int) -> bool | None:
    """Whether the base weights alone (4-bit where asked) load on one card before FSDP shards them."""
    try:
        single = estimate(train)
    except PlanError:
        return None
    return single.weights + single.overhead + 2 * single.layer <= card_bytes


def describe(train: Any, gpus: int, strategy: str) -> list[str]:
    """Lines for `booktune plan --gpus N --distributed ddp|fsdp`."""
    mem = estimate(train, gpus, strategy)
    what = "one GPU" if gpus <= 1 or strategy == "single" else f"each of {gpus} GPUs ({strategy.upper()})"
    return [f"peak memory on {what}: {mem.total / GIB:.1f} GiB",
            f"  base weights {mem.weights / GIB:.2f} GiB, LoRA + optimizer {mem.adapter / GIB:.2f} GiB, "
            f"activations {mem.activations / GIB:.2f} GiB, CUDA context {mem.overhead / GIB:.1f} GiB"]
