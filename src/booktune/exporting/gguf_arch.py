"""What each architecture needs in a GGUF file: llama.cpp's architecture, its hyperparameters, and the tensor layouts
that differ from Hugging Face's. Every rule follows llama.cpp's converter (the `conversion/` package beside
convert_hf_to_gguf.py); the comments name the class and method that decide it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from booktune.exporting.errors import ExportError

Tensor = Any  # a torch.Tensor; torch is imported only where tensors are made
Hparams = dict[str, Any]


@dataclass(frozen=True)
class Arch:
    """One architecture booktune exports. `split` rewrites fused HF tensors into the ones llama.cpp loads (still
    under HF-style names, so the gguf package's tensor map names them); `extra` yields tensors llama.cpp needs that
    the checkpoint does not hold. `mxfp4_experts`: the expert stacks are written as MXFP4 in the quantized files,
    as llama.cpp ships gpt-oss. `space_prefix=False`: the SentencePiece vocabulary adds no leading space."""

    gguf_arch: gguf.MODEL_ARCH
    permute_qk: bool = False
    norm_shift: float = 0.0
    drop_output: bool = False
    mxfp4_experts: bool = False
    space_prefix: bool = True
    hparams: Callable[[gguf.GGUFWriter, Hparams], None] | None = None
    split: Callable[[str, Tensor], Iterator[tuple[str, Tensor]]] | None = None
    extra: Callable[[Hparams], Iterator[tuple[gguf.MODEL_TENSOR, Tensor]]] | None = None

    @property
    def name(self) -> str:
        return gguf.MODEL_ARCH_NAMES[self.gguf_arch]


def load_hparams(model_dir: str | Path) -> Hparams:
    """The model's config with every default filled in (transformers writes only non-default values), and a
    multimodal checkpoint's text_config lifted to the top, as TextModel.__init__ does."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ExportError(f"{Path(model_dir) / 'config.json'}: cannot read the model config: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    hp = config.to_dict()
    if isinstance(hp.get("text_config"), dict):
        hp = {**hp, **hp["text_config"]}
    return hp


def rope_params(hp: Hparams) -> tuple[dict[str, Any], dict[str, Any]]:
    """(full-attention, sliding-attention) RoPE settings from transformers 5's rope_parameters or 4.x's keys."""
    params = dict(hp.get("rope_parameters") or hp.get("rope_scaling") or {})
    full = dict(params.get("full_attention", params))
    swa = dict(params.get("sliding_attention", {}))
    full.setdefault("rope_theta", hp.get("rope_theta"))
    swa.setdefault("rope_theta", hp.get("rope_local_base_freq"))
    if "type" in full and "rope_type" not in full:
        full["rope_type"] = full["type"]
    full.setdefault("original_max_position_embeddings", hp.get("original_max_position_embeddings"))
    return full, swa


def head_dim(hp: Hparams) -> int:
    return hp.get("head_dim") or hp["hidden_size"] // hp["num_attention_heads"]


def write_common_hparams(w: gguf.GGUFWriter, hp: Hparams) -> None:
    """TextModel.set_gguf_parameters: the keys every architecture shares."""
    w.add_block_count(hp["num_hidden_layers"])
    w.add_context_length(hp["max_position_embeddings"])
    w.add_embedding_length(hp["hidden_size"])
    w.add_feed_forward_length(hp["intermediate_size"])
    w.add_head_count(hp["num_attention_heads"])
    w.add_head_count_kv(hp.get("num_key_value_heads") or hp["num_attention_heads"])
    w.add_layer_norm_rms_eps(hp["rms_norm_eps"])
    full, swa = rope_params(hp)
    _write_rope_scaling(w, full)
    if full.get("rope_theta") is not None:
        w.add_rope_freq_base(full["rope_theta"])
    if swa.get("rope_theta") is not None and swa.get("rope_theta") != full.get("rope_theta"):
        w.add_rope_freq_base_swa(swa["rope_theta"])
    if hp.get("num_local_experts"):
        w.add_expert_count(hp["num_local_experts"])
        w.add_expert_used_count(hp["num_experts_per_tok"])
    if hp.get("head_dim"):
        w.add_key_length(hp["head_dim"])
        w.add_value_length(hp["head_dim"])


def _write_rope_scaling(w: gguf.GGUFWriter, rope: dict[str, Any]) -> None:
    kind, factor = rope.get("rope_type"), rope.get("factor")
    if kind == "linear" and factor is not None:
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(factor)
    elif kind == "yarn" and factor is not None:
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(factor)
        w.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
        if rope.get("beta_fast") is not None:
            w.add_rope_scaling_yarn_beta_fast(rope["beta_fast"])
        if rope.get("beta_slow") is not None:
            w.add_rope_scaling_yarn_beta_slow(rope["beta_slow"])
        if (attn := rope.get("attention_factor", rope.get("attn_factor"))) is not None:
            w.add_rope_scaling_yarn_attn_factor(attn)
    elif kind in ("su", "longrope"):
        w.add_rope_scaling_type(gguf.RopeScalingType.LONGROPE)
    # "llama3" scaling travels as the rope_freqs tensor (llama_rope_freqs); "default" needs nothing


def permute(weights: Tensor, n_head: int, n_head_kv: int | None) -> Tensor:
    """LlamaModel.permute: HF stores each q/k head's RoPE pairs as two halves; llama.cpp's "normal" RoPE rotates
    adjacent pairs, so the rows of every head are interleaved."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


# --- llama, mistral: LlamaModel ---------------------------------------------------------------------------------

def _llama_hparams(w: gguf.GGUFWriter, hp: Hparams) -> None:
    w.add_vocab_size(hp["vocab_size"])
    w.add_rope_dimension_count(head_dim(hp))


def llama_rope_freqs(hp: Hparams) -> Iterator[tuple[gguf.MODEL_TENSOR, Tensor]]:
    """LlamaModel.generate_extra_tensors: Llama 3.1+'s "llama3" RoPE scaling as per-frequency factors."""
    import torch

    rope, _ = rope_params(hp)
    if str(rope.get("rope_type", "")).lower() != "llama3":
        return
    base, dim = rope.get("rope_theta", 10000.0), head_dim(hp)
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor = rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old_ctx = rope.get("original_max_position_embeddings") or 8192
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    factors = []
    for freq in freqs.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    yield gguf.MODEL_TENSOR.ROPE_FREQS, torch.tensor(factors, dtype=torch.float32)


# --- gemma2, gemma3: Gemma2Model, Gemma3Model -------------------------------------------------------------------

def _gemma2_hparams(w: gguf.GGUFWriter, hp: Hparams) -> None:
    w.add_attn_logit_softcapping(hp["attn_logit_softcapping"])
    w.add_final_logit_softcapping(hp["final_logit_softcapping"])
    w.add_sliding_window(hp["sliding_window"])


def _gemma3_hparams(w: gguf.GGUFWriter, hp: Hparams) -> None:
    if hp.get("final_logit_softcapping"):
        w.add_final_logit_softcapping(hp["final_logit_softcapping"])
    layer_types = hp.get("layer_types") or []
    if hp.get("sliding_window_pattern", 6) != 1 and (not layer_types or "sliding_attention" in layer_types):
        w.add_sliding_window(hp["sliding_window"])


# --- phi3: Phi3MiniModel ----------------------------------------------------------------------------------------

def _phi3_rope_dims(hp: Hparams) -> int:
    rope, _ = rope_params(hp)
    factor = rope.get("partial_rotary_factor", hp.get("partial_rotary_factor")) or 1.0
    return int(factor * hp["hidden_size"]) // hp["num_attention_heads"]


def _phi3_hparams(w: gguf.GGUFWriter, hp: Hparams) -> None:
    rope, _ = rope_params(hp)
    orig_ctx = rope.get("original_max_position_embeddings") or hp["max_position_embeddings"]
    w.add_rope_scaling_orig_ctx_len(orig_ctx)
    w.add_rope_dimension_count(_phi3_rope_dims(hp))
    # Phi-4 has no sliding window; llama.cpp tells it apart from Phi-3 by a window of 0
    w.add_sliding_window(hp.get("sliding_window") or 0)
    if rope.get("long_factor"):
        scale = hp["max_position_embeddings"] / orig_ctx
        if scale <= 1.0:
            attn = 1.0
        elif rope.get("rope_type") == "yarn":
            attn = 0.1 * math.log(scale) + 1.0
        else:
            attn = math.sqrt(1 + math.log(scale) / math.log(orig_ctx))
        w.add_rope_scaling_attn_factors(attn)


def _phi3_rope_factors(hp: Hparams) -> Iterator[tuple[gguf.MODEL_TENSOR, Tensor]]:
    """Phi3MiniModel.generate_extra_tensors: LongRoPE's per-frequency factors for the 128k-context models."""
    import torch

    rope, _ = rope_params(hp)
    long, short = rope.get("long_factor"), rope.get("short_factor")
    if not long:
        return
    if not short or len(long) != len(short) or len(long) != _phi3_rope_dims(hp) // 2:
        raise ExportError(f"config field rope_parameters: long_factor and short_factor must each hold "
                          f"{_phi3_rope_dims(hp) // 2} values")
    yield gguf.MODEL_TENSOR.ROPE_FACTORS_LONG, torch.tensor(long, dtype=torch.float32)
    yield gguf.MODEL_TENSOR.ROPE_FACTORS_SHORT, torch.tensor(short, dtype=torch.float32)


# --- gpt_oss: GptOssModel ---------------------------------------------------------------------------------------

def _gpt_oss_hparams(w: gguf.GGUFWriter, hp: Hparams) -> None:
    w.add_sliding_window(hp["sliding_window"])
    w.add_expert_feed_forward_length(hp["intermediate_size"])


def _gpt_oss_split(name: str, t: Tensor) -> Iterator[tuple[str, Tensor]]:
    """GptOssModel.modify_tensors (its unquantized path): transformers keeps the experts as fused (E, in, out)
    parameters with gate and up interleaved column by column; llama.cpp wants (E, out, in) gate, up and down
    stacks, and the sinks as a weight."""
    if name.endswith(".sinks"):
        yield name + ".weight", t
    elif name.endswith("mlp.experts.gate_up_proj"):
        t = t.transpose(-1, -2)
        yield name.replace("gate_up_proj", "gate_proj.weight"), t[:, ::2, :]
        yield name.replace("gate_up_proj", "up_proj.weight"), t[:, 1::2, :]
    elif name.endswith("mlp.experts.gate_up_proj_bias"):
        yield name.replace("gate_up_proj_bias", "gate_proj.bias"), t[..., ::2]
        yield name.replace("gate_up_proj_bias", "up_proj.bias"), t[..., 1::2]
    elif name.endswith("mlp.experts.down_proj"):
        yield name.replace("down_proj", "down_proj.weight"), t.transpose(-1, -2)
    elif name.endswith("mlp.experts.down_proj_bias"):
        yield name.replace("down_proj_bias", "down_proj.bias"), t
    else:
        yield name, t


_LLAMA = Arch(gguf.MODEL_ARCH.LLAMA, permute_qk=True, hparams=_llama_hparams, extra=llama_rope_freqs)
# Gemma3Model: the norm shift applies to every "*norm.weight", the q/k norms included
_GEMMA3 = Arch(gguf.MODEL_ARCH.GEMMA3, norm_shift=1.0, space_prefix=False, hparams=_gemma3_hparams)

ARCHES: dict[str, Arch] = {
    "llama": _LLAMA,
    # MistralForCausalLM is registered on LlamaModel: llama.cpp runs Mistral as llama
    "mistral": _LLAMA,
    "qwen2": Arch(gguf.MODEL_ARCH.QWEN2),
    "qwen3": Arch(gguf.MODEL_ARCH.QWEN3),
    # Gemma2Model.filter_tensors skips lm_head: llama.cpp's gemma2 always reads the output from token_embd
    "gemma2": Arch(gguf.MODEL_ARCH.GEMMA2, norm_shift=1.0, drop_output=True, space_prefix=False,
                   hparams=_gemma2_hparams),
    "gemma3": _GEMMA3,
    "gemma3_text": _GEMMA3,
    "phi3": Arch(gguf.MODEL_ARCH.PHI3, hparams=_phi3_hparams, extra=_phi3_rope_factors),
    "gpt_oss": Arch(gguf.MODEL_ARCH.GPT_OSS, mxfp4_experts=True, hparams=_gpt_oss_hparams, split=_gpt_oss_split),
}


def arch_for(hp: Hparams, where: str | Path) -> Arch:
    """The Arch for a model config, or a one-line error naming the config and listing what booktune exports."""
    model_type = hp.get("model_type")
    if model_type not in ARCHES:
        supported = ", ".join(sorted(ARCHES))
        raise ExportError(f"{where}: architecture {model_type!r} cannot be exported to GGUF by booktune "
                          f"(supported: {supported})")
    return ARCHES[model_type]
