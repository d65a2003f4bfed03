"""Sampling among the top-k tokens only: temperature, top-k and top-p as transformers applies them, without a sort
and a random draw over the whole vocabulary at every step.

transformers samples by warping the full [batch, vocabulary] scores (temperature, then top-k, then top-p, which
sorts the whole vocabulary) and drawing with `torch.multinomial` over all of it; on a CPU with a 49,152-token
vocabulary that is a large share of each decoding step (docs/benchmarks.md, "Decoding and sampling on a CPU").
Once top-k has run, only k tokens can be drawn, so `TopKSampler` warps and draws over those k alone: the same kept
tokens and probabilities as transformers' warpers (tests/inference/test_inference_sampling.py compares them), drawn
by a different random stream. It runs as the last logits processor of a greedy `generate`: it returns scores that are
-inf everywhere but at the token it drew, which greedy decoding then takes, so transformers' own processors
(repetition penalty, suppressed tokens), stopping, cache and streaming stay as they are.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import LogitsProcessor

# Generation settings that add warpers TopKSampler does not apply: any of them set sends sampling back to
# transformers, whatever it costs.
_OTHER_WARPERS = {"min_p": None, "top_h": None, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0,
                  "renormalize_logits": False, "watermarking_config": None}


class TopKSampler(LogitsProcessor):
    """Temperature, then the `top_k` highest scores, then top-p among them; one token drawn per row."""

    def __init__(self, temperature: float, top_k: int, top_p: float) -> None:
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p

    def kept(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(probabilities [B, k], token ids [B, k]) of the tokens top-k and top-p keep, in ascending order of score;
        removed tokens have probability 0."""
        values, ids = torch.topk(scores, min(self.top_k, scores.shape[-1]))  # descending
        values, ids = values.flip(-1) / self.temperature, ids.flip(-1)  # ascending, as TopPLogitsWarper sorts
        if self.top_p < 1.0:
            remove = values.softmax(dim=-1).cumsum(dim=-1) <= 1 - self.top_p
            remove[..., -1] = False  # the most likely token always stays
            values = values.masked_fill(remove, float("-inf"))
        return values.softmax(dim=-1), ids

    def draw(self, scores: torch.Tensor) -> torch.Tensor:
        """One token id a row [B] from the scores [B, vocab]."""
        probs, ids = self.kept(scores)
        return ids.gather(-1, torch.multinomial(probs, num_samples=1)).squeeze(-1)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        token = self.draw(scores)[:, None]  # [B, 1]
        return torch.full_like(scores, float("-inf")).scatter_(-1, token, 0.0)


def effective_top_k(generation_config: Any) -> int | None:
    """The top-k that `generate` applies with this model's generation config (transformers' global default where
    the model sets none); None where top-k is off or other warpers are set, so sampling stays transformers' own."""
    from transformers import GenerationConfig

    try:
        defaults = GenerationConfig._get_default_generation_params()
    except AttributeError:  # another transformers: leave sampling to it
        return None

    def value(name: str) -> Any:
        own = getattr(generation_config, name, None)
        return own if own is not None else defaults.get(name)

    if any(value(name) not in (None, off) for name, off in _OTHER_WARPERS.items()) or (value("num_beams") or 1) > 1:
        return None
    top_k = value("top_k")
    return top_k if isinstance(top_k, int) and top_k > 0 else None


def sampling_arguments(model: Any, temperature: float, top_p: float) -> dict[str, Any]:
    """generate()'s arguments for sampling at `temperature` and `top_p` (greedy at temperature 0): through
    TopKSampler where the model's generation config allows, else transformers' own sampling."""
    if temperature <= 0:
        return {"do_sample": False}
    top_k = effective_top_k(model.generation_config)
    if top_k is None:
        return {"do_sample": True, "temperature": temperature, "top_p": top_p}
    return {"do_sample": False, "logits_processor": [TopKSampler(temperature, top_k, top_p)]}
