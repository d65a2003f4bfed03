"""Per-GPU memory of a run spread over N GPUs (DDP or FSDP full-shard), and whether a model fits one card.

The single-GPU estimate is split into what DDP and FSDP treat differently:
- weights: the base model. DDP keeps a whole copy per GPU; FSDP keeps 1/N, plus the one or two decoder layers it
  has gathered whole at a time (the current layer and the prefetched next one).
- adapter: LoRA weights, gradients and AdamW's two moments, fp32. DDP keeps them whole (plus a gradient bucket
  copy for the all-reduce); FSDP shards them 1/N.
- activations: per GPU batch (batch_size x max_seq_length tokens), the same under both.
- overhead: CUDA context and allocator slack.

The numbers come from `booktune.plan.memory_breakdown(train)` when the GPU fast path's planner provides it (same
four fields, bytes); until then from the model's config.json here. Neither has been checked against measured peaks
on several GPUs yet (see docs/distributed.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

GIB = 2**30
NF4_BYTES = 0.53  # 4 bits, plus one fp32 absmax per 64 values, double-quantized to 8 bits
CONTEXT = 0.9 * GIB  # CUDA context + cuBLAS workspace
SLACK = 0.07  # allocator fragmentation, as a share of the rest
HEADROOM = 0.95  # a plan that uses more than this share of a card is said not to fit


@dataclass(frozen=True)
class Memory:
    """Bytes on one GPU, by what holds them."""

    weights: float
    layer: float  # one decoder layer's weights (what FSDP gathers whole at a time)
    adapter: float
    activations: float
    overhead: float = CONTEXT

    @property
    def total(self) -> float:
        return (self.weights + self.adapter + self.activations) * (1 + SLACK) + self.overhead


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool

    @classmethod
    def from_config(cls, c: dict[str, Any]) -> "Shape":
        c = c.get("text_config", c)
        heads = c["num_attention_heads"]
        return cls(c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], c["vocab_size"], heads,
                   c.get("num_key_value_heads") or heads, c.get("head_dim") or c["hidden_size"] // heads,
                   bool(c.get("tie_word_embeddings", False)))

    def projections(self) -> list[tuple[int, int]]:
        """(in, out) of each linear layer in one decoder layer."""
        h, q, kv, i = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        return [(h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h)]


def single_gpu(train: Any, shape: Shape) -> Memory:
    """The whole run on one GPU, from the model shape and the train settings."""
    four_bit = train.load_in_4bit is not False  # default on with CUDA
    checkpointing = train.gradient_checkpointing is not False
    linear = sum(a * b for a, b in shape.projections())  # per layer
    embed = shape.vocab * shape.hidden * (1 if shape.tied else 2) * 2  # bf16, never quantized
    layer = linear * (NF4_BYTES if four_bit else 2)
    lora = sum(train.lora_r * (a + b) for a, b in shape.projections()) * shape.layers
    tokens = train.batch_size * train.max_seq_length
    one_layer = tokens * (10 * shape.hidden + 4 * shape.intermediate) * 2  # bf16 activations inside a layer
    kept = tokens * shape.hidden * 2 * shape.layers if checkpointing else one_layer * shape.layers
    logits = tokens * shape.vocab * 6  # bf16 logits and the fp32 copy the loss reads
    return Memory(weights=layer * shape.layers + embed, layer=layer, adapter=lora * 16,
                  activations=kept + one_layer + logits)


def per_gpu(single: Memory, gpus: int, strategy: str) -> Memory:
    """One GPU's share when the same per-GPU batch runs on `gpus` GPUs under 'ddp' or 'fsdp'."""
    if gpus <= 1 or strategy == "single":
        return single
    if strategy == "ddp":
        return replace(single, adapter=single.adapter * 1.25)  # + fp32 gradient buckets for the all-reduce
    if strategy == "fsdp":
        gathered = 2 * single.layer  # the current layer and the prefetched next, unsharded
        return replace(single, weights=single.weights / gpus + gathered, adapter=single.adapter / gpus)
    raise ValueError(f"unknown strategy {strategy!r}")


def model_shape(model: str) -> Shape | None:
    """The base model's shape from its local config.json; None for a Hub id not on disk."""
    from booktune.model import ModelError, resolve_model

    try:
        source = resolve_model(model)
    except ModelError:
        return None
    config = Path(source.path) / "config.json"
    if source.hub or not config.is_file():
        return None
    return Shape.from_config(json.loads(config.read_text(encoding="utf-8")))


def estimate(train: Any, gpus: int = 1, strategy: str = "single") -> Memory | None:
    """Per-GPU memory for the TrainConfig `train`; booktune.plan's breakdown when it has one."""
    try:
        from booktune.plan import memory_breakdown  # the GPU fast path's planner, when it offers a breakdown
    except ImportError:
        memory_breakdown = None
    if memory_breakdown is not None:
        single = memory_breakdown(train)
        single = Memory(**single) if isinstance(single, dict) else single
    else:
        shape = model_shape(train.model)
        single = single_gpu(train, shape) if shape else None
    return per_gpu(single, gpus, strategy) if single else None


def fits_one_card(train: Any, card_bytes: int) -> bool | None:
    """Whether the whole run fits one card of `card_bytes` (None: no estimate)."""
    mem = estimate(train)
    return None if mem is None else mem.total <= HEADROOM * card_bytes


def describe(mem: Memory, gpus: int, strategy: str) -> list[str]:
    """Lines for `booktune plan --gpus N --distributed ...`."""
    what = "one GPU" if gpus <= 1 or strategy == "single" else f"each of {gpus} GPUs ({strategy.upper()})"
    return [f"peak memory on {what}: {mem.total / GIB:.1f} GiB",
            f"  base weights {mem.weights / GIB:.2f} GiB, LoRA + optimizer {mem.adapter / GIB:.2f} GiB, "
            f"activations {mem.activations / GIB:.2f} GiB, CUDA overhead {mem.overhead / GIB:.1f} GiB"]
