"""The learning rate when none is set: by the model's size, counted from its config alone (memory.load_shape), and
for small models by how often the data trains each passage.

- Under 1B parameters, measured on the embedded 135M default (docs/quality.md), when most passages are trained
  twice, as a continuation and as the answer to a question (`prepare --tasks continue,answer`, the default):
  1.4e-3 when both examples of a passage share a step (`group_passages`, the default), 5e-4 when they do not, where
  the second sight of the passage text overfits at higher rates, as in a second epoch. 1e-3 when each passage is
  trained once (`--tasks continue`).
- From 1B parameters: 2e-4, where LoRA's peers start for models of billions of parameters (Unsloth's LoRA
  hyperparameter guide, the Unsloth notebooks and Axolotl's LoRA examples). booktune has not measured these sizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from booktune.training.memory import Shape, load_shape

if TYPE_CHECKING:
    from booktune.config import TrainConfig

BILLION = 1e9
SMALL_RATE = 1.4e-3  # measured on the default's two tasks, a passage's examples in one step: docs/quality.md
SMALL_RATE_APART = 5e-4  # the same, each example in a step of its own
SMALL_RATE_ONCE = 1e-3  # measured on continuations alone: docs/quality.md
LARGE_RATE = 2e-4  # the peers' starting point for billions of parameters


def trains_twice(data_dir: str | Path | None) -> bool:
    """Whether DATA's training split holds an answer example for at least half of its passages. Without a DATA
    folder (`booktune plan`), prepare's default, which writes one for every passage, is assumed."""
    if data_dir is None:
        return True
    from booktune.dataset.io import load_stats

    stats = load_stats(data_dir)
    answers = stats.get("questions", {}).get("examples", {}).get("train", 0)
    return 2 * answers >= stats["totals"]["train"] - answers


def rate_for(params: int, twice: bool = True, together: bool = True) -> tuple[float, str]:
    """The default learning rate for a model of `params` parameters, and where it comes from; `twice`: most
    passages are trained both as a continuation and as an answer; `together`: in one step (`group_passages`)."""
    size = f"by model size: {params / BILLION:.2f}B parameters"
    if params >= BILLION:
        return LARGE_RATE, f"{size}, 1B or more; the peers' LoRA starting point"
    both = f"{size}, under 1B, passages trained as continuations and answers"
    if twice and together:
        return SMALL_RATE, f"{both} in one step; docs/quality.md"
    if twice:
        return SMALL_RATE_APART, f"{both} in separate steps; docs/quality.md"
    return SMALL_RATE_ONCE, f"{size}, under 1B, passages trained once; docs/quality.md"


def with_learning_rate(train: TrainConfig, shape: Shape | None = None,
                       data_dir: str | Path | None = None) -> tuple[TrainConfig, str]:
    """`train` with its learning rate resolved, and why it is that: 'set' when the config gave one, else the
    default for the model's size (`shape`, or read from the model's config), DATA's tasks (`trains_twice`) and
    whether a passage's examples share a step (packed, `group_passages`)."""
    if train.learning_rate is not None:
        return train, "set"
    shape = shape or load_shape(train.model, trust_remote_code=train.trust_remote_code)
    rate, why = rate_for(shape.params(), trains_twice(data_dir), train.packing and train.group_passages)
    return train.model_copy(update={"learning_rate": rate}), why


def rate_line(train: TrainConfig, why: str) -> str:
    """The plan's line: `learning rate: 0.0014 (by model size: 0.13B parameters, ...)`."""
    return f"learning rate: {train.learning_rate:g} ({why})"
