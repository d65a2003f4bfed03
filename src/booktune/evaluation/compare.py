"""Base and tuned continuations of the same held-out prompts, with the same seeded sampling.

The base model is the PeftModel with its adapter switched off (`disable_adapter()`), so it is never loaded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from booktune.inference.generate import Reply, generate_replies


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
                   temperature: float, top_p: float, seed: int,
                   batch_size: int = 8) -> tuple[list[Reply], list[Reply]]:
    """(base, tuned) replies to each record's conversation without its answer; base is the adapter switched off,
    and each batch is seeded alike for both."""
    kw = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
    was_training = peft_model.training
    peft_model.eval()
    base, tuned = [], []
    for i in range(0, len(records), batch_size):
        prompts = [r["messages"][:-1] for r in records[i : i + batch_size]]
        tuned += generate_replies(peft_model, tokenizer, prompts, seed=seed + i, **kw)
        with peft_model.disable_adapter():
            base += generate_replies(peft_model, tokenizer, prompts, seed=seed + i, **kw)
    peft_model.train(was_training)
    return base, tuned


def compare_continuations(peft_model: Any, tokenizer: Any, records: list[dict[str, Any]], *, n: int,
                          max_new_tokens: int, temperature: float, top_p: float, seed: int,
                          batch_size: int = 8) -> list[Comparison]:
    """Base (adapter off) and tuned continuations of `n` held-out prompts, each batch seeded alike for both."""
    picked = pick_records([r for r in records if r.get("task", "continue") == "continue"], n)
    base, tuned = paired_replies(peft_model, tokenizer, picked, max_new_tokens=max_new_tokens,
                                 temperature=temperature, top_p=top_p, seed=seed, batch_size=batch_size)
    return [Comparison(r["id"], r["lead_in"], b.text, t.text, r["passage"]) for r, b, t in zip(picked, base, tuned)]
