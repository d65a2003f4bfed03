"""Tiny models of every architecture booktune exports, each with a random LoRA adapter, built in seconds.

A randomly initialised model scores all 49k tokens within a hair of each other, so any rounding swaps its top two
predictions: no quantization could keep 99 % of its top-1 picks. For the top-1 checks each tiny base is first
fitted for 80 steps on a Walden passage (its predictions then have real margins, like a trained model's); the
adapter is not trained: its B matrices get random non-zero values so the merge changes every adapted weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Thoreau, Walden (1854), public domain: the text the tiny bases fit and the comparisons score.
WALDEN = (
    "I went to the woods because I wished to live deliberately, to front only the essential facts of life, and see "
    "if I could not learn what it had to teach, and not, when I came to die, discover that I had not lived. I did "
    "not wish to live what was not life, living is so dear; nor did I wish to practise resignation, unless it was "
    "quite necessary. I wanted to live deep and suck out all the marrow of life, to live so sturdily and "
    "Spartan-like as to put to rout all that was not life, to cut a broad swath and shave close, to drive life into "
    "a corner, and reduce it to its lowest terms, and, if it proved to be mean, why then to get the whole and "
    "genuine meanness of it, and publish its meanness to the world; or if it were sublime, to know it by "
    "experience, and be able to give a true account of it in my next excursion. Our life is frittered away by "
    "detail. An honest man has hardly need to count more than his ten fingers, or in extreme cases he may add his "
    "ten toes, and lump the rest. Simplicity, simplicity, simplicity! I say, let your affairs be as two or three, "
    "and not a hundred or a thousand; instead of a million count half a dozen, and keep your accounts on your "
    "thumb-nail. Every morning was a cheerful invitation to make my life of equal simplicity, and I may say "
    "innocence, with Nature herself. I got up early and bathed in the pond; that was a religious exercise, and one "
    "of the best things which I did. The pond was still, and the morning mist rose from its surface in the sun."
)
# A second passage: more text for the SentencePiece tokenizers trained here.
WALDEN_HELD_OUT = (
    "A lake is the landscape's most beautiful and expressive feature. It is earth's eye; looking into which the "
    "beholder measures the depth of his own nature. The fluviatile trees next the shore are the slender eyelashes "
    "which fringe it, and the wooded hills and cliffs around are its overhanging brows. Standing on the smooth "
    "sandy beach at the east end of the pond, in a calm September afternoon, when a slight haze makes the opposite "
    "shore-line indistinct, I have seen whence came the expression, the glassy surface of a lake."
)

TOKENS = 160
WIDTH = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=2048)


@dataclass(frozen=True)
class Tiny:
    """A tiny base model folder, its adapter folder (tokenizer included) and the PEFT model in memory."""

    arch: str
    base: Path
    adapter: Path
    peft: Any
    tokenizer: Any


def config_for(arch: str, tokenizer: Any) -> Any:
    """A small config of `arch` sized for `tokenizer`."""
    import transformers as tf

    ids = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
               pad_token_id=tokenizer.pad_token_id)
    if arch == "llama":
        return tf.LlamaConfig(**WIDTH, **ids, tie_word_embeddings=True)
    if arch == "mistral":
        return tf.MistralConfig(**WIDTH, **ids, head_dim=16, sliding_window=1024, tie_word_embeddings=False)
    if arch == "qwen2":
        return tf.Qwen2Config(**WIDTH, **ids, tie_word_embeddings=True)
    # transformers' GGUF loader reads no head_dim for qwen3 and gpt_oss, and no query_pre_attn_scalar for Gemma: it
    # takes the config class defaults (128, 64, 256), so the tiny models use those values to stay reloadable
    if arch == "qwen3":
        return tf.Qwen3Config(**{**WIDTH, "num_attention_heads": 2, "num_key_value_heads": 1}, **ids, head_dim=128,
                              tie_word_embeddings=False)
    if arch == "gemma2":
        return tf.Gemma2Config(**{**WIDTH, "num_attention_heads": 2, "num_key_value_heads": 1}, **ids, head_dim=256,
                               query_pre_attn_scalar=256, sliding_window=1024)
    if arch == "gemma3":
        return tf.Gemma3TextConfig(**{**WIDTH, "num_attention_heads": 2, "num_key_value_heads": 1}, **ids,
                                   head_dim=256, query_pre_attn_scalar=256, sliding_window=512)
    if arch == "phi3":
        return tf.Phi3Config(**WIDTH, **ids, original_max_position_embeddings=2048, tie_word_embeddings=False)
    if arch == "gpt_oss":
        return tf.GptOssConfig(**{**WIDTH, "intermediate_size": 64}, **ids, head_dim=64, num_local_experts=4,
                               num_experts_per_tok=2, sliding_window=128, tie_word_embeddings=False)
    raise ValueError(arch)


def walden_ids(tokenizer: Any) -> Any:
    """The first TOKENS tokens of WALDEN, (1, n): what the tiny bases fit and the comparisons score."""
    return tokenizer(WALDEN, return_tensors="pt").input_ids[:, :TOKENS]


def fit(model: Any, tokenizer: Any, steps: int = 80) -> None:
    """Fit the tiny model to WALDEN's first tokens so its predictions have margins (see the module docstring).
    The embeddings stay frozen (Adam over 49k-150k rows is most of a step's time on a CPU); the layers learn to
    point each position's hidden state at the next token's fixed embedding, which gives every position a clear
    top-1 after 80 steps."""
    import torch

    ids = walden_ids(tokenizer)
    frozen = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    opt = torch.optim.AdamW([p for p in model.parameters() if id(p) not in frozen], lr=1e-2)
    model.train()
    for _ in range(steps):
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()


def build(arch: str, tokenizer: Any, root: Path, *, seed: int = 0, steps: int = 80) -> Tiny:
    """Base folder (tiny model fitted for `steps`, 0: random + tokenizer) and adapter folder (random LoRA +
    tokenizer) under `root`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config_for(arch, tokenizer), dtype=torch.float32)
    if steps:
        fit(model, tokenizer, steps)
    base, adapter = root / f"{arch}-base", root / f"{arch}-adapter"
    model.save_pretrained(base, safe_serialization=True)
    tokenizer.save_pretrained(base)
    _copy_tokenizer_model(tokenizer, base)
    # gpt-oss's experts are 3-D parameters, not Linears: PEFT reaches them through target_parameters
    experts = ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"] if arch == "gpt_oss" else None
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                            target_parameters=experts))
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    peft.eval()
    peft.save_pretrained(adapter, safe_serialization=True)
    tokenizer.save_pretrained(adapter)
    _copy_tokenizer_model(tokenizer, adapter)
    return Tiny(arch, base, adapter, peft, tokenizer)


