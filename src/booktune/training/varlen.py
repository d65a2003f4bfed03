"""Packed-sequence attention for the hf backend: FlashAttention's variable-length kernel as shipped inside PyTorch.

Packed rows carry `position_ids` that restart at 0 for every example. transformers 5 turns that into a dense
block-diagonal mask for SDPA, which rules out SDPA's flash kernel (it takes no mask) and leaves the slower
memory-efficient one. Here the example boundaries become `cu_seqlens` and each example attends only to itself
through `aten._flash_attention_forward` (FlashAttention 2, bundled with CUDA builds of PyTorch; no flash-attn
package, no Hub kernel). On CPU, or for shapes the kernel refuses, the same function runs SDPA per segment, which
is exact and is what the CPU tests exercise.

Registered as the attention implementation "booktune_varlen". Padded batches (an explicit attention mask) and
decoding with a cache go to transformers' SDPA path unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from booktune.inference.attention import plain_softmax_attention
from booktune.training.packing import VARLEN as NAME

_last: list = [None, None]  # (position_ids tensor, its (cu_seqlens, max_len)): one host sync per forward, not per layer


def seq_bounds(position_ids: torch.Tensor | None, batch: int, seq: int,
               device: torch.device) -> tuple[torch.Tensor, int]:
    """cu_seqlens (int32, [n_segments + 1]) and the longest segment of a (batch, seq) packed layout."""
    if position_ids is None:
        return torch.arange(0, batch * seq + 1, seq, dtype=torch.int32, device=device), seq
    if _last[0] is position_ids:
        return _last[1]
    flat = position_ids.expand(batch, seq).reshape(-1)  # [batch * seq]
    starts = torch.nonzero(flat == 0).flatten()  # every row starts with position 0, so rows are segments too
    total = torch.tensor([flat.numel()], device=flat.device)
    cu = torch.cat([starts, total]).to(device=device, dtype=torch.int32)
    result = (cu, int((cu[1:] - cu[:-1]).max().item()))
    _last[:] = [position_ids, result]
    return result


class _FlashVarlen(torch.autograd.Function):
    """FlashAttention 2 varlen through PyTorch's own ops. q: [T, Hq, D]; k, v: [T, Hkv, D]; Hq a multiple of Hkv.
    `window` is (left, right) as FlashAttention takes it, -1 for unbounded."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_q: torch.Tensor, cu_k: torch.Tensor,
                max_q: int, max_k: int, scale: float, causal: bool, window: tuple[int, int]) -> torch.Tensor:
        out, lse, rng, unused, _ = torch.ops.aten._flash_attention_forward(
            q, k, v, cu_q, cu_k, max_q, max_k, 0.0, causal, False, scale=scale,
            window_size_left=window[0], window_size_right=window[1])
        ctx.save_for_backward(q, k, v, cu_q, cu_k, out, lse, rng, unused)
        ctx.args = (max_q, max_k, scale, causal, window)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        q, k, v, cu_q, cu_k, out, lse, rng, unused = ctx.saved_tensors
        max_q, max_k, scale, causal, window = ctx.args
        dq, dk, dv = torch.ops.aten._flash_attention_backward(
            grad.contiguous(), q, k, v, out, lse, cu_q, cu_k, max_q, max_k, 0.0, causal, rng, unused,
            scale=scale, window_size_left=window[0], window_size_right=window[1])
        return dq, dk, dv, None, None, None, None, None, None, None


def flash_varlen_attn(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cu_seq_q: torch.Tensor,
                      cu_seq_k: torch.Tensor, max_q: int, max_k: int, *, scale: float | None = None,
                      window_size: tuple[int, int] = (-1, -1), enable_gqa: bool = False) -> torch.Tensor:
    """`torch.nn.attention.varlen.varlen_attn` (torch >= 2.12) on torch 2.6+: [T, H, D] in and out; causal when
    window_size is (-1, 0), a sliding window when it is (w, 0). GQA needs nothing more: the kernel takes Hkv < Hq."""
    scale = scale if scale is not None else query.shape[-1] ** -0.5
    causal = tuple(window_size) == (-1, 0)
    return _FlashVarlen.apply(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, scale, causal,
                              tuple(window_size))


def segment_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, scale: float,
                 window: int) -> torch.Tensor:
    """Causal SDPA on each segment alone, on slices of the heads-first layout the model computes (no copies of
    q, k, v; grouped KV heads read in place). q: [1, Hq, T, D]; k, v: [1, Hkv, T, D] -> [1, Hq, T, D]. On a CPU
    this is faster than one SDPA call over the row's block-diagonal mask, which scores every pair of the row's
    tokens (docs/benchmarks.md, "Per-example attention on a CPU")."""
    outs = []
    for a, b in zip(cu[:-1].tolist(), cu[1:].tolist()):
        mask = None
        if window >= 0:
            i = torch.arange(b - a, device=q.device)
            mask = (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] <= window)
        outs.append(F.scaled_dot_product_attention(q[:, :, a:b], k[:, :, a:b], v[:, :, a:b], attn_mask=mask,
                                                   is_causal=mask is None, scale=scale,
                                                   enable_gqa=k.shape[1] != q.shape[1]))
    return torch.cat(outs, dim=2)


def flash_ok(q: torch.Tensor) -> bool:
    return (q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and q.shape[-1] <= 256 and q.shape[-1] % 8 == 0
            and torch.backends.cuda.is_flash_attention_available())


def varlen_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                     sliding_window: int | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers attention interface. query: [B, Hq, S, D]; key, value: [B, Hkv, S, D] -> [B, S, Hq, D]."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, seq, dim = query.shape
    if attention_mask is not None or key.shape[2] != seq or (dropout and module.training):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      sliding_window=sliding_window, **kwargs)
    scale = scaling if scaling is not None else dim ** -0.5
    window = sliding_window - 1 if sliding_window else -1
    cu, max_len = seq_bounds(kwargs.get("position_ids"), batch, seq, query.device)
    if not flash_ok(query):  # rows laid end to end, heads first: a view, not a copy, for one row
        q, k, v = (x.transpose(0, 1).reshape(1, x.shape[1], batch * seq, dim) for x in (query, key, value))
        out = segment_sdpa(q, k, v, cu, scale, window)  # [1, Hq, B * S, D]
        return out.view(heads, batch, seq, dim).permute(1, 2, 0, 3), None
    q, k, v = (x.transpose(1, 2).reshape(batch * seq, x.shape[1], dim) for x in (query, key, value))
    out = flash_varlen_attn(q, k, v, cu, cu, max_len, max_len, scale=scale,
                            window_size=(window, 0) if window >= 0 else (-1, 0))
    return out.view(batch, seq, heads, dim), None


def varlen_mask(*args: Any, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor | None:
    """No mask for packed or plain causal batches (cu_seqlens carry the boundaries); SDPA's mask for padded ones."""
    from transformers.masking_utils import sdpa_mask

    return None if attention_mask is None else sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, varlen_attention)
    AttentionMaskInterface.register(NAME, varlen_mask)


def use_varlen(model: Any) -> str | None:
    """Switch `model` to "booktune_varlen"; returns the implementation to restore afterwards, or None if unsupported."""
    if not plain_softmax_attention(model):
        return None
    register()
    previous = model.config._attn_implementation
    model.set_attn_implementation(NAME)
    return previous
