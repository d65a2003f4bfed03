"""Per-GPU memory of a run spread over N GPUs (DDP or FSDP full-shard), and whether a model fits one card.

`booktune.plan` predicts the single-GPU peak in parts; DDP and FSDP treat the parts differently:
- weights: DDP keeps a whole copy per GPU; FSDP keeps 1/N, plus the decoder layers it has gathered whole at a time
  (the current one and the prefetched next one).
- adapter: LoRA weights, gradients and optimizer moments. DDP keeps them whole, plus the gradient buckets it
  all-reduces (4 bytes a LoRA parameter); FSDP shards them 1/N, with fp32 moments (torch's AdamW).
- activations: set by the per-GPU batch (batch_size x max_seq_length), the same under both.
- overhead: CUDA context, the same. (NCCL's own buffers, a few hundred MiB, are not counted yet.)

Checked against peaks measured on 2 x H100 (benchmarks/train_scaling.py, docs/benchmarks.md "Scale-out"): within
-4 % to +4 % of the measured peak allocated for DDP on the 8B shape and FSDP on the 32B shape.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from booktune.plan import ADAPTER, Plan, PlanError, memory_breakdown

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


def estimate(train: Any, gpus: int = 1, strategy: str = "single") -> Plan:
    """Per-GPU memory for a TrainConfig-like `train`. Raises PlanError when the model's config cannot be read."""
    return per_gpu(Plan(**memory_breakdown(train)), gpus, strategy)


def fits_one_card(train: Any, card_bytes: int, ddp_gpus: int = 1) -> bool | None:
    """Whether the whole run fits one card of `card_bytes`, alone or as one of `ddp_gpus` DDP ranks (None: the
    model cannot be sized)."""
    try:
        return estimate(train, ddp_gpus, "ddp" if ddp_gpus > 1 else "single").total <= HEADROOM * card_bytes
    except PlanError:
        return None


def weights_fit(train: Any, card_bytes: int, gpus: int = 2) -> bool | None:
    """Whether the base weights (4-bit where asked) can load whole on one card and then be sharded there.

    accelerate's FSDP2 preparation keeps the whole state dict referenced while fully_shard copies each rank's shard,
    so the card holds the whole model plus its 1/N shard for a moment (measured: the 32B shape, 18.3 GiB in 4 bits
    by this plan, ran out of memory there on two H100s capped at 24 GiB)."""
    try:
        single = estimate(train)
    except PlanError:
        return None
    return single.weights * (1 + 1 / max(gpus, 1)) + single.overhead + 2 * single.layer <= card_bytes


def describe_split(shape: Any, settings: Any, card_bytes: float, gpus: int, requested: str,
                   offload_asked: bool | None = None) -> list[str]:
    """Lines for `booktune plan --gpus N --distributed auto|ddp|fsdp`: the strategy and each GPU's peak.
    `offload_asked` None: Unsloth's activation offload as training would choose it (distributed.choose_offload)."""
    from booktune.plan import predict
    from booktune.train.distributed import backend_for, choose_offload, choose_strategy

    fits = predict(shape, settings).total <= card_bytes
    strategy, why = choose_strategy(requested, processes=gpus, fits_one_card=fits)
    backend, note = backend_for(settings.backend, strategy)  # the backend those processes would train with
    kept = per_gpu(predict(shape, replace(settings, backend=backend, offload=False)), gpus, strategy)
    offload, offload_note = choose_offload(offload_asked, strategy=strategy, backend=backend,
                                           kept_fits=kept.total <= HEADROOM * card_bytes)
    lines = [f"on {gpus} GPUs: {why}"] + [f"  {n}" for n in (note, offload_note) if n]
    mem = per_gpu(predict(shape, replace(settings, backend=backend, offload=offload)), gpus, strategy)
    return lines + mem.summary(card_bytes, per_gpu=True)
