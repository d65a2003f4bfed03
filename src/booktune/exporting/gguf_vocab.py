"""The tokenizer half of a GGUF file, written the way llama.cpp's converter writes it (TextModel._set_vocab_gpt2,
_set_vocab_sentencepiece and _set_vocab_llama_hf in llama.cpp's conversion/base.py):

- a byte-level BPE tokenizer.json (SmolLM2, Llama 3, Qwen, gpt-oss, Mistral Nemo) is `gpt2`, with its merges and the
  pre-tokenizer name llama.cpp knows it by;
- a SentencePiece tokenizer.model (Gemma, Phi-3, Mistral 7B, Llama 2) is `llama`, with the pieces' scores;
- a SentencePiece-style tokenizer.json without its tokenizer.model is `llama` through the gguf package's LlamaHfVocab.

The special token ids, the add-BOS flag and the chat template come from the gguf package's SpecialVocab, which reads
tokenizer_config.json, tokenizer.json, chat_template.jinja and config.json as llama.cpp does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from hashlib import sha256
from pathlib import Path
from typing import Any

import gguf

from booktune.exporting.errors import ExportError

# TextModel.get_vocab_base_pre: the text whose token ids identify a BPE pre-tokenizer.
CHECK_TEXT = (
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 "
    "33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= "
    "нещо на Български ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not "
    "sure I'll make it, 'D you like some tea? We'Ve a'lL"
)

# sha256(str(token ids of CHECK_TEXT)) -> llama.cpp's pre-tokenizer name, copied from get_vocab_base_pre for the
# tokenizers of the architectures booktune exports (the comment names the model llama.cpp hashed).
KNOWN_PRE_TOKENIZERS = {
    "0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",  # Meta-Llama-3-8B
    "c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d": "smaug-bpe",  # Smaug-Llama-3-70B
    "d353350c764d8c3b39c763113960e4fb4919bea5fbf208a0e3b22e8469dc7406": "llama4",  # Llama-4-Scout
    "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",  # SmolLM-135M (and SmolLM2)
    "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",  # Qwen1.5-7B (Qwen2, 2.5, 3)
    "d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c": "qwen2",  # Qwen3-Embedding-0.6B
    "b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5": "deepseek-r1-qwen",  # R1-Distill-Qwen
    "d30d75d9059f1aa2c19359de71047b3ae408c70875e8a3ccf8c5fba56c9d8af4": "qwen35",  # Qwen3.5-9B
    "ccc2ef013c104be7bae2965776d611e1d7a8a2a9c547dd93a682c9a9fc80352e": "gpt-4o",  # Xenova/gpt-4o (o200k)
    "63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e": "tekken",  # Mistral-Nemo-Base-2407
    "0e9433cbbb161f89e264eb32e8e64bfe69e834973ffca5d41d3948a604a3e2a3": "pixtral",  # pixtral-12b
    "3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",  # openai-community/gpt2
    "fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085": "phi-2",  # microsoft/phi-2
    "35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34": "starcoder",  # starcoder2-3b
}


def tokenizer_kind(model_dir: Path) -> str:
    """'spm' (tokenizer.model), 'gpt2' (byte-level BPE tokenizer.json) or 'llama-hf' (SentencePiece-style
    tokenizer.json), in the order LlamaModel.set_vocab tries them."""
    if (model_dir / "tokenizer.model").is_file():
        return "spm"
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise ExportError(f"{model_dir}: no tokenizer.json or tokenizer.model to write the vocabulary from")
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    if model.get("type") == "BPE" and "ByteLevel" in json.dumps([data.get("pre_tokenizer"), data.get("decoder")]):
        return "gpt2"
    if model.get("type") == "BPE" and model.get("byte_fallback"):
        return "llama-hf"
    raise ExportError(f"{path}: a {model.get('type')!r} tokenizer, which booktune cannot write to GGUF "
                      "(it writes byte-level BPE and SentencePiece tokenizers)")


def write_vocab(w: gguf.GGUFWriter, model_dir: Path, hp: dict[str, Any], *, stop_ids: Sequence[int] = (),
                no_space_prefix: bool = False) -> int:
    """Tokenizer metadata into `w`; returns the number of tokens. `stop_ids`: the chat template's end-of-turn
    tokens, first one written as the end-of-turn id (llama.cpp also stops at eos and at any token it recognises
    as an end marker). `no_space_prefix`: Gemma's SentencePiece adds no leading space (Gemma2Model.set_vocab)."""
    kind = tokenizer_kind(model_dir)
    if kind == "gpt2":
        tokens, toktypes, pre = _bpe_vocab(model_dir, hp)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types(toktypes)
    else:
        tokens, scores, toktypes = _spm_vocab(model_dir, hp) if kind == "spm" else _llama_hf_vocab(model_dir)
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(toktypes)
        if no_space_prefix:
            w.add_add_space_prefix(False)
    special = gguf.SpecialVocab(model_dir, load_merges=kind == "gpt2", n_vocab=len(tokens))
    special.add_to_gguf(w, quiet=True)
    if stop_ids:
        w.add_eot_token_id(int(stop_ids[0]))
    return len(tokens)


