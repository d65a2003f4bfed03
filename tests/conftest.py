"""Shared fixtures: the sample books, ../shared, a tiny random model with the default model's real tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BOOKS = ROOT / "examples" / "books"
# The first 6,000 words of Walden as text (Standard Ebooks' public-domain transcription, as in examples/books): the
# book of the tiny runs, short enough that their held-out scoring over a 49k-token vocabulary stays quick.
SHORT_BOOK = ROOT / "tests" / "data" / "thoreau_walden.txt"
TINY = {"max_steps": 2, "save_steps": 1, "logging_steps": 1, "learning_rate": 5e-3, "eval_steps": 0}


def pytest_configure(config):
    # Keep tests off the user's real cache, but share one converted default model across the session.
    os.environ.setdefault("BOOKTUNE_CACHE", str(ROOT / ".booktune-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the repository")
    return SHARED


@pytest.fixture(scope="session")
def books_dir() -> Path:
    return BOOKS


@pytest.fixture(scope="session")
def default_tokenizer():
    from booktune.model import load_tokenizer

    return load_tokenizer("default")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, default_tokenizer) -> Path:
    """A randomly initialised 2-layer Llama with the default model's real tokenizer and chat template (seconds)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(default_tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=default_tokenizer.bos_token_id, eos_token_id=default_tokenizer.eos_token_id,
                         pad_token_id=default_tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    default_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def short_book() -> Path:
    return SHORT_BOOK


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory, short_book, tiny_model_dir) -> Path:
    """Walden's first 6,000 words in short passages with the tiny model's tokenizer: the data for tiny runs."""
    import booktune

    out = tmp_path_factory.mktemp("tiny-data")
    booktune.prepare([short_book], out, model=str(tiny_model_dir), chunk_words=120,
                     overlap_words=20)
    return out


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory, tiny_data_dir, tiny_model_dir) -> Path:
    """A finished run of the tiny model (two steps); tests copy it before changing it."""
    import booktune

    out = tmp_path_factory.mktemp("tiny-run") / "run"
    booktune.train(tiny_data_dir, out, model=str(tiny_model_dir), **TINY)
    return out
