"""Replies from a chat model, prompted exactly as training conditioned it and stopped at the template's end of turn.

The prompt is the training render cut where the answer starts (template.render_prompt_ids), and generation stops at
every end-of-turn marker the template uses (template.stop_token_ids), so a tuned model neither starts from tokens it
never saw nor runs on past its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from booktune.inference.attention import cpu_decoding, plain_softmax_attention
from booktune.inference.decoding import compact_decode, plain_generation_config, takes_decoding_inputs
from booktune.inference.sampling import TopKSampler, sampling_arguments
from booktune.template import render_prompt_ids, stop_token_ids


def left_padded(tokenizer: Any, prompts: list[list[dict]], device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask), both [B, T]: each prompt rendered as training renders it, padded on the left."""
    ids = [render_prompt_ids(tokenizer, m) for m in prompts]
    width, pad = max(len(x) for x in ids), tokenizer.pad_token_id
    batch = torch.tensor([[pad] * (width - len(x)) + x for x in ids], device=device)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)
    return batch, mask


def new_tokens(model: Any, tokenizer: Any, batch: torch.Tensor, mask: torch.Tensor, *, max_new_tokens: int,
                 temperature: float, top_p: float, streamer: Any = None) -> torch.Tensor:
    """The new tokens [B, new] after `batch`, stopped at the template's end of turn, with booktune's CPU decoding
    attention and top-k sampling where they apply (inference.attention, inference.sampling), and on a CPU without
    a streamer in booktune's loop that drops each row as it ends (inference.decoding)."""
    sampling = sampling_arguments(model, temperature, top_p)
    sampler = sampling.get("logits_processor", [None])[0]
    if streamer is None and compacts(model, sampling):
        with cpu_decoding(model):
            return compact_decode(model, batch, mask, max_new_tokens=max_new_tokens,
                                  stop_ids=stop_token_ids(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                  sampler=sampler)
    with cpu_decoding(model):
        out = model.generate(input_ids=batch, attention_mask=mask, max_new_tokens=max_new_tokens,
                             eos_token_id=stop_token_ids(tokenizer), pad_token_id=tokenizer.pad_token_id,
                             streamer=streamer, **sampling)  # [B, T + new]
    return out[:, batch.shape[1]:]


def compacts(model: Any, sampling: dict[str, Any]) -> bool:
    """booktune's compacting loop decodes: a CPU model with plain softmax attention whose forward takes the loop's
    inputs, greedy or TopKSampler, and a generation config that adds nothing of its own."""
    processors = sampling.get("logits_processor", [])
    return (next(model.parameters()).device.type == "cpu" and plain_softmax_attention(model)
            and all(isinstance(p, TopKSampler) for p in processors) and "temperature" not in sampling
            and plain_generation_config(model.generation_config) and takes_decoding_inputs(model))


@torch.no_grad()
def generate(model: Any, tokenizer: Any, messages: list[dict], *, max_new_tokens: int, temperature: float,
             top_p: float, streamer: Any = None) -> str:
    """One assistant reply to `messages` (which end with a user turn)."""
    batch, mask = left_padded(tokenizer, [messages], next(model.parameters()).device)  # [1, T]: no padding
    new = new_tokens(model, tokenizer, batch, mask, max_new_tokens=max_new_tokens, temperature=temperature,
                     top_p=top_p, streamer=streamer)
    return tokenizer.decode(new[0], skip_special_tokens=True, clean_up_tokenization_spaces=False).strip()


def replies_in_batches(model: Any, tokenizer: Any, prompts: list[list[dict]], *, batch_size: int, seed: int,
                       done: Any = None, **sampling: Any) -> list[Reply]:
    """generate_replies over `prompts`, `batch_size` at a time, each batch seeded with `seed` plus the index of its
    first prompt. A batch that runs out of GPU memory is split in halves and sampled again (a batch of one raises);
    `done(n)` after each batch of n."""
    out: list[Reply] = []
    while len(out) < len(prompts):
        part = prompts[len(out):len(out) + batch_size]
        try:
            replies = generate_replies(model, tokenizer, part, seed=seed + len(out), **sampling)
        except torch.OutOfMemoryError:
            if len(part) == 1:
                raise
            torch.cuda.empty_cache()
            batch_size = len(part) // 2
            continue
        out += replies
        if done is not None:
            done(len(part))
    return out


@dataclass
class Reply:
    text: str
    ended: bool  # stopped at an end-of-turn token, rather than at max_new_tokens


@torch.no_grad()
def generate_replies(model: Any, tokenizer: Any, prompts: list[list[dict]], *, max_new_tokens: int,
                     temperature: float, top_p: float, seed: int) -> list[Reply]:
    """A reply to each prompt (messages ending with a user turn), left-padded into one seeded batch, with whether
    it ended at the template's end of turn."""
    batch, mask = left_padded(tokenizer, prompts, next(model.parameters()).device)
    torch.manual_seed(seed)
    out = new_tokens(model, tokenizer, batch, mask, max_new_tokens=max_new_tokens, temperature=temperature,
                     top_p=top_p)
    new, ends = out.tolist(), set(stop_token_ids(tokenizer))  # one copy to the host, not one per token
    return [Reply(tokenizer.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False).strip(),
                  any(t in ends for t in row))
            for row in new]
