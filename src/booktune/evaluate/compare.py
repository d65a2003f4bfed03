"""Base and tuned continuations of the same held-out prompts, with the same seeded sampling.

The base model is the PeftModel with its adapter switched off (`disable_adapter()`), so it is never loaded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


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
    step = max(1, len(records) // n)
    return records[::step][:n]


@torch.no_grad()
def generate_batch(model: Any, tokenizer: Any, prompts: list[list[dict]], *, max_new_tokens: int,
                   temperature: float, top_p: float, seed: int) -> list[str]:
    """Continue each prompt (messages ending with a user turn); left-padded into one batch, seeded."""
    from booktune.chat.template import render_prompt_ids, stop_token_ids

    device = next(model.parameters()).device
    ids = [render_prompt_ids(tokenizer, m) for m in prompts]
    width = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id
    batch = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)  # [B, T]
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)  # [B, T]
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {
        "do_sample": False}
    torch.manual_seed(seed)
    out = model.generate(input_ids=batch, attention_mask=mask, max_new_tokens=max_new_tokens,
                         eos_token_id=stop_token_ids(tokenizer), pad_token_id=pad, **sampling)  # [B, T + new]
    return [tokenizer.decode(row[width:], skip_special_tokens=True, clean_up_tokenization_spaces=False).strip()
            for row in out]


def compare_continuations(peft_model: Any, tokenizer: Any, records: list[dict[str, Any]], *, n: int,
                          max_new_tokens: int, temperature: float, top_p: float, seed: int,
                          batch_size: int = 8) -> list[Comparison]:
    """Base (adapter off) and tuned continuations of `n` held-out prompts, each batch seeded alike for both."""
    picked = pick_records(records, n)
    kw = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
    was_training = peft_model.training
    peft_model.eval()
    base, tuned = [], []
    for i in range(0, len(picked), batch_size):
        prompts = [r["messages"][:-1] for r in picked[i : i + batch_size]]
        tuned += generate_batch(peft_model, tokenizer, prompts, seed=seed + i, **kw)
        with peft_model.disable_adapter():
            base += generate_batch(peft_model, tokenizer, prompts, seed=seed + i, **kw)
    peft_model.train(was_training)
    return [Comparison(r["id"], r["lead_in"], b, t, r["passage"]) for r, b, t in zip(picked, base, tuned)]
