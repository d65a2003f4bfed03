"""The hf backend: transformers + PEFT + bitsandbytes, with Liger's kernels where installed.

Packed rows attend through booktune's varlen attention (training/varlen.py): FlashAttention's kernel on CUDA,
SDPA on each example's slice on a CPU, so packed examples stay isolated without a mask. bitsandbytes quantizes
nn.Linear only, so fused MoE experts stay in bf16 here.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from booktune.training.backends.base import Backend, BackendError, LoraSettings


class HfBackend(Backend):
    name = "hf"

    def kernels(self, liger: str, device: str) -> bool:
        """Liger's fused RMSNorm, SwiGLU, RoPE and loss (TrainingArguments.use_liger_kernel): 'auto' uses them on a
        CUDA GPU when liger-kernel is installed (docs/benchmarks.md measures them)."""
        if liger == "off":
            return False
        ready = device.startswith("cuda") and importlib.util.find_spec("liger_kernel") is not None
        if liger == "on" and not ready:
            why = ("it needs a CUDA GPU" if not device.startswith("cuda") else
                   "liger-kernel is not installed: run `pip install liger-kernel`")
            raise BackendError(f"config field train.liger: 'on' cannot run here: {why}")
        return ready

    def load_base(self, spec: str, prec: Any, *, max_seq_length: int, trust_remote_code: bool) -> Any:
        from booktune.model import load_model
        from booktune.training.memory import check_hf_quantization

        if prec.load_in_4bit:
            check_hf_quantization(spec, self, device=prec.device, trust_remote_code=trust_remote_code)
        return load_model(spec, device=prec.device, dtype=prec.dtype, load_in_4bit=prec.load_in_4bit,
                          trust_remote_code=trust_remote_code)

    def add_lora(self, model: Any, lora: LoraSettings, prec: Any, *, packing: bool) -> tuple[Any, Any]:
        from peft import LoraConfig

        if packing:
            from booktune.training.varlen import use_varlen

            use_varlen(model)
        names = [lora.target_modules] if isinstance(lora.target_modules, str) else list(lora.target_modules)
        return model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, task_type="CAUSAL_LM",
                                 target_modules="all-linear" if names == ["all-linear"] else names)

    def eager_scores(self, model_type: str) -> bool:
        return model_type == "gpt_oss"  # transformers runs GPT-OSS's sink attention eagerly: S x S fp32 scores


HF = HfBackend()
