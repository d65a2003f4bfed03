"""Replies from a chat model, prompted exactly as training conditioned it and stopped at the template's end of turn.

The prompt is the training render cut where the answer starts (template.render_prompt_ids), and generation stops at
every end-of-turn marker the template uses (template.stop_token_ids), so a tuned model neither starts from tokens it
never saw nor runs on past its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from booktune.inference.attention import cpu_decoding
from booktune.inference.sampling import sampling_arguments
from booktune.template import render_prompt_ids, stop_token_ids


@torch.no_grad()
def generate(model: Any, tokenizer: Any, messages: list[dict], *, max_new_tokens: int, temperature: float,
             top_p: float, streamer: Any = None) -> str:
    """One assistant reply to `messages` (which end with a user turn)."""
    device = next(model.parameters()).device
    ids = torch.tensor([render_prompt_ids(tokenizer, messages)], device=device)  # [1, T]
    with cpu_decoding(model):
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             eos_token_id=stop_token_ids(tokenizer), pad_token_id=tokenizer.pad_token_id,
                             streamer=streamer, **sampling_arguments(model, temperature, top_p))
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True,
                            clean_up_tokenization_spaces=False).strip()


def generate_batch(model: Any, tokenizer: Any, prompts: list[list[dict]], *, max_new_tokens: int,
                   temperature: float, top_p: float, seed: int) -> list[str]:
    """A reply to each prompt (messages ending with a user turn); left-padded into one batch, seeded."""
    return [r.text for r in generate_replies(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                                             temperature=temperature, top_p=top_p, seed=seed)]


@dataclass
class Reply:
    text: str
    ended: bool  # stopped at an end-of-turn token, rather than at max_new_tokens


@torch.no_grad()
def generate_replies(model: Any, tokenizer: Any, prompts: list[list[dict]], *, max_new_tokens: int,
                     temperature: float, top_p: float, seed: int) -> list[Reply]:
    """generate_batch's replies, each with whether it ended at the template's end of turn."""
    device = next(model.parameters()).device
    ids = [render_prompt_ids(tokenizer, m) for m in prompts]
    width = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id
    batch = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)  # [B, T]
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)  # [B, T]
    torch.manual_seed(seed)
    stops = stop_token_ids(tokenizer)
    sampling = sampling_arguments(model, temperature, top_p)
    with cpu_decoding(model):
        out = model.generate(input_ids=batch, attention_mask=mask, max_new_tokens=max_new_tokens,
                             eos_token_id=stops, pad_token_id=pad, **sampling)  # [B, T + new]
    new, ends = out[:, width:].tolist(), set(stops)  # one copy to the host, not one per token
    return [Reply(tokenizer.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip(),
                  any(t in ends for t in row))
            for row in new]
