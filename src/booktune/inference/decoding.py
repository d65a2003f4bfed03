"""A CPU decoding loop that drops each row from the batch as soon as it reaches its end of turn.

`generate` keeps every row of a batch until the longest one ends: a row that ended at its end-of-turn token goes on
being decoded (its new tokens thrown away as padding) while the others run to their limit. On a CPU a decoding step
costs a fixed part (reading the weights) and a part per row (docs/benchmarks.md, "Decoding and sampling on a CPU"),
so the finished rows of the evaluation's answers, which end anywhere from a few dozen tokens to the answer limit,
cost as much as the rows still writing. This loop removes a row from the inputs and from every layer of the KV cache
the step it ends, so a batch costs what its answers' tokens cost.

It runs where booktune already decodes on its own terms (`inference.generate.new_tokens`): a CPU, booktune's
decoding attention, and greedy decoding or `TopKSampler`, with a generation config that adds no logits processor of
transformers' own (`plain_generation_config`); everything else goes through `generate`. The output has `generate`'s
shape and padding: each row's tokens up to and including its end-of-turn token, then the pad token.
"""

from __future__ import annotations

from typing import Any

import torch

# Generation-config fields that make `generate` add a logits processor; any of them set (away from its neutral
# value) sends decoding back to `generate`.
_PROCESSORS = {"repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
               "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None, "suppress_tokens": None,
               "begin_suppress_tokens": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
               "min_length": 0, "min_new_tokens": None, "sequence_bias": None, "guidance_scale": None,
               "exponential_decay_length_penalty": None, "forced_decoder_ids": None, "max_time": None,
               "stop_strings": None, "num_beams": 1, "num_return_sequences": 1, "assistant_model": None,
               "prompt_lookup_num_tokens": None, "cache_implementation": None}


def plain_generation_config(generation_config: Any) -> bool:
    """True when `generate` with this config would apply no logits processor or stopping rule beyond the end-of-turn
    tokens and the token limit: only then is the loop below the same decoding."""
    return all(getattr(generation_config, name, off) in (off, None) for name, off in _PROCESSORS.items())


def takes_decoding_inputs(model: Any) -> bool:
    """The causal LM's forward takes what the loop passes it (transformers' own models do; remote code may not)."""
    import inspect

    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = inspect.signature(causal.forward).parameters
    return all(n in names for n in ("position_ids", "past_key_values", "logits_to_keep"))


def next_token(logits: torch.Tensor, sampler: Any) -> torch.Tensor:
    """[B] tokens from the last position's scores [B, vocab]: the highest (greedy) or `sampler`'s draw."""
    if sampler is None:
        return logits.argmax(dim=-1)
    return sampler.draw(logits.float())


@torch.no_grad()
def compact_decode(model: Any, batch: torch.Tensor, mask: torch.Tensor, *, max_new_tokens: int,
                   stop_ids: list[int], pad_token_id: int, sampler: Any = None) -> torch.Tensor:
    """New tokens [B, n] after the left-padded `batch` [B, T] (`mask` [B, T]), n <= max_new_tokens; rows that end
    leave the batch at once. `sampler`: a TopKSampler, or None for greedy decoding."""
    from transformers import DynamicCache

    rows = batch.shape[0]
    out = torch.full((rows, max_new_tokens), pad_token_id, dtype=torch.long, device=batch.device)
    alive = torch.arange(rows, device=batch.device)  # the original row of each row still in the batch
    stops = torch.tensor(stop_ids, device=batch.device)
    cache = DynamicCache(config=model.config)
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)  # left padding: each row counts from its first token
    logits = model(input_ids=batch, attention_mask=mask, position_ids=positions, past_key_values=cache,
                   use_cache=True, logits_to_keep=1).logits[:, -1]
    position = positions[:, -1:] + 1
    steps = 0
    for step in range(max_new_tokens):
        token = next_token(logits, sampler)
        out[alive, step] = token
        steps = step + 1
        going = ~torch.isin(token, stops)
        if not going.all():
            keep = going.nonzero().squeeze(-1)
            alive, token, mask, position = alive[keep], token[keep], mask[keep], position[keep]
            for layer in cache.layers:
                layer.batch_select_indices(keep)
        if alive.numel() == 0 or step + 1 == max_new_tokens:
            break
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        logits = model(input_ids=token[:, None], attention_mask=mask, position_ids=position,
                       past_key_values=cache, use_cache=True).logits[:, -1]
        position = position + 1
    return out[:, :steps]
