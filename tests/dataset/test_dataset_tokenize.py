"""The truncation policy: over-long examples are split at sentence ends or dropped, never cut."""

import pytest

from booktune.config import DEFAULT_SYSTEM_PROMPT, DEFAULT_USER_PROMPT
from booktune.dataset.format import make_record
from booktune.dataset.tokenize import IGNORE, TruncationError, tokenize_records

PASSAGE = " ".join(f"Sentence number {i} says a little more than the one before it." for i in range(40))


def record(passage=PASSAGE, lead_in="the words before"):
    return make_record(book="b", index=0, title="T", author="A", lead_in=lead_in, passage=passage,
                       system_prompt=DEFAULT_SYSTEM_PROMPT, user_prompt=DEFAULT_USER_PROMPT)


def trained_text(tokenizer, row):
    return tokenizer.decode([t for t, lab in zip(row["input_ids"], row["labels"]) if lab != IGNORE])


def test_split_keeps_every_word_and_every_end_marker(default_tokenizer):
    rows, report = tokenize_records(default_tokenizer, [record()], max_seq_length=160, truncation="split",
                                    system_prompt=DEFAULT_SYSTEM_PROMPT, user_prompt=DEFAULT_USER_PROMPT)
    assert report.split >= 1 and report.dropped == 0 and report.tokens_lost == 0
    assert len(rows) >= 3 and all(len(r["input_ids"]) <= 160 for r in rows)
    texts = [trained_text(default_tokenizer, r) for r in rows]
    assert all(t.endswith("<|im_end|>") for t in texts)
    words = " ".join(t.removesuffix("<|im_end|>") for t in texts).split()
    assert words == PASSAGE.split()
    assert all(t.removesuffix("<|im_end|>").rstrip().endswith(".") for t in texts)  # cut at sentence ends


def test_drop_counts_what_it_loses(default_tokenizer):
    short = record(passage="A short passage that fits.")
    rows, report = tokenize_records(default_tokenizer, [record(), short], max_seq_length=160, truncation="drop")
    assert len(rows) == 1 and report.dropped == 1 and report.tokens_lost > 300
    assert report.dropped_ids == ["b-00000"]


def test_nothing_left_is_an_error_before_training(default_tokenizer):
    with pytest.raises(TruncationError, match="max_seq_length 64"):
        tokenize_records(default_tokenizer, [record()], max_seq_length=64, truncation="drop")


def test_an_over_long_answer_keeps_its_question_on_the_first_half(default_tokenizer):
    from booktune.dataset.format import make_answer_record

    answer = make_answer_record(record(), "What do the sentences say?", 1, system_prompt=DEFAULT_SYSTEM_PROMPT,
                                answer_prompt="{question}")
    rows, report = tokenize_records(default_tokenizer, [answer], max_seq_length=160, truncation="split",
                                    system_prompt=DEFAULT_SYSTEM_PROMPT, user_prompt=DEFAULT_USER_PROMPT)
    assert report.split >= 1 and report.dropped == 0
    assert rows[0]["task"] == "answer" and {r["task"] for r in rows[1:]} == {"continue"}
    prompt = default_tokenizer.decode([t for t, lab in zip(rows[0]["input_ids"], rows[0]["labels"]) if lab == IGNORE])
    assert "What do the sentences say?" in prompt
    words = " ".join(trained_text(default_tokenizer, r).removesuffix("<|im_end|>") for r in rows).split()
    assert words == PASSAGE.split()


def test_a_passages_examples_and_their_halves_share_a_passage_key(default_tokenizer):
    """Training packs the examples of one passage key into one step: the key must name the text they train."""
    from booktune.dataset.format import make_answer_record

    whole = record()
    answer = make_answer_record(whole, "What do the sentences say?", 1, system_prompt=DEFAULT_SYSTEM_PROMPT,
                                answer_prompt="{question}")
    prompts = {"system_prompt": DEFAULT_SYSTEM_PROMPT, "user_prompt": DEFAULT_USER_PROMPT}
    rows, _ = tokenize_records(default_tokenizer, [whole, answer], max_seq_length=1024, **prompts)
    assert [(r["id"], r["passage"]) for r in rows] == [("b-00000", "b-00000"), ("b-00000-q1", "b-00000")]
    rows, report = tokenize_records(default_tokenizer, [whole, answer], max_seq_length=320, **prompts)
    assert report.split >= 2
    texts: dict[str, set[str]] = {}
    for r in rows:
        texts.setdefault(r["passage"], set()).add(trained_text(default_tokenizer, r))
    assert all(len(t) == 1 for t in texts.values())  # one key, one text
    shared = [k for k in texts if sum(r["passage"] == k for r in rows) == 2]
    assert shared and all(k.startswith("b-00000") and k != "b-00000" for k in shared)
