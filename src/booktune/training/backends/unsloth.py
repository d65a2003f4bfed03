"""The unsloth backend: Unsloth's own loader, LoRA wrapper, kernels and activation offload.

Unsloth patches transformers, TRL and PEFT when it is imported, so it must be imported before them: `activate`
does that and is the first thing the training path calls. It is never imported elsewhere (it raises without a GPU).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from booktune.training.backends.base import (
    MASK_WITHOUT_POSITIONS,
    Backend,
    BackendError,
    LoraSettings,
    text_model_type,
)
from booktune.training.packing import Batching

# The names Unsloth's notebooks pass; filtered to the projections a model has. Unsloth adds GPT-OSS's fused
# expert parameters itself when it sees the MLP names (unsloth/models/_utils.py get_moe_target_modules).
UNSLOTH_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# unsloth/trainer.py PADDING_FREE_BLOCKLIST: Unsloth keeps no packed-sequence isolation for these. booktune adds it
# to GPT-OSS's flex attention itself (isolate_flex_examples); Gemma 2 is padded.
UNISOLATED = ("gemma2",)


class UnslothBackend(Backend):
    name = "unsloth"
    quantizes_experts = True  # Unsloth quantizes MoE experts on load
    offloads_activations = True
    offloads_embeddings = True  # FastLanguageModel's offload_embedding
    # Unsloth's FSDP path is its own (UNSLOTH_FSDP2=1, its own fully_shard wrap), not the accelerate plugin booktune
    # configures: mixing the two would run half-configured. Under DDP it pins each rank to its LOCAL_RANK card and
    # sets DDP's unused-parameter search for LoRA (unsloth/models/loader_utils.py prepare_device_map).
    runs_fsdp = False
    peft_lora_layers = False  # Unsloth's fused LoRA kernels take their own dtypes

    def installed(self) -> bool:
        return importlib.util.find_spec("unsloth") is not None

    def unavailable(self, device: str) -> str | None:
        if not device.startswith("cuda") or not _cuda_visible():
            return "'unsloth' needs a CUDA GPU; use --backend hf"
        if not self.installed():
            return ("'unsloth' is not installed; in booktune's folder run `pip install '.[unsloth]'`, or use "
                    "--backend hf")
        return None

    def activate(self) -> None:
        import_unsloth()
        lend_varlen_kernel()

    def load_base(self, spec: str, prec: Any, *, max_seq_length: int, trust_remote_code: bool) -> Any:
        from unsloth import FastLanguageModel

        from booktune.model import resolve_model

        path = resolve_model(spec).path
        return FastLanguageModel.from_pretrained(
            model_name=path, max_seq_length=max_seq_length, dtype=prec.dtype, load_in_4bit=prec.load_in_4bit,
            trust_remote_code=trust_remote_code, local_files_only=os.path.isdir(path),
            **({"offload_embedding": True} if prec.offload_embeddings else {}))[0]

    def add_lora(self, model: Any, lora: LoraSettings, prec: Any, *, packing: bool) -> tuple[Any, Any]:
        from unsloth import FastLanguageModel

        if not hasattr(model, "max_seq_length"):
            raise BackendError("config field train.backend: a base model loaded without Unsloth was passed; load it "
                               "with this backend's load_base, or use --backend hf")
        peft_model = FastLanguageModel.get_peft_model(
            model, r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, bias="none",
            target_modules=unsloth_targets(model, lora.target_modules), random_state=lora.seed,
            use_gradient_checkpointing=checkpointing_mode(prec.gradient_checkpointing, prec.offload_activations),
        )
        return peft_model, None

    def batching(self, model: Any, packing: bool) -> Batching:
        model_type = text_model_type(model)
        if not packing:
            return Batching("bucketed", False, "packing off")
        if model_type in UNISOLATED:
            return Batching("bucketed", False, f"Unsloth cannot isolate packed {model_type} examples")
        if model_type in MASK_WITHOUT_POSITIONS:
            return Batching("packed", True, "Unsloth's flex attention, each example masked to itself by booktune",
                            fixed_width=True, masks=True)
        return Batching("packed", True, "Unsloth packed attention")

    def isolate(self, model: Any, batching: Batching) -> None:
        if batching.masks:
            isolate_flex_examples(model)


def _cuda_visible() -> bool:
    # torch is imported here on purpose: importing it does not stop Unsloth from patching transformers later.
    import torch

    return torch.cuda.is_available()


def import_unsloth() -> Any:
    """Import Unsloth quietly and offline-friendly; warn if transformers got in first (fewer patches apply)."""
    if "unsloth" in sys.modules:  # imported already (by an earlier call): what came first was judged then
        return sys.modules["unsloth"]
    late = [m for m in ("transformers", "trl", "peft") if m in sys.modules]
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")  # no network call on load
    import unsloth  # noqa: F401  (patches on import)

    if late:
        from booktune.console import console

        console.print(f"[yellow]note: {', '.join(late)} imported before Unsloth; some of its speed-ups may not apply")
    return unsloth


def lend_varlen_kernel() -> bool:
    """Give Unsloth's packed attention one variable-length flash call per layer where torch is older than 2.12.

    Unsloth attends over a packed row with `torch.nn.attention.varlen.varlen_attn`, which it takes only from torch
    2.12 on (it needs `enable_gqa`); before that it calls SDPA once per run of equal-length examples, and cuDNN builds
    a new graph for every new length, so steps with unseen lengths stall. booktune's own varlen function runs the
    same flash kernel with the same signature on older torch (docs/benchmarks.md measures the difference). True when
    lent; Unsloth's own choice stands wherever it has one."""
    try:
        from unsloth.utils import attention_dispatch as dispatch
    except ImportError:  # another Unsloth layout: it keeps its own attention
        return False
    import torch

    has_own = getattr(dispatch, "_TORCH_VARLEN_ATTN", False) is not None
    if has_own or not torch.backends.cuda.is_flash_attention_available():
        return False
    from booktune.training.varlen import flash_varlen_attn

    dispatch._TORCH_VARLEN_ATTN = flash_varlen_attn
    dispatch._LEAN_VARLEN = False  # its lean path needs torch's varlen module; this function is lean already
    return True


