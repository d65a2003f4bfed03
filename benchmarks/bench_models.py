"""Random models of real shapes, saved locally (no Hub) or built in memory for generation, and seed-shaped training
rows, for train_throughput.py, question_writer.py and generate_speed.py."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

SHAPES: dict[str, dict[str, Any]] = {
    "llama-8b": dict(kind="llama", hidden_size=4096, num_hidden_layers=32, intermediate_size=14336,
                     num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False,
                     max_position_embeddings=131072, rope_theta=500000.0),
    "llama-1b": dict(kind="llama", hidden_size=2048, num_hidden_layers=16, intermediate_size=8192,
                     num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256,
                     tie_word_embeddings=True, max_position_embeddings=131072, rope_theta=500000.0),
    # The transformers defaults are the 120B shape; these are gpt-oss-20b's (shared/notes/gpt-oss.md §4).
    "gpt-oss-20b": dict(kind="gpt_oss", num_hidden_layers=24, num_local_experts=32, num_experts_per_tok=4,
                        vocab_size=201088, hidden_size=2880, intermediate_size=2880, head_dim=64,
                        num_attention_heads=64, num_key_value_heads=8, sliding_window=128,
                        max_position_embeddings=131072, tie_word_embeddings=False, attention_bias=True,
                        swiglu_limit=7.0, router_aux_loss_coef=0.9,
                        rope_parameters={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                         "truncate": False, "original_max_position_embeddings": 4096,
                                         "rope_theta": 150000.0}),
    # Two GPT-OSS layers (one sliding, one full) of the real head layout, few experts: dev/check_gpt_oss_packing.py.
    "gpt-oss-tiny": dict(kind="gpt_oss", num_hidden_layers=2, num_local_experts=4, num_experts_per_tok=2,
                         vocab_size=4096, hidden_size=512, intermediate_size=512, head_dim=64, num_attention_heads=16,
                         num_key_value_heads=2, sliding_window=128, layer_types=["sliding_attention", "full_attention"],
                         max_position_embeddings=8192, tie_word_embeddings=False, attention_bias=True,
                         initializer_range=0.1),
    "tiny": dict(kind="llama", hidden_size=64, num_hidden_layers=2, intermediate_size=128, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, tie_word_embeddings=True, max_position_embeddings=4096),
}
PAD, EOS = 0, 1


def build_config(name: str) -> Any:
    from transformers import GptOssConfig, LlamaConfig

    values = dict(SHAPES[name])
    kind = values.pop("kind")
    cls = GptOssConfig if kind == "gpt_oss" else LlamaConfig
    return cls(**values, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=2, use_cache=False)


def active_params(config: Any) -> int:
    """Parameters a token passes through (all of them for a dense model; top-k experts for MoE)."""
    from booktune.training.memory import Shape

    s = Shape.from_config(config)
    attn = sum(a * b for a, b in s.attention())
    mlp = sum(a * b for a, b in s.mlp()) * (s.top_k if s.experts else 1)
    return (attn + mlp) * s.layers + s.vocab * s.hidden * (1 if s.tied else 2)


def save_tokenizer(vocab: int, out: Path) -> None:
    """A word-level tokenizer over the whole vocabulary: Unsloth's loader insists on one beside the model."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t3"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=f"t{PAD}", eos_token=f"t{EOS}",
                                   bos_token="t2", unk_token="t3")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    fast.save_pretrained(out)


def build_model(name: str, root: Path, device: str = "cuda") -> Path:
    """Random bf16 weights of shape `name` in root/name (made once: init on the GPU, then saved in 5 GB shards)."""
    import torch
    from transformers import AutoModelForCausalLM

    out = root / name
    if (out / "booktune-bench.json").is_file():
        return out
    started = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(build_config(name), dtype=torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out, max_shard_size="5GB")
    save_tokenizer(model.config.vocab_size, out)
    del model
    torch.cuda.empty_cache()  # the caller launches training processes on this card next
    (out / "booktune-bench.json").write_text(json.dumps({"params": params,
                                                         "seconds": round(time.perf_counter() - started, 1)}))
    return out


def random_model(name: str, tokenizer: Any, device: str) -> Any:
    """Random bf16 weights of shape `name` in memory, for generation: the vocabulary sized to a real `tokenizer`,
    its end and pad tokens, and the KV cache on."""
    import torch
    from transformers import AutoModelForCausalLM

    config = build_config(name)
    config.vocab_size = len(tokenizer)
    config.eos_token_id, config.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    config.use_cache = True
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    return model.eval()


def make_rows(n: int, vocab: int, *, lo: int, hi: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """Rows shaped like booktune's: a masked prompt (system + user lead-in, 60-120 tokens), then a trained answer
    ending in the end-of-turn token; lengths uniform in [lo, hi]."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        length = rng.randint(lo, hi)
        ids = [rng.randrange(10, vocab) for _ in range(length - 1)] + [EOS]
        prompt = min(rng.randint(60, 120), length // 4)
        rows.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return rows


def make_pattern_rows(n: int, vocab: int, *, lo: int, hi: int, seed: int = 0, alphabet: int = 1000,
                      noise: float = 0.1) -> list[dict[str, list[int]]]:
    """Rows like make_rows whose answers a model can learn in a few steps: each token follows the previous one
    through one fixed random permutation of `alphabet` tokens (a `noise` share drawn at random instead). Random
    tokens leave a random model's loss flat; this lets a loss curve show whether gradients arrive."""
    rng = random.Random(seed)
    nxt = list(range(10, 10 + alphabet))
    random.Random(12345).shuffle(nxt)
    rows = []
    for _ in range(n):
        length = rng.randint(lo, hi)
        ids = [rng.randrange(10, 10 + alphabet)]
        while len(ids) < length - 1:
            ids.append(rng.randrange(10, 10 + alphabet) if rng.random() < noise else nxt[ids[-1] - 10])
        ids.append(EOS)
        prompt = min(rng.randint(60, 120), length // 4)
        rows.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    assert alphabet + 10 <= vocab
    return rows

