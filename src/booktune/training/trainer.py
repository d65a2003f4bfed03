"""Which SFTTrainer to use, and what booktune's trainer does around TRL's.

TRL 1.15's SFTTrainer computes the loss through a fused LM head written in Triton, which CPU builds of PyTorch do not
ship: the import fails quietly and the first training step would raise `'NoneType' object has no attribute 'apply'`.
There booktune gives TRL the same function in plain PyTorch (training.headloss), so the loss, its entropy and token
accuracy are TRL's own on every device. A TRL without a fused head to fill computes the loss as transformers'
Trainer does (the model's own cross-entropy over the labels, normalised by the tokens in the batch).

Under bf16 or fp16 autocast PEFT casts every LoRA layer's input to the adapter's float32 before autocast casts it
back to 16 bits for the matmul: two copies of the activations per adapted layer, forward and backward, for a
round trip that changes no bit. `lora_inputs_as_is` skips PEFT's cast for the length of `train()`
(PEFT's `disable_input_dtype_casting`).
"""

from __future__ import annotations

from typing import Any


def fused_head_available() -> bool:
    """Whether TRL's SFTTrainer can compute its own loss here: with its Triton kernel, or with booktune's."""
    from trl.trainer import utils as trl_utils

    from booktune.training.headloss import install

    install()
    return getattr(trl_utils, "_ChunkedLogProbFunction", object()) is not None


def sft_trainer_class(*, lora_inputs_as_is: bool = False) -> type:
    """The SFTTrainer class to build. `lora_inputs_as_is`: training runs under autocast (bf16 or fp16 mixed
    precision in one process or under DDP), so LoRA layers take their input in its own dtype."""
    from peft.helpers import disable_input_dtype_casting
    from transformers import Trainer
    from trl import SFTTrainer

    plain_loss = not fused_head_available()

    class BooktuneSFTTrainer(SFTTrainer):
        def train(self, *args: Any, **kwargs: Any) -> Any:
            # restored on leaving: generation after training (no autocast) finds the layers as PEFT made them
            with disable_input_dtype_casting(self.model, active=lora_inputs_as_is):
                return super().train(*args, **kwargs)

        def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if plain_loss:  # a TRL whose fused head cannot run here: transformers' own loss
                return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return BooktuneSFTTrainer