def pre_tokenizer(tokenizer: Any, where: Path) -> str:
    """TextModel.get_vocab_base_pre: hash the check text's token ids and look the hash up."""
    digest = sha256(str(tokenizer.encode(CHECK_TEXT)).encode()).hexdigest()
    if digest not in KNOWN_PRE_TOKENIZERS:
        raise ExportError(f"{where}: BPE pre-tokenizer not recognised (check-text hash {digest[:16]}…); "
                          "llama.cpp would split text differently than this tokenizer, so no GGUF is written")
    return KNOWN_PRE_TOKENIZERS[digest]


def _looks_special(token: str) -> bool:
    """TextModel.does_token_look_special: added tokens some models forget to mark special."""
    return (token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
            or (token.startswith("<|") and token.endswith("|>"))
            or (token.startswith("<｜") and token.endswith("｜>"))
            or (token.startswith("<unused") and token.endswith(">")))


def _bpe_vocab(model_dir: Path, hp: dict[str, Any]) -> tuple[list[str], list[int], str]:
    """TextModel.get_vocab_base: the vocabulary padded to the model's vocab_size, added tokens typed."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    vocab = tok.get_vocab()
    size = hp.get("vocab_size") or len(vocab)
    if max(vocab.values()) >= size:
        raise ExportError(f"{model_dir}/tokenizer.json: token id {max(vocab.values())} is past the model's "
                          f"vocab_size {size}")
    pre = pre_tokenizer(tok, model_dir / "tokenizer.json")
    reverse = {i: t for t, i in vocab.items()}
    added, decoder = tok.get_added_vocab(), tok.added_tokens_decoder
    tokens, types = [], []
    for i in range(size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        token = reverse[i]
        if token in added:
            if not decoder[i].normalized:
                # llama.cpp takes control and user-defined tokens as already normalised
                token = tok.decode(tok.encode(token, add_special_tokens=False))
            if decoder[i].special or _looks_special(token):
                types.append(gguf.TokenType.CONTROL)
            else:
                token = token.replace("\u2581", " ")
                types.append(gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(token)
    return tokens, types, pre


def _spm_vocab(model_dir: Path, hp: dict[str, Any]) -> tuple[list[bytes], list[float], list[int]]:
    """TextModel._create_vocab_sentencepiece: pieces, scores and types, then the added tokens of
    tokenizer_config.json, padded to the model's vocab_size."""
    from sentencepiece import SentencePieceProcessor

    sp = SentencePieceProcessor()
    sp.LoadFromFile(str(model_dir / "tokenizer.model"))
    size = hp.get("vocab_size") or sp.vocab_size()
    tokens = [f"[PAD{i}]".encode() for i in range(size)]
    scores, types = [-10000.0] * size, [gguf.TokenType.UNUSED] * size
    for i in range(min(size, sp.vocab_size())):
        tokens[i], scores[i], types[i] = sp.IdToPiece(i).encode("utf-8"), sp.GetScore(i), _spm_type(sp, i)
    for i, token, special in _added_tokens(model_dir):
        if i >= size:
            continue
        if special is None:
            types[i] = gguf.TokenType.USER_DEFINED
        elif special or _looks_special(token):
            types[i] = gguf.TokenType.CONTROL
        else:
            token = token.replace("\u2581", " ")
            types[i] = gguf.TokenType.USER_DEFINED
        tokens[i], scores[i] = token.encode("utf-8"), -1000.0
    return tokens, scores, types


def _added_tokens(model_dir: Path) -> list[tuple[int, str, bool | None]]:
    """(id, text, special) of added_tokens.json (special unknown: None), then of tokenizer_config.json's
    added_tokens_decoder, in the order _create_vocab_sentencepiece applies them."""
    found: list[tuple[int, str, bool | None]] = []
    if (path := model_dir / "added_tokens.json").is_file():
        found += [(int(i), text, None) for text, i in json.loads(path.read_text(encoding="utf-8")).items()]
    if (path := model_dir / "tokenizer_config.json").is_file():
        decoder = json.loads(path.read_text(encoding="utf-8")).get("added_tokens_decoder", {})
        found += [(int(i), d["content"], bool(d.get("special"))) for i, d in decoder.items()]
    return found


def _spm_type(sp: Any, i: int) -> int:
    if sp.IsUnknown(i):
        return gguf.TokenType.UNKNOWN
    if sp.IsControl(i):
        return gguf.TokenType.CONTROL
    if sp.IsUnused(i):
        return gguf.TokenType.UNUSED
    if sp.IsByte(i):
        return gguf.TokenType.BYTE
    return gguf.TokenType.NORMAL


def _llama_hf_vocab(model_dir: Path) -> tuple[list[bytes], list[float], list[int]]:
    """TextModel._set_vocab_llama_hf. Its scores are all equal, so llama.cpp merges pieces left to right rather
    than by SentencePiece's scores; merge_adapter copies the base's tokenizer.model beside the weights to avoid it."""
    try:
        vocab = gguf.LlamaHfVocab(model_dir)
    except (FileNotFoundError, TypeError) as e:
        raise ExportError(f"{model_dir}/tokenizer.json: not a SentencePiece-style tokenizer ({e})") from None
    tokens, scores, types = [], [], []
    for text, score, toktype in vocab.all_tokens():
        tokens.append(text)
        scores.append(score)
        types.append(toktype)
    return tokens, scores, types
