"""Packed examples kept apart where a model's own attention masks would let them see each other.

transformers 5.17 builds GPT-OSS's causal and sliding-window masks without the position ids, so the restarting
positions of a packed row do not become example boundaries there (packing.py relies on them everywhere else). Here
booktune derives each token's example from the position ids and hands the model a mask per layer type that keeps
every example to itself, the sliding window counted inside it:
- `mask_mapping`: additive masks for eager attention, passed as the `attention_mask` dict the modeling accepts;
- `within_examples`: a FlexAttention mask_mod narrowed to one example, for Unsloth's flex path (backends/unsloth.py).

Attention sinks need nothing more: a sink adds one term to each query's softmax denominator, whatever keys it may
see, so masking the keys is all isolation asks of them.
"""

from __future__ import annotations

from typing import Any

import torch


def example_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Each token's example within its row: 0 for the first, counting up at every position id of 0."""
    return torch.cumsum((position_ids == 0).to(torch.int32), dim=-1) - 1


def packed(position_ids: torch.Tensor | None) -> bool:
    """Whether some row holds more than one example (its position ids restart after the first token)."""
    return position_ids is not None and position_ids.shape[-1] > 1 and bool((position_ids[..., 1:] == 0).any())


def allowed(position_ids: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """(batch, 1, seq, seq) bool: query i may attend key j (causal, same example, and within `window` if set)."""
    ids = example_ids(position_ids)
    seq = position_ids.shape[-1]
    q = torch.arange(seq, device=position_ids.device)
    ok = (q[None, :] <= q[:, None])[None] & (ids[:, :, None] == ids[:, None, :])
    if window:
        ok &= (q[:, None] - q[None, :] < window)[None]
    return ok[:, None]


def mask_mapping(config: Any, position_ids: torch.Tensor, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """{layer type: additive (batch, 1, seq, seq) mask} for eager attention, as GPT-OSS's forward accepts it."""
    window = getattr(config, "sliding_window", None)
    kinds = set(getattr(config, "layer_types", None) or ["full_attention"])
    full = allowed(position_ids)
    ok = {"full_attention": full} if "full_attention" in kinds else {}
    if "sliding_attention" in kinds:
        q = torch.arange(position_ids.shape[-1], device=position_ids.device)
        ok["sliding_attention"] = full & (q[:, None] - q[None, :] < window) if window else full
    return {kind: torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(~m, torch.finfo(dtype).min)
            for kind, m in ok.items()}


def decoder(model: Any) -> Any:
    """The module that builds the masks (GptOssModel inside GptOssForCausalLM, under PEFT's wrapper or not)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder() if hasattr(base, "get_decoder") else base


def hand_masks(model: Any, only_eval: bool = False) -> Any:
    """Give `model` booktune's per-example masks on every forward over packed rows without a mask of their own (in
    evaluation only, with `only_eval`). Returns the hook handle (remove() undoes it)."""
    inner = decoder(model)
    config = inner.config

    def hook(module: Any, args: tuple, kwargs: dict) -> tuple | None:
        position_ids = kwargs.get("position_ids")
        if (only_eval and module.training) or kwargs.get("attention_mask") is not None or not packed(position_ids):
            return None
        embed = module.get_input_embeddings().weight
        kwargs["attention_mask"] = mask_mapping(config, position_ids.to(embed.device), embed.dtype)
        return args, kwargs

    return inner.register_forward_pre_hook(hook, with_kwargs=True)


class ExampleIds:
    """The current packed row's example ids, in one buffer that keeps its identity from step to step.

    A FlexAttention mask_mod that reads it is the same function object every step, so compiled attention kernels
    are not rebuilt for each new batch; `step` counts forwards, so a block mask is built once per step and reused
    by every layer and by the recomputation of checkpointed layers."""

    def __init__(self) -> None:
        self.ids: torch.Tensor | None = None
        self.length = 0
        self.step = 0
        self.mods: dict[Any, Any] = {}

    def update(self, position_ids: torch.Tensor | None) -> None:
        self.step += 1
        if not packed(position_ids):
            self.length = 0
            return
        if position_ids.shape[0] != 1:
            raise ValueError("packed rows must be flattened into one row for flex attention")
        ids = example_ids(position_ids[0])
        room = -(-ids.numel() // 128) * 128 + 128  # flex evaluates whole 128-token blocks
        if self.ids is None or self.ids.numel() < room or self.ids.device != ids.device:
            self.ids, self.mods = torch.full((room,), -1, dtype=ids.dtype, device=ids.device), {}
        self.ids[: ids.numel()].copy_(ids)
        self.length = ids.numel()

    def within_examples(self, mask_mod: Any) -> Any:
        """`mask_mod` narrowed to pairs of tokens of the same example."""
        if mask_mod not in self.mods:
            ids = self.ids

            def narrowed(b: Any, h: Any, q: Any, kv: Any) -> Any:
                return mask_mod(b, h, q, kv) & (ids[q] == ids[kv])

            self.mods[mask_mod] = narrowed
        return self.mods[mask_mod]
