"""What booktune needs of a training library, and the defaults most libraries share.

A backend loads the base model, puts LoRA on it, and says how packed rows keep their examples apart. It also
answers, without loading anything, what the memory plan and the scale-out choices must know about it. Every backend
hands the recipe a model and an optional PEFT config; TRL's SFTTrainer then runs the same loop on booktune's own
labels, and the artifacts are the same PEFT adapter.

To add a backend: subclass Backend in a file of this folder and add its instance to `REGISTRY` in `__init__.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from booktune.errors import BooktuneError
from booktune.training.packing import FLASH, MASKED, VARLEN, Batching

# Model types whose transformers modeling builds its attention masks without the position ids (transformers 5.17:
# gpt_oss), so a packed row's examples would attend to each other under the model's own masks. booktune hands them
# per-example masks for eager attention (training/documents.py); under sdpa or flex they are padded instead.
# tests/training/test_training_packing.py checks every packed model type it builds against its examples one by one.
MASK_WITHOUT_POSITIONS = ("gpt_oss",)


def text_model_type(model: Any) -> str:
    """The model type of `model`'s language part ('llama', 'gpt_oss', ...)."""
    return getattr(model.config.get_text_config(), "model_type", "")


class BackendError(BooktuneError):
    """A backend that cannot run here; the message names the field and what to do."""


@dataclass(frozen=True)
class LoraSettings:
    r: int
    alpha: int
    dropout: float
    target_modules: list[str] | str  # 'all-linear' or module names
    seed: int = 42

    @classmethod
    def from_config(cls, train: Any) -> LoraSettings:
        return cls(train.lora_r, train.lora_alpha, train.lora_dropout, train.target_modules, train.seed)


class Backend:
    """The interface, with the behaviour of a plain transformers + PEFT stack as its defaults."""

    name = ""
    quantizes_experts = False  # 4-bit MoE experts (transformers 5 fuses them into 3-D parameters, not nn.Linear)
    offloads_activations = False  # can keep checkpointed layer inputs in CPU memory (`offload_activations`)
    offloads_embeddings = False  # can keep the input embedding in CPU memory (`offload_embeddings`)
    runs_fsdp = True  # trains under the accelerate FSDP plugin that booktune configures
    peft_lora_layers = True  # LoRA runs through PEFT's own layers, whose input cast autocast makes redundant

    def installed(self) -> bool:
        """Whether the library imports here (no GPU needed to say so)."""
        return True

    def unavailable(self, device: str) -> str | None:
        """Why this backend cannot train on `device`, or None when it can."""
        return None

    def activate(self) -> None:
        """Run before transformers, TRL or PEFT are used (a library that patches them on import goes here)."""

    def kernels(self, liger: str, device: str) -> bool:
        """Whether Liger's fused kernels run (`train.liger`); only a backend that supports them says yes."""
        if liger == "on":
            raise BackendError(f"config field train.liger: 'on' applies to the hf backend, not {self.name}")
        return False

    def load_base(self, spec: str, prec: Any, *, max_seq_length: int, trust_remote_code: bool) -> Any:
        """The base model named by `spec` ('default', a folder or a Hub id), on prec.device in prec's precision."""
        raise NotImplementedError

    def add_lora(self, model: Any, lora: LoraSettings, prec: Any, *, packing: bool) -> tuple[Any, Any]:
        """(model, peft_config): the model to train, and the LoraConfig for TRL to apply (None if already applied)."""
        raise NotImplementedError

    def eager_scores(self, model_type: str) -> bool:
        """Whether attention materialises the S x S score matrix for this model type (the memory plan counts it)."""
        return False

    def batching(self, model: Any, packing: bool) -> Batching:
        """Packed rows where the model's attention keeps each example to itself; else length-bucketed padding."""
        if not packing:
            return Batching("bucketed", False, "packing off")
        attn = str(getattr(model.config, "_attn_implementation", "") or "").split("@")[0].split(":")[0]
        if attn == VARLEN and next(model.parameters()).device.type == "cpu":
            # No kernel to feed cu_seqlens: rows stay rows, as under a block-diagonal mask, and each example of a
            # row attends through SDPA on its own slice (training/varlen.py).
            return Batching("packed", False, f"{attn}, SDPA per example")
        if attn in FLASH or attn.startswith("kernels-community/"):
            return Batching("packed", True, f"{attn} varlen")
        model_type = text_model_type(model)
        if attn == "eager" and model_type in MASK_WITHOUT_POSITIONS:
            return Batching("packed", False, "eager attention under booktune's per-example masks", masks=True)
        if attn in MASKED and model_type in MASK_WITHOUT_POSITIONS:
            return Batching("bucketed", False, f"transformers builds {model_type}'s {attn} mask without packed-example "
                                               "boundaries")
        if attn in MASKED:
            return Batching("packed", False, f"{attn} block-diagonal mask")
        return Batching("bucketed", False, f"attention {attn!r} has no packed-sequence support")

    def isolate(self, model: Any, batching: Batching) -> None:
        """Hand the attention per-example masks built from the position ids where `batching` asks for them (the
        model's own masks would let packed examples mix: MASK_WITHOUT_POSITIONS; documents.py)."""
        if batching.masks:
            from booktune.training.documents import hand_masks

            hand_masks(model)
