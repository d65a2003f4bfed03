"""Templates with `{% generation %}` blocks (LFM2.5, Poolside Laguna, TRL's training templates): rendered, and used
as a second check of booktune's own answer spans. Real templates from tests/template/templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from booktune.template.generation import generation_blocks
from booktune.template.labels import IGNORE, MaskingError, build_example
from booktune.template.messages import prepare_messages, template_kwargs
from booktune.template.render import render, template_variables
from tests.template.conversations import CONVERSATION

LOCAL = Path(__file__).resolve().parent / "templates"
GENERATION = sorted(p.name for p in LOCAL.glob("*.jinja") if "{%- generation" in p.read_text(encoding="utf-8"))
LLAMA3_TRL = "trl-llama3_training.jinja"
ASSISTANT_BLOCK = ("        {%- generation %}\n        {{- message['content'] | trim + '<|eot_id|>' }}\n"
                   "        {%- endgeneration %}\n")


def test_the_generation_templates_are_the_expected_ones():
    assert GENERATION == ["LFM2.5-8B-A1B.jinja", "poolside-Laguna-S-2.1.jinja", "poolside-Laguna-XS-2.1.jinja",
                          "poolside-Laguna-XS.2.jinja", "trl-diffusion_gemma_training.jinja",
                          "trl-gptoss_training.jinja", "trl-llama3_training.jinja", "trl-phi3_5_training.jinja",
                          "trl-qwen3_training.jinja"]


def test_the_tag_is_parsed_and_renders_no_text(template_tokenizer):
    import jinja2

    tok = template_tokenizer("poolside-Laguna-XS.2.jinja")
    with pytest.raises(jinja2.TemplateSyntaxError, match="unknown tag 'generation'"):
        jinja2.Environment().parse(tok.chat_template)  # a plain jinja parser refuses these templates
    assert "enable_thinking" in template_variables(tok.chat_template)
    messages = prepare_messages(tok, CONVERSATION)
    expected = tok.apply_chat_template(messages, tokenize=False, **template_kwargs(tok))
    assert render(tok, messages) == expected
    assert "generation" not in expected and "Hello there." in expected


@pytest.mark.parametrize("template", GENERATION)
def test_trained_tokens_lie_inside_transformers_assistant_mask(template, template_tokenizer):
    """transformers' own mask (return_assistant_tokens_mask, what TRL's assistant_only_loss trains) covers every token
    booktune trains, and booktune trains something in every masked run that holds text."""
    tok = template_tokenizer(template)
    example = build_example(tok, CONVERSATION, name=template)
    out = tok.apply_chat_template(prepare_messages(tok, CONVERSATION), tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True, **template_kwargs(tok))
    mask = out["assistant_masks"]
    assert out["input_ids"] == example.input_ids
    trained = [i for i, label in enumerate(example.labels) if label != IGNORE]
    assert trained and all(mask[i] for i in trained)
    masked_runs = _runs([bool(m) for m in mask])
    with_answers = [run for run in masked_runs if any(i in trained for i in run)]
    assert len(with_answers) == 2  # one run per assistant turn; phi3_5_training adds an eos-only run
    assert all(tok.decode([example.input_ids[i] for i in run]) == tok.eos_token
               for run in masked_runs if run not in with_answers)


def _runs(flags: list[bool]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i, flag in enumerate(flags):
        if flag and runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        elif flag:
            runs.append([i])
    return runs


def test_blocks_hold_more_than_booktune_trains(template_tokenizer):
    """TRL's Qwen3 block holds the empty think block and Laguna's the role header: booktune keeps those as context."""
    for template, context in [("trl-qwen3_training.jinja", "<think>\n\n</think>\n\n"),
                              ("poolside-Laguna-XS.2.jinja", "<assistant>\n</think>\n")]:
        tok = template_tokenizer(template)
        messages = prepare_messages(tok, CONVERSATION)
        text = render(tok, messages)
        blocks = generation_blocks(tok, messages, text)
        assert [text[a:b].startswith(context) for a, b in blocks] == [True, True]
        example = build_example(tok, CONVERSATION)
        assert tok.decode([t for t, label in zip(example.input_ids, example.labels) if label != IGNORE]).count(
            context) == 0


def test_touching_blocks_count_as_one(template_tokenizer):
    """TRL's DiffusionGemma template closes content and `<turn|>` in two blocks; booktune's turn spans both."""
    from transformers.utils.chat_template_utils import render_jinja_template

    tok = template_tokenizer("trl-diffusion_gemma_training.jinja")
    messages = prepare_messages(tok, CONVERSATION)
    text, raw = render_jinja_template([messages], chat_template=tok.chat_template, return_assistant_tokens_mask=True,
                                      **{**tok.special_tokens_map, **template_kwargs(tok)})
    assert [text[0][a:b] for a, b in raw[0]] == ["Hello there.", "<turn|>\n", "Goodbye.", "<turn|>\n"]
    assert [text[0][a:b] for a, b in generation_blocks(tok, messages, text[0])] == [
        "Hello there.<turn|>\n", "Goodbye.<turn|>\n"]


def test_reasoning_trained_inside_the_gpt_oss_block(template_tokenizer, trained_spans):
    tok = template_tokenizer("trl-gptoss_training.jinja")
    conversation = [*CONVERSATION[:4], {"role": "assistant", "content": "Goodbye.", "thinking": "Be brief."}]
    spans = trained_spans(build_example(tok, conversation, train_reasoning=True))
    assert [tok.decode(s) for s in spans] == [
        "Hello there.<|end|>", "Be brief.<|end|><|start|>assistant<|channel|>final<|message|>Goodbye.<|return|>"]


# --- the check fails loud on real templates whose blocks disagree with booktune ----------------------------------

def _llama3_variant(make, block: str):
    return make(LLAMA3_TRL, make(LLAMA3_TRL).chat_template.replace(ASSISTANT_BLOCK, block))


def test_marker_outside_the_block_is_refused(template_tokenizer):
    tok = _llama3_variant(template_tokenizer, "        {%- generation %}{{- message['content'] | trim }}"
                                              "{%- endgeneration %}{{- '<|eot_id|>' }}\n")
    tok.name_or_path = "meta-llama/Llama-3.1-8B-Instruct"  # a private variant: the refusal names the model
    with pytest.raises(MaskingError) as err:
        build_example(tok, CONVERSATION, name="walden-00007")
    assert str(err.value) == ("walden-00007: meta-llama/Llama-3.1-8B-Instruct: assistant turn 1 ('Hello there.<|eot_id|>')"
                              " is not inside one of the template's {% generation %} blocks")


def test_a_block_without_an_answer_is_refused(template_tokenizer):
    tok = template_tokenizer(LLAMA3_TRL, template_tokenizer(LLAMA3_TRL).chat_template.replace(
        "{{- '<|start_header_id|>' + message['role']", "{%- generation %}{{- '<|start_header_id|>' + message['role']"
    ).replace("| trim + '<|eot_id|>' }}\n    {%- endif %}", "| trim + '<|eot_id|>' }}{%- endgeneration %}\n    {%- endif %}"))
    assert tok.chat_template.count("{%- generation %}") == 2
    with pytest.raises(MaskingError, match=r"^row-3: .*block '<\|start_header_id\|>system.*holds no answer"):
        build_example(tok, CONVERSATION, name="row-3")


def test_the_next_turns_opener_is_caught_only_by_the_blocks(template_tokenizer, trained_spans):
    """A template that ends an answer with no marker: booktune's own rules take the next turn's opener as the marker
    (right for GLM, whose `<|user|>` is what the model emits to stop). Here the blocks say the opener is prompt."""
    no_marker = "        {%- generation %}{{- message['content'] | trim }}{%- endgeneration %}\n"
    tagged = _llama3_variant(template_tokenizer, no_marker)
    untagged = template_tokenizer(LLAMA3_TRL, tagged.chat_template.replace("{%- generation %}", "").replace(
        "{%- endgeneration %}", ""))
    spans = [untagged.decode(s) for s in trained_spans(build_example(untagged, CONVERSATION))]
    assert spans[0] == "Hello there.<|start_header_id|>"  # without blocks nothing contradicts it
    with pytest.raises(MaskingError, match=r"assistant turn 1 \('Hello there.<\|start_header_id\|>'\) is not inside"):
        build_example(tagged, CONVERSATION)