def random_adapter(base: str | Path, out: Path, std: float) -> None:
    """A LoRA adapter (r16, all linear layers) on the saved model `base`, its B matrices drawn from N(0, std), saved
    with base's tokenizer in `out`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                          LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.normal_(0, std)
    peft.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)


def _copy_tokenizer_model(tokenizer: Any, folder: Path) -> None:
    """A real SentencePiece model folder ships its tokenizer.model, which transformers 5 does not save."""
    import shutil

    source = getattr(tokenizer, "booktune_sentencepiece", None)
    if source is not None:
        shutil.copyfile(source, folder / "tokenizer.model")


def sentencepiece_tokenizer(root: Path, *, gemma: bool, chat_template: str) -> Any:
    """A real SentencePiece tokenizer trained on Walden (1000 pieces, byte fallback): Gemma's layout (no leading
    space, <pad> <eos> <bos> <unk>, turn markers) or Llama/Phi-3's (leading space, <unk> <s> </s>, Phi markers)."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.txt").write_text((WALDEN + "\n" + WALDEN_HELD_OUT + "\n") * 4, encoding="utf-8")
    if gemma:
        special = dict(pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
                       bos_piece="<bos>", unk_piece="<unk>", add_dummy_prefix=False,
                       user_defined_symbols=["<start_of_turn>", "<end_of_turn>"])
        config = {"tokenizer_class": "GemmaTokenizer", "bos_token": "<bos>", "eos_token": "<eos>",
                  "pad_token": "<pad>", "unk_token": "<unk>", "add_bos_token": True}
    else:
        special = dict(unk_id=0, bos_id=1, eos_id=2, pad_id=-1, user_defined_symbols=[
            "<|endoftext|>", "<|assistant|>", "<|end|>", "<|user|>", "<|system|>"])
        config = {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "<|endoftext|>",
                  "pad_token": "<|endoftext|>", "unk_token": "<unk>", "add_bos_token": True}
    spm.SentencePieceTrainer.train(input=str(root / "corpus.txt"), model_prefix=str(root / "sp"), vocab_size=1000,
                                   model_type="bpe", byte_fallback=True, character_coverage=1.0, minloglevel=2,
                                   hard_vocab_limit=False, **special)
    folder = root / "tokenizer"
    folder.mkdir(exist_ok=True)
    (root / "sp.model").replace(folder / "tokenizer.model")
    import json

    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": chat_template}))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    tokenizer.booktune_sentencepiece = folder / "tokenizer.model"
    return tokenizer


GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% set role = 'model' if message['role'] == 'assistant' "
    "else message['role'] %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
PHI3_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)
