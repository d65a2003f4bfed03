"""unsloth_parts: derived from the template, right for ChatML, Llama 3 and both GPT-OSS variants."""

from __future__ import annotations

import pytest

from booktune.template.messages import render_text
from booktune.template.unsloth import unsloth_parts
from tests.template.conversations import CONVERSATION

FINAL_HEADER = "<|start|>assistant<|channel|>final<|message|>"
PLAIN_HEADER = "<|start|>assistant<|message|>"


def _variant(make):
    """GPT-OSS with the channel-less assistant header some checkpoints' templates render."""
    gpt_oss = "openai-gpt-oss-120b.jinja"
    return make(gpt_oss, make(gpt_oss).chat_template.replace(FINAL_HEADER, PLAIN_HEADER))


def _occurrences(ids: list[int], part: list[int]) -> list[int]:
    return [i for i in range(len(ids) - len(part) + 1) if ids[i:i + len(part)] == part]


def _check_unsloth_would_find(tok, instruction: str, response: str) -> None:
    """Unsloth searches the token ids of each part in the tokenized text: each answer must follow a response
    part directly, and the next user turn must start with an instruction part."""
    ids = tok(render_text(tok, CONVERSATION), add_special_tokens=False)["input_ids"]
    resp = tok(response, add_special_tokens=False)["input_ids"]
    inst = tok(instruction, add_special_tokens=False)["input_ids"]
    answers = [tok("Hello there.", add_special_tokens=False)["input_ids"],
               tok("Goodbye.", add_special_tokens=False)["input_ids"]]
    found = [ids[i + len(resp):i + len(resp) + len(a)] for i, a in zip(_occurrences(ids, resp), answers)]
    assert found == answers
    assert len(_occurrences(ids, inst)) == 2  # before "Hi" (after any system block) and before "And?"


@pytest.mark.parametrize("template, expected", [
    ("Qwen-Qwen2.5-7B-Instruct.jinja", ("<|im_start|>user\n", "<|im_start|>assistant\n")),
    ("Qwen-Qwen3-0.6B.jinja", ("<|im_start|>user\n", "<|im_start|>assistant\n")),
    ("meta-llama-Llama-3.1-8B-Instruct.jinja",
     ("<|start_header_id|>user<|end_header_id|>\n\n", "<|start_header_id|>assistant<|end_header_id|>\n\n")),
    ("google-gemma-2-2b-it.jinja", ("<start_of_turn>user\n", "<start_of_turn>model\n")),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", ("[INST]", "[/INST]")),
    ("openai-gpt-oss-120b.jinja", ("<|start|>user<|message|>", FINAL_HEADER)),
])
def test_parts(template, expected, template_tokenizer):
    tok = template_tokenizer(template)
    assert unsloth_parts(tok) == expected
    if template != "openai-gpt-oss-120b.jinja" and "Qwen3" not in template:
        _check_unsloth_would_find(tok, *expected)


def test_gpt_oss_channel_less_variant(template_tokenizer):
    tok = _variant(template_tokenizer)
    assert unsloth_parts(tok) == ("<|start|>user<|message|>", PLAIN_HEADER)
    _check_unsloth_would_find(tok, *unsloth_parts(tok))


def test_gpt_oss_shipped_template_found_by_unsloth(template_tokenizer):
    tok = template_tokenizer("openai-gpt-oss-120b.jinja")
    _check_unsloth_would_find(tok, *unsloth_parts(tok))
    # the fixed notebook marker would match nothing in the channel-less variant: the reason to derive it
    tok = _variant(template_tokenizer)
    ids = tok(render_text(tok, CONVERSATION), add_special_tokens=False)["input_ids"]
    assert _occurrences(ids, tok(FINAL_HEADER, add_special_tokens=False)["input_ids"]) == []


def test_default_model_chatml(vocab):
    tok = vocab("smollm2")
    assert unsloth_parts(tok) == ("<|im_start|>user\n", "<|im_start|>assistant\n")
    _check_unsloth_would_find(tok, *unsloth_parts(tok))
