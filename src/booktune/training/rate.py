"""The learning rate when none is set: by the model's size, counted from its config alone (memory.load_shape).

- Under 1B parameters: 1e-3, measured on the embedded 135M default (docs/quality.md: 2e-4 -> 1e-3 is worth about
  3 points of held-out perplexity there).
- From 1B parameters: 2e-4, where LoRA's peers start for models of billions of parameters (Unsloth's LoRA
  hyperparameter guide, the Unsloth notebooks and Axolotl's LoRA examples). booktune has not measured these sizes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from booktune.training.memory import Shape, load_shape

if TYPE_CHECKING:
    from booktune.config import TrainConfig

BILLION = 1e9
SMALL_RATE = 1e-3  # measured: docs/quality.md
LARGE_RATE = 2e-4  # the peers' starting point for billions of parameters


def rate_for(params: int) -> tuple[float, str]:
    """The default learning rate for a model of `params` parameters, and where it comes from."""
    size = f"by model size: {params / BILLION:.2f}B parameters"
    if params < BILLION:
        return SMALL_RATE, f"{size}, under 1B; measured on the 135M default, docs/quality.md"
    return LARGE_RATE, f"{size}, 1B or more; the peers' LoRA starting point"


def with_learning_rate(train: TrainConfig, shape: Shape | None = None) -> tuple[TrainConfig, str]:
    """`train` with its learning rate resolved, and why it is that: 'set' when the config gave one, else the
    default for the model's size (`shape`, or read from the model's config)."""
    if train.learning_rate is not None:
        return train, "set"
    shape = shape or load_shape(train.model, trust_remote_code=train.trust_remote_code)
    rate, why = rate_for(shape.params())
    return train.model_copy(update={"learning_rate": rate}), why


def rate_line(train: TrainConfig, why: str) -> str:
    """The plan's line: `learning rate: 0.001 (by model size: 0.13B parameters, ...)`."""
    return f"learning rate: {train.learning_rate:g} ({why})"
