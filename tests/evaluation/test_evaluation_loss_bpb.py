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