def isolate_flex_examples(model: Any) -> None:
    """Keep packed GPT-OSS examples apart inside Unsloth.

    Unsloth trains GPT-OSS through its own flex attention with sinks (unsloth_zoo/temporary_patches/gpt_oss.py), which
    ignores the attention mask and builds a causal or sliding-window block mask over the whole row; that is why its
    trainer turns packing off for the model. booktune narrows each of those block masks to pairs of tokens of one
    example, read from the row's position ids (`narrow_flex_masks`), and hands evaluation, which Unsloth runs eagerly
    with the model's masks, per-example masks (documents.hand_masks). dev/check_gpt_oss_packing.py compares packed
    and one-by-one losses through this path on a GPU."""
    from unsloth_zoo.temporary_patches import gpt_oss

    from booktune.training.documents import decoder, hand_masks

    flex = getattr(gpt_oss, "_GPT_OSS_FLEX_SINK_ATTENTION_INSTALLED", False)
    hand_masks(model, only_eval=flex)  # without Unsloth's flex path, its attention is eager and takes the masks
    if flex:
        state = narrow_flex_masks()
        decoder(model).register_forward_pre_hook(
            lambda module, args, kwargs: state.update(kwargs.get("position_ids")), with_kwargs=True)


_FLEX_EXAMPLES: list = []  # the one ExampleIds the patched block-mask builder reads


def narrow_flex_masks() -> Any:
    """Patch Unsloth's block-mask builder for flex attention with sinks (once per process): while the current row
    is packed, each mask it builds keeps to one example. Returns the ExampleIds that a forward hook keeps current."""
    if _FLEX_EXAMPLES:
        return _FLEX_EXAMPLES[0]
    import torch
    from unsloth_zoo.flex_attention import attention_sink, utils

    from booktune.training.documents import ExampleIds

    state = ExampleIds()
    original = attention_sink.reused_compiled_create_block_mask
    built: dict[Any, Any] = {}

    @torch.compiler.disable  # host-side bookkeeping: never traced into a compiled layer
    def block_mask(mask_mod: Any, bsz: Any, head: Any, q_len: int, kv_len: int, device: Any = "cuda") -> Any:
        if not state.length or q_len != state.length or kv_len != state.length:
            return original(mask_mod, bsz, head, q_len, kv_len, device=device)
        key = (mask_mod, state.step)
        if key not in built:  # once a step for each mask kind; every layer and recomputation reuses it
            for old in [k for k in built if k[1] != state.step]:
                del built[old]
            built[key] = utils.compiled_create_block_mask(state.within_examples(mask_mod), bsz, head, q_len,
                                                          kv_len, device=device)
        return built[key]

    attention_sink.reused_compiled_create_block_mask = block_mask
    _FLEX_EXAMPLES.append(state)
    return state


def checkpointing_mode(gradient_checkpointing: bool, offload: bool = True) -> str | bool:
    """Unsloth's use_gradient_checkpointing: "unsloth" offloads each layer's input to CPU memory, True keeps it on
    the GPU (faster, more memory: docs/distributed.md)."""
    if not gradient_checkpointing:
        return False
    return "unsloth" if offload else True


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


UNSLOTH = UnslothBackend()
