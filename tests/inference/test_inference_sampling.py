"""Sampling among the top-k tokens keeps what transformers' warpers keep, with the same probabilities."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    GenerationConfig,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from booktune.inference.generate import generate_replies
from booktune.inference.sampling import TopKSampler, effective_top_k, sampling_arguments


def transformers_probs(scores, temperature, top_k, top_p):
    warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature), TopKLogitsWarper(top_k),
                                   TopPLogitsWarper(top_p)])
    return warpers(None, scores.clone()).softmax(dim=-1)


@pytest.mark.parametrize("temperature, top_k, top_p", [(0.8, 50, 0.95), (1.3, 20, 0.5), (0.5, 200, 1.0),
                                                       (1.0, 5, 0.05)])
def test_kept_tokens_and_probabilities_are_transformers(temperature, top_k, top_p):
    scores = torch.randn(16, 3000, generator=torch.Generator().manual_seed(1)) * 3
    expected = transformers_probs(scores, temperature, top_k, top_p)
    probs, ids = TopKSampler(temperature, top_k, top_p).kept(scores)
    got = torch.zeros_like(scores).scatter_(-1, ids, probs)
    assert torch.equal(got > 0, expected > 0)
    assert torch.allclose(got, expected, atol=1e-6)


def test_draws_follow_the_kept_probabilities():
    scores = torch.randn(1, 40, generator=torch.Generator().manual_seed(2)).expand(40_000, 40)
    sampler = TopKSampler(0.9, 10, 0.8)
    torch.manual_seed(0)
    out = sampler(None, scores)
    assert torch.equal(out.isfinite().sum(dim=-1), torch.ones(40_000, dtype=torch.long))  # one token a row
    drawn = torch.bincount(out.argmax(dim=-1), minlength=40) / 40_000
    expected = transformers_probs(scores[:1], 0.9, 10, 0.8)[0]
    assert torch.equal(drawn > 0, expected > 0)
    assert (drawn - expected).abs().max() < 0.01


def test_the_top_k_generate_applies():
    assert effective_top_k(GenerationConfig()) == GenerationConfig._get_default_generation_params()["top_k"]
    assert effective_top_k(GenerationConfig(top_k=20)) == 20
    assert effective_top_k(GenerationConfig(top_k=0)) is None  # top-k off: transformers samples
    assert effective_top_k(GenerationConfig(top_k=20, min_p=0.1)) is None  # a warper TopKSampler lacks
    assert effective_top_k(GenerationConfig(top_k=20, typical_p=0.9)) is None


def test_generate_samples_through_top_k(tiny_model_dir, default_tokenizer):
    """With the model's top-k at 1 the sampled replies are the greedy ones; with top-k off transformers samples."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    prompts = [[{"role": "user", "content": "Where is the pond?"}], [{"role": "user", "content": "Why go?"}]]

    def replies(temperature):
        return [r.text for r in generate_replies(model, default_tokenizer, prompts, max_new_tokens=12,
                                                 temperature=temperature, top_p=0.95, seed=3)]

    greedy = replies(0.0)
    model.generation_config.top_k = 1
    assert isinstance(sampling_arguments(model, 0.8, 0.95)["logits_processor"][0], TopKSampler)
    assert replies(0.8) == greedy
    model.generation_config.top_k = 0
    assert sampling_arguments(model, 0.8, 0.95) == {"do_sample": True, "temperature": 0.8, "top_p": 0.95}
    assert replies(0.8) != greedy  # a random model sampled over its whole vocabulary
