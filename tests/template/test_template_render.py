"""Template quirks on the real templates: system role, Mistral Nemo, dates, thinking, prompts, stops."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from booktune.template.labels import build_example
from booktune.template.messages import prepare_messages, render_prompt_ids, stop_token_ids, system_mode
from booktune.template.render import TemplateError, template_kwargs
from tests.template.conversations import CONVERSATION

TEMPLATES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "chat_templates"
LOCAL = Path(__file__).resolve().parent / "templates"  # the generation-block and tool-use templates copied here
ALL = sorted(p.name for folder in (TEMPLATES, LOCAL) for p in folder.glob("*.jinja"))


def _fresh(make, template: str):
    """The template with a unique comment: a new cache key, so its one-time notice fires in this test."""
    return make(template, make(template).chat_template + "{# booktune test " + template + " #}")


def test_gemma2_system_prompt_folded_with_one_notice(template_tokenizer, caplog):
    tok = _fresh(template_tokenizer, "google-gemma-2-2b-it.jinja")
    with pytest.raises(Exception, match="System role not supported"):
        tok.apply_chat_template(CONVERSATION, tokenize=False)  # the quirk is real
    with caplog.at_level(logging.WARNING, logger="booktune.template"):
        first = prepare_messages(tok, CONVERSATION)
        prepare_messages(tok, CONVERSATION)
    assert system_mode(tok) == "fold_first"
    assert first[0] == {"role": "user", "content": "You write like Thoreau.\n\nHi"}
    assert len(first) == 4
    assert [r.getMessage().count("no system role") for r in caplog.records] == [1]


def test_mistral_nemo_system_prompt_kept_where_generation_puts_it(template_tokenizer, caplog):
    tok = _fresh(template_tokenizer, "mistralai-Mistral-Nemo-Instruct-2407.jinja")
    raw = tok.apply_chat_template(CONVERSATION, tokenize=False)
    assert "Thoreau" not in raw  # the template drops it when the conversation ends with an answer
    generation = tok.apply_chat_template(CONVERSATION[:4], tokenize=False, add_generation_prompt=True)
    assert "[INST]You write like Thoreau.\n\nAnd?[/INST]" in generation
    with caplog.at_level(logging.WARNING, logger="booktune.template"):
        example = build_example(tok, CONVERSATION)
    assert "[INST]You write like Thoreau.\n\nAnd?[/INST]Goodbye.</s>" in tok.decode(example.input_ids)
    assert any("last user turn" in r.getMessage() for r in caplog.records)
    assert tok.decode(render_prompt_ids(tok, CONVERSATION[:4])) == generation


@pytest.mark.parametrize("template, pinned, fmt", [
    ("meta-llama-Llama-3.2-3B-Instruct.jinja", "Today Date: 26 Jul 2024", "Today Date: %d %b %Y"),
    ("openai-gpt-oss-120b.jinja", "Current date: 2024-07-26", "Current date: %Y-%m-%d"),
    ("Mistral-Small-3.2-24B-Instruct-2506.jinja", "The current date is 2024-07-26.", "The current date is %Y-%m-%d."),
])
def test_dates_pinned(template, pinned, fmt, template_tokenizer):
    tok = template_tokenizer(template)
    before = datetime.now()
    raw = tok.apply_chat_template(CONVERSATION[1:3], tokenize=False)
    today = {before.strftime(fmt), (before + timedelta(seconds=5)).strftime(fmt)}
    assert any(t in raw for t in today)  # unpinned, the template reads the clock
    text = tok.decode(build_example(tok, CONVERSATION[1:3]).input_ids)
    assert pinned in text
    assert pinned in tok.decode(render_prompt_ids(tok, CONVERSATION[1:2]))


@pytest.mark.parametrize("template", ["Qwen-Qwen3-0.6B.jinja", "Qwen3.5-4B.jinja"])
def test_thinking_block_is_masked_and_matches_generation(template, template_tokenizer):
    tok = template_tokenizer(template)
    prompt = tok.decode(render_prompt_ids(tok, CONVERSATION[:4]))
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    # the same prompt the template gives with thinking switched off
    assert prompt == tok.apply_chat_template(CONVERSATION[:4], tokenize=False, add_generation_prompt=True,
                                             enable_thinking=False)


def test_enable_thinking_only_where_the_template_has_it(template_tokenizer):
    for template in ("Qwen-Qwen3-0.6B.jinja", "HuggingFaceTB-SmolLM3-3B.jinja", "google-gemma-4-31B-it.jinja"):
        assert template_kwargs(template_tokenizer(template))["enable_thinking"] is False
    assert "enable_thinking" not in template_kwargs(template_tokenizer("meta-llama-Llama-3.1-8B-Instruct.jinja"))


@pytest.mark.parametrize("template", ALL)
def test_generation_prompt_is_the_training_prefix(template, template_tokenizer):
    """Generation starts from exactly the tokens the last answer was trained after."""
    tok = template_tokenizer(template)
    example = build_example(tok, CONVERSATION)
    last_start = max(i for i, label in enumerate(example.labels)
                     if label != -100 and (i == 0 or example.labels[i - 1] == -100))
    assert render_prompt_ids(tok, CONVERSATION[:4]) == example.input_ids[:last_start]


def test_gemma4_prompt_omits_the_empty_thought_channel_training_never_saw(template_tokenizer):
    tok = template_tokenizer("google-gemma-4-31B-it.jinja")
    own = tok.apply_chat_template(CONVERSATION[:4], tokenize=False, add_generation_prompt=True)
    assert own.endswith("<|turn>model\n<|channel>thought\n<channel|>")
    assert tok.decode(render_prompt_ids(tok, CONVERSATION[:4])).endswith("And?<turn|>\n<|turn>model\n")


STOPS = {
    "HuggingFaceTB-SmolLM3-3B.jinja": ["<|im_end|>"],
    "Mistral-Small-3.2-24B-Instruct-2506.jinja": ["</s>"],
    "Qwen-Qwen2.5-7B-Instruct.jinja": ["<|im_end|>"],
    "Qwen-Qwen3-0.6B.jinja": ["<|im_end|>"],
    "Qwen3.5-4B.jinja": ["<|im_end|>"],
    "google-gemma-2-2b-it.jinja": ["<end_of_turn>", "<eos>"],
    "google-gemma-4-31B-it.jinja": ["<turn|>", "<eos>"],
    "meta-llama-Llama-3.1-8B-Instruct.jinja": ["<|eot_id|>"],
    "meta-llama-Llama-3.2-3B-Instruct.jinja": ["<|eot_id|>"],
    "microsoft-Phi-3.5-mini-instruct.jinja": ["<|end|>", "<|endoftext|>"],
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": ["</s>"],
    "openai-gpt-oss-120b.jinja": ["<|end|>", "<|return|>"],
    "CohereForAI-c4ai-command-r-plus-tool_use.jinja": ["<|END_OF_TURN_TOKEN|>"],
    "LFM2.5-8B-A1B.jinja": ["<|im_end|>"],
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja": ["<|im_end|>"],
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja": ["<|im_end|>"],
    "fireworks-ai-llama-3-firefunction-v2.jinja": ["<|eot_id|>"],
    "poolside-Laguna-S-2.1.jinja": ["</assistant>", "〈|EOS|〉"],
    "poolside-Laguna-XS-2.1.jinja": ["</assistant>", "〈|EOS|〉"],
    "poolside-Laguna-XS.2.jinja": ["</assistant>", "〈|EOS|〉"],
    "trl-diffusion_gemma_training.jinja": ["<turn|>", "<eos>"],
    "trl-gptoss_training.jinja": ["<|end|>", "<|return|>"],
    "trl-llama3_training.jinja": ["<|eot_id|>"],
    "trl-phi3_5_training.jinja": ["<|end|>", "<|endoftext|>"],
    "trl-qwen3_training.jinja": ["<|im_end|>"],
}


@pytest.mark.parametrize("template", sorted(STOPS))
def test_stop_tokens(template, template_tokenizer):
    tok = template_tokenizer(template)
    assert tok.convert_ids_to_tokens(stop_token_ids(tok)) == STOPS[template]


def test_every_template_is_covered():
    if not TEMPLATES.is_dir():
        pytest.skip("../shared/fixtures is absent")
    assert set(ALL) == set(STOPS) and len(ALL) == 12 + 13


def test_message_shape_errors_are_clear(template_tokenizer):
    tok = template_tokenizer("Qwen-Qwen2.5-7B-Instruct.jinja")
    with pytest.raises(TemplateError, match="message 1 .*no text 'content'"):
        prepare_messages(tok, [{"role": "user", "content": "Hi"}, {"role": "assistant"}])
    with pytest.raises(TemplateError, match="must end with a user turn"):
        render_prompt_ids(tok, CONVERSATION)


@pytest.mark.parametrize("name", ["phi-3", "llama-bpe", "qwen2", "gpt-2"])
def test_test_vocabs_match_llama_cpp_vectors(name, vocab):
    """The vocabs used here (phi-3 and llama-bpe repaired by conftest.repair) tokenize exactly as llama.cpp's
    reference vectors say the real tokenizers do."""
    tok = vocab(name)
    folder = TEMPLATES.parent / "tokenizers"
    inputs = (folder / f"ggml-vocab-{name}.gguf.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    outputs = (folder / f"ggml-vocab-{name}.gguf.out").read_text(encoding="utf-8").split("\n")
    assert len(inputs) == len(outputs) > 20
    for text, ids in zip(inputs, outputs):
        assert tok(text, add_special_tokens=False)["input_ids"] == [int(i) for i in ids.split()], text
