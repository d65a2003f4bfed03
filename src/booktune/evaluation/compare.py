"""Base and tuned continuations of the same held-out prompts, with the same seeded sampling.

The base model is the PeftModel with its adapter switched off (`disable_adapter()`), so it is never loaded twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from booktune.evaluation.basecache import OFF, BaseCache, tokenizer_digest
from booktune.inference.generate import Reply, replies_in_batches


@dataclass
class Comparison:
    id: str
    lead_in: str
    base: str
    tuned: str
    reference: str  # the author's real continuation


def pick_records(records: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """`n` records spread evenly across the split (every book gets its share)."""
    if n <= 0 or not records:
        return []
    n = min(n, len(records))
    return [records[i * len(records) // n] for i in range(n)]


def paired_replies(peft_model: Any, tokenizer: Any, records: list[dict[str, Any]], *, max_new_tokens: int,
                   temperature: float, top_p: float, seed: int, batch_size: int = 16,
                   cache: BaseCache = OFF) -> tuple[list[Reply], list[Reply]]:
    """(base, tuned) replies to each record's conversation without its answer; base is the adapter switched off,
    and each batch is seeded alike for both. Base replies sampled alike before are read back from `cache`."""
    kw = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
    prompts = [r["messages"][:-1] for r in records]
    was_training = peft_model.training
    peft_model.eval()

    def replies() -> list[Reply]:
        return replies_in_batches(peft_model, tokenizer, prompts, batch_size=batch_size, seed=seed, **kw)

    with folded_adapter(peft_model):
        tuned = replies()

    def base_replies() -> list[dict]:
        with peft_model.disable_adapter():
            return [r.__dict__ for r in replies()]

    inputs = {"prompts": prompts, "tokenizer": tokenizer_digest(tokenizer), "seed": seed, "batch_size": batch_size}
    base = [Reply(**r) for r in cache.get_or_measure(peft_model, "replies", inputs | kw, base_replies)[0]]
    peft_model.train(was_training)
    return base, tuned


def foldable_layers(peft_model: Any) -> list[Any]:
    """The LoRA layers whose product can be folded into a copy of their weight for sampling: plain Linear layers
    on the CPU (no quantized base, no DoRA), where a copy of the weights is cheap; [] if any other layer is there."""
    from peft.tuners.lora import LoraLayer
    from peft.tuners.lora.layer import Linear

    layers = [m for m in peft_model.modules() if isinstance(m, LoraLayer)]
    if any(type(m) is not Linear or any(m.use_dora.values()) or m.get_base_layer().weight.device.type != "cpu"
           for m in layers):
        return []
    return layers


@contextlib.contextmanager
def folded_adapter(peft_model: Any) -> Iterator[None]:
    """The tuned model, sampled with each layer's LoRA product folded into a copy of its weight (one matmul a layer
    instead of three) where `foldable_layers` allows; the layers' own weights are swapped back untouched after.
    Elsewhere the adapter runs as it is."""
    import torch

    layers = foldable_layers(peft_model)
    if not layers:
        yield
        return
    own = []
    with torch.no_grad():
        for layer in layers:
            weight = layer.get_base_layer().weight
            own.append((weight, weight.data))
            deltas = [layer.get_delta_weight(name).float() for name in layer.active_adapters if name in layer.lora_A]
            # new storage, rounded once to the weight's dtype: the layer's own weight stays as it was
            weight.data = (weight.data.float() + sum(deltas)).to(weight.dtype)
    try:
        with peft_model.disable_adapter():
            yield
    finally:
        for weight, data in own:
            weight.data = data


def compare_continuations(peft_model: Any, tokenizer: Any, records: list[dict[str, Any]], *, n: int,
                          max_new_tokens: int, temperature: float, top_p: float, seed: int,
                          batch_size: int = 16, cache: BaseCache = OFF) -> list[Comparison]:
    """Base (adapter off) and tuned continuations of `n` held-out prompts, each batch seeded alike for both."""
    picked = pick_records([r for r in records if r.get("task", "continue") == "continue"], n)
    base, tuned = paired_replies(peft_model, tokenizer, picked, max_new_tokens=max_new_tokens,
                                 temperature=temperature, top_p=top_p, seed=seed, batch_size=batch_size, cache=cache)
    return [Comparison(r["id"], r["lead_in"], b.text, t.text, r["passage"]) for r, b, t in zip(picked, base, tuned)]
