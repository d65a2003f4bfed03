"""Decoding attention on a CPU: one new token against the cache as two batched matmuls.

PyTorch's CPU SDPA kernel (flash attention for CPU) is built for long queries; for the one-token queries of
decoding it spends most of its time outside the arithmetic and is several times slower than computing the scores,
softmax and weighted sum directly (docs/benchmarks.md, "Decoding and sampling on a CPU"). The direct form is
transformers' eager attention (scores in the model's dtype, softmax in float32 at least) without repeating the
grouped KV heads: the query heads that share a KV head are laid out as that head's rows.

Registered as the attention implementation "booktune_decode", switched on only around `generate` on a CPU
(`cpu_decoding`); prompts (queries longer than one token) and every other device go to transformers' SDPA path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

NAME = "booktune_decode"


def plain_softmax_attention(model: Any) -> bool:
    """Standard softmax attention only: no attention sinks (GPT-OSS) and no logit soft-capping (Gemma 2); Gemma 3's
    mixed layer types are left to transformers too."""
    config = model.config.get_text_config()
    if getattr(config, "model_type", "") in ("gpt_oss", "gemma2", "gemma3", "gemma3_text"):
        return False
    if getattr(config, "attn_logit_softcapping", None):
        return False
    return any(type(m).__name__.endswith("Attention") for m in model.modules())


def one_token_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
                        scale: float) -> torch.Tensor:
    """query: [B, Hq, 1, D]; key, value: [B, Hkv, T, D]; mask: None, or [B, 1 or Hq, 1, T] (bool: True attends;
    float: added to the scores) -> [B, 1, Hq, D]."""
    batch, heads, _, dim = query.shape
    kv_heads, length = key.shape[1], key.shape[2]
    q = query.reshape(batch, kv_heads, heads // kv_heads, dim)  # the query heads of one KV head, as its rows
    scores = torch.matmul(q, key.transpose(-1, -2))  # [B, Hkv, G, T]
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32)) * scale  # softmax in float32 at least
    if mask is not None:
        mask = mask[:, :, -1:, :]
        mask = mask.reshape(batch, 1, 1, length) if mask.shape[1] == 1 else mask.reshape(q.shape[:-1] + (length,))
        scores = (scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool
                  else scores + mask.to(scores.dtype))
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    return torch.matmul(probs, value).reshape(batch, 1, heads, dim)


def decode_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                     **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers attention interface: `one_token_attention` for a one-token query on a CPU, SDPA otherwise."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if query.shape[2] != 1 or query.device.type != "cpu" or (dropout and module.training):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    return one_token_attention(query, key, value, attention_mask, scale), None


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, decode_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)


@contextlib.contextmanager
def cpu_decoding(model: Any) -> Iterator[None]:
    """`model` decodes with "booktune_decode" inside the block when it sits on a CPU and has plain softmax
    attention; its own implementation is set back after (also after an error)."""
    device = next(model.parameters()).device
    if device.type != "cpu" or not plain_softmax_attention(model):
        yield
        return
    register()
    previous = model.config._attn_implementation
    model.set_attn_implementation(NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(previous)
