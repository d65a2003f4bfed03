"""The tokenizer metadata of a GGUF file, as llama.cpp's converter writes it."""

from __future__ import annotations

import copy
import json

import gguf
import pytest

from booktune.exporting.errors import ExportError
from booktune.exporting.gguf_arch import load_hparams
from booktune.exporting.gguf_vocab import pre_tokenizer, tokenizer_kind, write_vocab


def vocab_only(folder, path, **kwargs) -> gguf.GGUFReader:
    """A vocabulary-only GGUF of `folder`'s tokenizer (llama.cpp's --vocab-only files look the same)."""
    writer = gguf.GGUFWriter(path, "llama")
    write_vocab(writer, folder, load_hparams(folder), **kwargs)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    return gguf.GGUFReader(path)


def kv(reader, key):
    return reader.fields[key].contents()


def test_pre_tokenizer_names_the_tokenizers_booktune_ships_with(default_tokenizer, tmp_path):
    assert pre_tokenizer(default_tokenizer, tmp_path) == "smollm"  # SmolLM2, the default model


def test_pre_tokenizer_of_the_fixture_vocabs(vocab, tmp_path):
    assert pre_tokenizer(vocab("qwen2"), tmp_path) == "qwen2"
    assert pre_tokenizer(vocab("gpt-2"), tmp_path) == "gpt-2"


def test_unknown_pre_tokenizer_is_a_one_line_error(default_tokenizer, tmp_path):
    from tokenizers import pre_tokenizers

    tok = copy.deepcopy(default_tokenizer)
    # the same vocabulary split on whitespace first: llama.cpp has no such pre-tokenizer for it
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    with pytest.raises(ExportError) as err:
        pre_tokenizer(tok, tmp_path / "tokenizer.json")
    assert str(err.value).startswith(f"{tmp_path / 'tokenizer.json'}: BPE pre-tokenizer not recognised")
    assert "\n" not in str(err.value)


def test_byte_level_bpe_vocabulary(tiny, tmp_path):
    """TextModel._set_vocab_gpt2 for SmolLM2's tokenizer: every token, its merges, control tokens typed, the
    special ids, the chat template and the end-of-turn id."""
    t = tiny("llama", fitted=False)
    tok = t.tokenizer
    assert tokenizer_kind(t.base) == "gpt2"
    reader = vocab_only(t.base, tmp_path / "vocab.gguf", stop_ids=[2])
    tokens = kv(reader, "tokenizer.ggml.tokens")
    assert tokens == tok.convert_ids_to_tokens(list(range(len(tok))))
    merges = json.loads((t.base / "tokenizer.json").read_text())["model"]["merges"]
    assert len(kv(reader, "tokenizer.ggml.merges")) == len(merges)
    types = kv(reader, "tokenizer.ggml.token_type")
    for token in ("<|im_start|>", "<|im_end|>"):
        assert types[tok.convert_tokens_to_ids(token)] == gguf.TokenType.CONTROL
    assert types[tok.convert_tokens_to_ids("Ġthe")] == gguf.TokenType.NORMAL
    assert kv(reader, "tokenizer.ggml.model") == "gpt2" and kv(reader, "tokenizer.ggml.pre") == "smollm"
    assert kv(reader, "tokenizer.ggml.eos_token_id") == tok.eos_token_id
    assert kv(reader, "tokenizer.ggml.eot_token_id") == 2
    assert kv(reader, "tokenizer.chat_template") == tok.chat_template


@pytest.mark.parametrize("gemma", [True, False])
def test_sentencepiece_vocabulary(gemma, tiny, tmp_path):
    """TextModel._create_vocab_sentencepiece: pieces with their scores and types from tokenizer.model; Gemma's
    vocabulary adds no leading space (Gemma2Model.set_vocab)."""
    from sentencepiece import SentencePieceProcessor

    t = tiny("gemma2" if gemma else "llama", fitted=False, small_vocab=not gemma)
    assert tokenizer_kind(t.base) == "spm"
    reader = vocab_only(t.base, tmp_path / "vocab.gguf", no_space_prefix=gemma)
    sp = SentencePieceProcessor(model_file=str(t.base / "tokenizer.model"))
    tokens, scores = kv(reader, "tokenizer.ggml.tokens"), kv(reader, "tokenizer.ggml.scores")
    types = kv(reader, "tokenizer.ggml.token_type")
    assert tokens[: sp.vocab_size()] == [sp.id_to_piece(i) for i in range(sp.vocab_size())]
    assert scores[100] == pytest.approx(sp.get_score(100))
    assert types[sp.piece_to_id("<0x41>")] == gguf.TokenType.BYTE
    assert types[sp.bos_id()] == gguf.TokenType.CONTROL and types[sp.unk_id()] == gguf.TokenType.UNKNOWN
    assert kv(reader, "tokenizer.ggml.model") == "llama" and kv(reader, "tokenizer.ggml.pre") == "default"
    assert kv(reader, "tokenizer.ggml.bos_token_id") == sp.bos_id()
    if gemma:
        assert kv(reader, "tokenizer.ggml.add_space_prefix") is False
    else:
        assert "tokenizer.ggml.add_space_prefix" not in reader.fields


def test_sentencepiece_json_without_its_model_uses_llama_hf_vocab(tiny, tmp_path):
    """No tokenizer.model beside a SentencePiece-style tokenizer.json: TextModel._set_vocab_llama_hf."""
    import shutil

    t = tiny("llama", fitted=False, small_vocab=True)
    folder = tmp_path / "no-model"
    shutil.copytree(t.base, folder)
    (folder / "tokenizer.model").unlink()
    assert tokenizer_kind(folder) == "llama-hf"
    reader = vocab_only(folder, tmp_path / "vocab.gguf")
    assert kv(reader, "tokenizer.ggml.model") == "llama"
    assert kv(reader, "tokenizer.ggml.tokens")[:300] == t.tokenizer.convert_ids_to_tokens(list(range(300)))
