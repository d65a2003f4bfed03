"""Which library loads the base model and wraps it in LoRA: Unsloth, or transformers + PEFT + bitsandbytes.

`auto` picks Unsloth when a CUDA GPU is visible and `unsloth` imports, and `hf` otherwise. Unsloth patches
transformers, TRL and PEFT when it is imported, so it must be imported before them: `resolve_backend` does that
and is the first thing the training path calls. It is never imported elsewhere (it raises without a GPU).

Both backends hand the recipe a model and an optional PEFT config; TRL's SFTTrainer runs the same loop on
booktune's own labels either way, and the artifacts are the same PEFT adapter.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Any

BACKENDS = ("auto", "unsloth", "hf")
# The names Unsloth's notebooks pass; filtered to the projections a model has. Unsloth adds GPT-OSS's fused
# expert parameters itself when it sees the MLP names (unsloth/models/_utils.py get_moe_target_modules).
UNSLOTH_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class BackendError(ValueError):
    """A backend that cannot run here; the message names the field and what to do."""


@dataclass(frozen=True)
class LoraSettings:
    r: int
    alpha: int
    dropout: float
    target_modules: list[str] | str  # 'all-linear' or module names
    seed: int = 42


def unsloth_installed() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def use_liger(liger: str, backend: str, device: str) -> bool:
    """Whether the hf backend runs Liger's kernels (TrainingArguments.use_liger_kernel). Measured on the 8B shape
    (docs/benchmarks.md): +22 % tokens/s and 0.4 GiB less at the same losses. Unsloth brings its own kernels."""
    if liger == "off":
        return False
    ready = backend == "hf" and device.startswith("cuda") and importlib.util.find_spec("liger_kernel") is not None
    if liger == "on" and not ready:
        why = ("it applies to the hf backend only" if backend != "hf" else
               "it needs a CUDA GPU" if not device.startswith("cuda") else
               "liger-kernel is not installed: run `pip install 'booktune[liger]'`")
        raise BackendError(f"config field train.liger: 'on' cannot run here: {why}")
    return ready


def cuda_visible() -> bool:
    # torch is imported here on purpose: importing it does not stop Unsloth from patching transformers later.
    import torch

    return torch.cuda.is_available()


def resolve_backend(name: str, device: str | None = None) -> str:
    """'unsloth' or 'hf' for `name` in BACKENDS; imports Unsloth (first) when it is the answer."""
    if name not in BACKENDS:
        raise BackendError(f"config field train.backend: {name!r} is not one of {', '.join(BACKENDS)}")
    on_cuda = cuda_visible() and not (device or "cuda").startswith("cpu")
    if name == "hf" or (name == "auto" and not (on_cuda and unsloth_installed())):
        return "hf"
    if not on_cuda:
        raise BackendError("config field train.backend: 'unsloth' needs a CUDA GPU; use --backend hf")
    if not unsloth_installed():
        raise BackendError("config field train.backend: 'unsloth' is not installed; "
                           "run `pip install 'booktune[unsloth]'` or use --backend hf")
    import_unsloth()
    return "unsloth"


def import_unsloth() -> Any:
    """Import Unsloth quietly and offline-friendly; warn if transformers got in first (fewer patches apply)."""
    if "unsloth" in sys.modules:  # imported already (by an earlier call): what came first was judged then
        return sys.modules["unsloth"]
    late = [m for m in ("transformers", "trl", "peft") if m in sys.modules]
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")  # no network call on load
    import unsloth  # noqa: F401  (patches on import)

    if late and "unsloth" not in _warned:
        _warned.add("unsloth")
        from booktune.console import console

        console.print(f"[yellow]note: {', '.join(late)} imported before Unsloth; some of its speed-ups may not apply")
    return unsloth


_warned: set[str] = set()


def unsloth_checkpointing(gradient_checkpointing: bool, offload: bool = True) -> str | bool:
    """Unsloth's use_gradient_checkpointing: "unsloth" offloads each layer's input to CPU memory, True keeps it on
    the GPU (8B shape on H200s: 1.6 GiB more, 4 % faster on one GPU, 8 % under 2-GPU DDP: docs/distributed.md)."""
    if not gradient_checkpointing:
        return False
    return "unsloth" if offload else True


def unsloth_lora(model: Any, lora: LoraSettings, *, gradient_checkpointing: bool, offload: bool = True) -> Any:
    """Unsloth's PeftModel around `model`, with booktune's LoRA settings and checkpointing."""
    from unsloth import FastLanguageModel

    return FastLanguageModel.get_peft_model(
        model, r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, bias="none",
        target_modules=unsloth_targets(model, lora.target_modules), random_state=lora.seed,
        use_gradient_checkpointing=unsloth_checkpointing(gradient_checkpointing, offload),
    )


def load_unsloth(path: str, *, max_seq_length: int, dtype: Any, load_in_4bit: bool, lora: LoraSettings,
                 gradient_checkpointing: bool, trust_remote_code: bool = False,
                 offload: bool = True) -> tuple[Any, Any]:
    """(PeftModel, tokenizer) as Unsloth's notebooks build them, with booktune's LoRA settings."""
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=path, max_seq_length=max_seq_length, dtype=dtype, load_in_4bit=load_in_4bit,
        trust_remote_code=trust_remote_code, local_files_only=os.path.isdir(path),
    )
    return unsloth_lora(model, lora, gradient_checkpointing=gradient_checkpointing, offload=offload), tokenizer


def unsloth_targets(model: Any, target_modules: list[str] | str) -> list[str]:
    """Explicit module names for Unsloth: 'all-linear' becomes the usual projections the model has."""
    names = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    if names != ["all-linear"]:
        return names
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    found = [n for n in UNSLOTH_TARGETS if n in present]
    # GPT-OSS has no gate/up/down Linears; Unsloth maps these names onto its expert parameters.
    if getattr(model.config, "model_type", "") == "gpt_oss":
        found = list(UNSLOTH_TARGETS)
    return found or list(UNSLOTH_TARGETS)


def hf_lora_config(lora: LoraSettings) -> Any:
    """The PEFT LoraConfig that TRL applies to a transformers model."""
    from peft import LoraConfig

    names = [lora.target_modules] if isinstance(lora.target_modules, str) else list(lora.target_modules)
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, task_type="CAUSAL_LM",
                      target_modules="all-linear" if names == ["all-linear"] else names)


def load_for_training(backend: str, spec: str, prec: Any, lora: LoraSettings, *, max_seq_length: int,
                      packing: bool, trust_remote_code: bool = False, base_model: Any = None) -> tuple[Any, Any]:
    """(model, peft_config): Unsloth returns its own PeftModel (config None); hf returns the base and a LoraConfig
    for TRL. On CUDA the hf base attends through booktune's varlen kernel so packed examples stay isolated."""
    from booktune.model import load_model, resolve_model

    if backend == "unsloth":
        if base_model is not None and not hasattr(base_model, "max_seq_length"):
            raise BackendError("config field train.backend: a base model loaded without Unsloth was passed; "
                               "load it with booktune.train.backends.load_unsloth or use --backend hf")
        if base_model is None:
            return load_unsloth(resolve_model(spec).path, max_seq_length=max_seq_length, dtype=prec.dtype,
                                load_in_4bit=prec.load_in_4bit, lora=lora, trust_remote_code=trust_remote_code,
                                gradient_checkpointing=prec.gradient_checkpointing,
                                offload=prec.offload_activations)[0], None
        return unsloth_lora(base_model, lora, gradient_checkpointing=prec.gradient_checkpointing,
                            offload=prec.offload_activations), None
    if prec.load_in_4bit:
        from booktune.plan import check_hf_quantization

        check_hf_quantization(spec, trust_remote_code=trust_remote_code)
    if base_model is None:
        base_model = load_model(spec, device=prec.device, dtype=prec.dtype, load_in_4bit=prec.load_in_4bit,
                                trust_remote_code=trust_remote_code)
    if packing and prec.on_gpu:
        from booktune.train.varlen import use_varlen

        use_varlen(base_model)
    return base_model, hf_lora_config(lora)


def load_base(backend_name: str, spec: str, prec: Any, *, max_seq_length: int, trust_remote_code: bool = False) -> Any:
    """The base model alone (for a held-out loss before training), loaded by the backend that will train it, so
    that `load_for_training` can wrap it in LoRA afterwards."""
    from booktune.model import load_model, resolve_model

    if resolve_backend(backend_name, prec.device) != "unsloth":
        return load_model(spec, device=prec.device, dtype=prec.dtype, load_in_4bit=prec.load_in_4bit,
                          trust_remote_code=trust_remote_code)
    from unsloth import FastLanguageModel

    path = resolve_model(spec).path
    return FastLanguageModel.from_pretrained(model_name=path, max_seq_length=max_seq_length, dtype=prec.dtype,
                                             load_in_4bit=prec.load_in_4bit, trust_remote_code=trust_remote_code,
                                             local_files_only=os.path.isdir(path))[0]
