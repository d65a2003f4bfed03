"""Replies in batches: each batch seeded by the index of its first prompt, and a batch that runs out of GPU memory
sampled again in halves (a GPU's out-of-memory error stands in for one here)."""

from __future__ import annotations

import pytest
import torch

from booktune.inference import generate


def test_a_batch_out_of_gpu_memory_is_sampled_again_in_halves(tiny_model_dir, default_tokenizer, monkeypatch):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    prompts = [[{"role": "user", "content": f"What did the pond say in week {i}?"}] for i in range(7)]
    kw = {"max_new_tokens": 5, "temperature": 0.8, "top_p": 0.95}
    real, calls = generate.generate_replies, []

    def limited(model, tokenizer, part, *, seed, **sampling):  # a GPU that holds at most 2 prompts at a time
        calls.append((len(part), seed))
        if len(part) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(model, tokenizer, part, seed=seed, **sampling)

    monkeypatch.setattr(generate, "generate_replies", limited)
    done = []
    replies = generate.replies_in_batches(model, default_tokenizer, prompts, batch_size=5, seed=10, done=done.append,
                                          **kw)
    assert calls == [(5, 10), (2, 10), (2, 12), (2, 14), (1, 16)] and done == [2, 2, 2, 1]
    # the replies those batches give when sampled directly, each seeded by its first prompt's index
    assert replies == [r for i, n in ((0, 2), (2, 2), (4, 2), (6, 1))
                       for r in real(model, default_tokenizer, prompts[i:i + n], seed=10 + i, **kw)]

    def none_fit(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(generate, "generate_replies", none_fit)
    with pytest.raises(torch.OutOfMemoryError):
        generate.replies_in_batches(model, default_tokenizer, prompts, batch_size=4, seed=0, **kw)
