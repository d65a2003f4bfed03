"""Bits per byte: the same answer-token NLL as the loss, over the answer text's UTF-8 bytes."""

from __future__ import annotations

import math

import pytest

from booktune.dataset.format import make_record
from booktune.dataset.tokenize import tokenize_records
from booktune.evaluation.loss import answer_bytes, heldout_loss

PASSAGES = ["It was a bright cold day in April — and the clocks were striking thirteen.",
            "Café society: naïve façades, déjà vu, and a résumé of 1,000 “quoted” words."]


@pytest.fixture(scope="module")
def rows(default_tokenizer):
    records = [make_record(book="b", index=i, lead_in="Before it.", passage=p, title="T", author="A",
                           system_prompt="You are {author}.", user_prompt="Continue {title}:\n\n{lead_in}")
               for i, p in enumerate(PASSAGES)]
    return tokenize_records(default_tokenizer, records, max_seq_length=512)[0]


def test_answer_bytes_are_the_passages_utf8_bytes(default_tokenizer, rows):
    assert answer_bytes(default_tokenizer, rows) == sum(len(p.encode("utf-8")) for p in PASSAGES)


def test_bits_per_byte_is_the_summed_nll_in_bits_over_bytes(default_tokenizer, rows, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    r = heldout_loss(model, rows, pad_id=default_tokenizer.pad_token_id, batch_size=2, tokenizer=default_tokenizer)
    assert r.bytes == sum(len(p.encode("utf-8")) for p in PASSAGES)
    assert r.bits_per_byte == pytest.approx(r.loss * r.tokens / math.log(2) / r.bytes)
    assert heldout_loss(model, rows, pad_id=default_tokenizer.pad_token_id).bits_per_byte is None


def test_the_fused_head_scores_what_the_full_logits_score(default_tokenizer, rows, tiny_model_dir, monkeypatch):
    """Held-out NLL through TRL's fused head (labelled positions only, booktune's kernel without Triton) equals the
    cross-entropy of the whole batch's logits, padding and all, for the model alone and under a LoRA adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from booktune.evaluation import loss
    from booktune.evaluation.loss import pad_batch, summed_nll

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tuned = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    batch = pad_batch(rows, default_tokenizer.pad_token_id)
    assert batch["attention_mask"].min() == 0  # the two rows differ in length
    for model in (base, tuned):
        fused = summed_nll(model, batch)
        assert model.get_base_model().booktune_fused_head if model is tuned else model.booktune_fused_head
        with monkeypatch.context() as m:
            m.setattr(loss, "fused_head", lambda model: None)
            full = summed_nll(model, batch)
        assert fused[1] == full[1] == sum(label != -100 for r in rows for label in r["labels"][1:])
        assert fused[0] == pytest.approx(full[0], rel=1e-5)
    assert summed_nll(tuned, batch)[0] != pytest.approx(summed_nll(base, batch)[0], rel=1e-3)  # the adapter counts


def test_a_forward_unsloth_replaced_keeps_the_full_logits(tiny_model_dir):
    """Unsloth patches the model classes' forward; the evaluation leaves such a model's loss path as it was."""
    from transformers import AutoModelForCausalLM

    from booktune.evaluation.loss import fused_head

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert fused_head(model) is model

    def forward(self, *args, **kwargs):
        return type(model).forward(self, *args, **kwargs)

    forward.__module__ = "unsloth.models.llama"  # where Unsloth's fast forward of Llama lives
    patched = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    patched.__class__ = type("PatchedLlama", (type(model),), {"forward": forward})
    assert fused_head(patched) is None
