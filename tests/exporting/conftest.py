"""Tiny models of each architecture booktune exports, built once per session (see tiny.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exporting.tiny import GEMMA_TEMPLATE, PHI3_TEMPLATE, Tiny, build, sentencepiece_tokenizer
from tests.template.conftest import TEMPLATES, vocab  # noqa: F401  (the real Qwen vocab, cached across sessions)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, default_tokenizer, vocab):  # noqa: F811
    """tiny(arch, fitted=True, small_vocab=False) -> Tiny: a 2-layer model of `arch` with a random LoRA adapter.
    `fitted=False` skips the 80 fitting steps where top-1 margins do not matter. `small_vocab=True` gives it a
    1000-piece SentencePiece tokenizer: GGUF readers (transformers' included) parse a 49k-token vocabulary for
    seconds per file, so the fast tests use this one."""
    made: dict[tuple[str, bool, bool], Tiny] = {}
    root = tmp_path_factory.mktemp("tiny")

    def make(arch: str, fitted: bool = True, small_vocab: bool = False) -> Tiny:
        key = (arch, fitted, small_vocab)
        if key not in made:
            tokenizer = (sentencepiece_tokenizer(root / "sp-llama", gemma=False, chat_template=PHI3_TEMPLATE)
                         if small_vocab else _tokenizer(arch, root, default_tokenizer, vocab))
            made[key] = build(arch, tokenizer, root / "-".join([arch, *map(str, map(int, key[1:]))]),
                              steps=80 if fitted else 0)
        return made[key]

    return make


def _tokenizer(arch: str, root: Path, default_tokenizer, vocab):  # noqa: F811
    """The default model's tokenizer where the architecture allows it; Qwen's own vocab for Qwen (transformers
    loads any tokenizer next to a qwen2/qwen3 config as Qwen2Tokenizer, which would re-split the SmolLM2 vocab);
    a SentencePiece tokenizer.model for Gemma 2 and Phi-3, whose real tokenizers are SentencePiece."""
    import copy

    if arch in ("qwen2", "qwen3"):
        tok = copy.deepcopy(vocab("qwen2"))
        tok.chat_template = (TEMPLATES / "Qwen-Qwen2.5-7B-Instruct.jinja").read_text(encoding="utf-8")
        return tok
    if arch == "gemma2":
        return sentencepiece_tokenizer(root / "sp-gemma", gemma=True, chat_template=GEMMA_TEMPLATE)
    if arch == "phi3":
        return sentencepiece_tokenizer(root / "sp-phi3", gemma=False, chat_template=PHI3_TEMPLATE)
    return default_tokenizer
