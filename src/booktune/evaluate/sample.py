"""Sample continuations of held-out prompts, beside the author's real text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Sample:
    id: str
    lead_in: str
    generated: str
    reference: str


def generate(model: Any, tokenizer: Any, messages: list[dict], *, max_new_tokens: int, temperature: float,
             top_p: float, streamer: Any = None) -> str:
    """One assistant reply to `messages` (which end with a user turn), stopping at the template's end of turn."""
    from booktune.chat.template import render_prompt_ids, stop_token_ids

    device = next(model.parameters()).device
    ids = torch.tensor([render_prompt_ids(tokenizer, messages)], device=device)  # [1, T]
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {
        "do_sample": False}
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             eos_token_id=stop_token_ids(tokenizer), pad_token_id=tokenizer.pad_token_id,
                             streamer=streamer, **sampling)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True,
                            clean_up_tokenization_spaces=False).strip()


def sample_continuations(model: Any, tokenizer: Any, records: list[dict[str, Any]], *, n: int, max_new_tokens: int,
                         temperature: float, top_p: float, seed: int = 0) -> list[Sample]:
    """Continue the first `n` held-out prompts (spread across the split), seeded for repeatability."""
    if n <= 0 or not records:
        return []
    step = max(1, len(records) // n)
    picked = records[::step][:n]
    samples = []
    for record in picked:
        torch.manual_seed(seed)
        text = generate(model, tokenizer, record["messages"][:-1], max_new_tokens=max_new_tokens,
                        temperature=temperature, top_p=top_p)
        samples.append(Sample(record["id"], record["lead_in"], text, record["passage"]))
    return samples
