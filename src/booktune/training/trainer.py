"""Which SFTTrainer to use.

TRL 1.15's SFTTrainer computes the loss through a fused LM head written in Triton, which CPU builds of PyTorch do not
ship: the import fails quietly and the first training step raises `'NoneType' object has no attribute 'apply'`.
Where those kernels are missing we keep everything else of SFTTrainer and compute the loss as transformers' Trainer
does (the model's own cross-entropy over the labels, normalised by the tokens in the batch).
"""

from __future__ import annotations

from typing import Any


def fused_head_available() -> bool:
    from trl.trainer import utils as trl_utils

    return getattr(trl_utils, "_ChunkedLogProbFunction", object()) is not None


def sft_trainer_class() -> type:
    from transformers import Trainer
    from trl import SFTTrainer

    if fused_head_available():
        return SFTTrainer

    class PlainLossSFTTrainer(SFTTrainer):
        """SFTTrainer with transformers' own loss, for machines without Triton (CPU-only PyTorch)."""

        def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return PlainLossSFTTrainer
