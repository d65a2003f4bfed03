"""Tool-use templates that fail without `tools` / `functions` (Command-R+ tool_use, Hermes 2 Pro / 3 tool_use,
FireFunction v2), a turn appended after the answer, and templates booktune still refuses. Real templates from
tests/template/templates."""

from __future__ import annotations

import logging

import pytest

from booktune.template.labels import IGNORE, MaskingError, build_example
from booktune.template.messages import render_prompt_ids
from booktune.template.render import TemplateError, tool_kwargs
from tests.template.conversations import CONVERSATION

COMMAND_R = "CohereForAI-c4ai-command-r-plus-tool_use.jinja"
HERMES = "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja"
FIREFUNCTION = "fireworks-ai-llama-3-firefunction-v2.jinja"


def _fresh(make, template: str):
    """The template with a unique comment: a new cache key, so its one-time decision and notice happen here."""
    return make(template, make(template).chat_template + "{# booktune tools test " + template + " #}")


@pytest.mark.parametrize("template, error, kwargs", [
    (COMMAND_R, "'NoneType' object is not iterable", {"tools": []}),
    (HERMES, "'NoneType' object is not iterable", {"tools": []}),
    ("NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "'NoneType' object is not iterable", {"tools": []}),
    # FireFunction v2 appends `functions`, the JSON text of the function list, to its system prompt.
    (FIREFUNCTION, "'functions' is undefined", {"functions": "[]"}),
])
def test_rendered_with_empty_tools_where_it_fails_without(template, error, kwargs, template_tokenizer, caplog):
    tok = _fresh(template_tokenizer, template)
    with pytest.raises(Exception, match=error):
        tok.apply_chat_template(CONVERSATION, tokenize=False)  # the quirk is real
    with caplog.at_level(logging.WARNING, logger="booktune.template"):
        assert tool_kwargs(tok) == kwargs
        build_example(tok, CONVERSATION)
        build_example(tok, CONVERSATION)
    assert [r.getMessage().count("fails without tools") for r in caplog.records] == [1]


@pytest.mark.parametrize("template", ["Qwen-Qwen2.5-7B-Instruct.jinja", "meta-llama-Llama-3.1-8B-Instruct.jinja",
                                      "Qwen-Qwen3-0.6B.jinja", "openai-gpt-oss-120b.jinja", "LFM2.5-8B-A1B.jinja"])
def test_templates_that_guard_their_tools_render_as_they_are(template, template_tokenizer):
    """They read `tools` too, but render without it: no tool preamble is added to their training text."""
    tok = template_tokenizer(template)
    assert "tools" in tok.chat_template
    assert tool_kwargs(tok) == {}


def test_the_same_tool_text_in_training_and_generation(template_tokenizer):
    tok = template_tokenizer(HERMES)
    prompt = tok.decode(render_prompt_ids(tok, CONVERSATION[:4]))
    training = tok.decode(build_example(tok, CONVERSATION).input_ids)
    assert "Here are the available tools: <tools>  </tools>" in prompt
    assert training.startswith(prompt) and prompt.endswith("<|im_start|>assistant\n")
    tok = template_tokenizer(FIREFUNCTION)
    prompt = tok.decode(render_prompt_ids(tok, CONVERSATION[:4]))
    assert "Available functions as JSON spec:\n[]\nToday is Jul 26 2024.<|eot_id|>" in prompt  # date pinned too


def test_a_system_turn_after_the_answer_is_never_trained(template_tokenizer, trained_spans):
    """Command-R+ tool_use appends a system turn after the conversation: trained are the answers and their
    <|END_OF_TURN_TOKEN|>, never the next turn's <|START_OF_TURN_TOKEN|> nor the appended turn."""
    tok = template_tokenizer(COMMAND_R)
    example = build_example(tok, CONVERSATION, name="walden-00001")
    end, start = tok.convert_tokens_to_ids(["<|END_OF_TURN_TOKEN|>", "<|START_OF_TURN_TOKEN|>"])
    assert trained_spans(example) == [tok("Hello there.")["input_ids"] + [end], tok("Goodbye.")["input_ids"] + [end]]
    last = max(i for i, label in enumerate(example.labels) if label != IGNORE)
    tail = example.input_ids[last + 1:]
    assert tail[0] == start and tok.decode(tail[:2]) == "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>"
    assert "Write 'Action:' followed by a json-formatted list" in tok.decode(tail)
    assert all(label == IGNORE for label in example.labels[last + 1:])


def test_an_assistant_header_after_the_answer_is_never_trained(template_tokenizer, trained_spans):
    """FireFunction v2 always ends with an assistant header, also after a final answer: it is masked."""
    tok = template_tokenizer(FIREFUNCTION)
    example = build_example(tok, CONVERSATION)
    assert [tok.decode(s) for s in trained_spans(example)] == ["Hello there.<|eot_id|>", "Goodbye.<|eot_id|>"]
    assert tok.decode(example.input_ids).endswith("Goodbye.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    assert example.labels[-4:] == [IGNORE] * 4


# --- templates booktune still cannot handle: refused in one line naming the template and the reason --------------

def test_a_tool_template_that_fails_with_empty_tools_too_is_refused(template_tokenizer):
    tok = template_tokenizer(HERMES, "{%- if tools | length == 0 %}{{ raise_exception('a tool is required') }}"
                                     "{%- endif %}" + template_tokenizer(HERMES).chat_template)
    tok.name_or_path = "NousResearch/Hermes-2-Pro-Llama-3-8B"
    with pytest.raises(TemplateError) as err:
        render_prompt_ids(tok, CONVERSATION[:2])
    assert str(err.value) == ("NousResearch/Hermes-2-Pro-Llama-3-8B: chat template failed: object of type 'NoneType' "
                              "has no len() (also with empty tools/functions)")
    with pytest.raises(MaskingError, match=r"^row-5: NousResearch/Hermes-2-Pro-Llama-3-8B: chat template failed: "):
        build_example(tok, CONVERSATION, name="row-5")


def test_a_template_without_an_end_of_turn_token_is_refused(template_tokenizer):
    """llama.cpp's RWKV "world" template separates turns by blank lines only: no token ends an answer."""
    tok = template_tokenizer("llama-cpp-rwkv-world.jinja")
    tok.name_or_path = "RWKV/rwkv-world"
    with pytest.raises(MaskingError) as err:
        build_example(tok, CONVERSATION, name="walden-00002")
    assert str(err.value) == ("walden-00002: RWKV/rwkv-world: after assistant turn 1 the template renders 'User' "
                              "before any end-of-turn token")
