"""Trainer callbacks: a rich progress bar, and checkpoints that describe themselves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from booktune.console import progress_bar
from booktune.errors import BooktuneError
from booktune.fsutil import atomic_write_json
from booktune.runfolder import RUN_FILE


class RichProgress(TrainerCallback):
    """One bar over optimizer steps, with the latest loss and learning rate beside it."""

    def __init__(self) -> None:
        self.progress = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.progress = progress_bar()
            self.progress.start()
            self.task = self.progress.add_task("training", total=state.max_steps, completed=state.global_step, info="")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs:
            return
        parts = [f"{k} {logs[k]:.4g}" for k in ("loss", "eval_loss", "learning_rate") if k in logs]
        if parts:  # a line per log, kept in the scrollback (and in non-terminal logs), and the latest on the bar
            self.progress.console.print(f"step {state.global_step}/{state.max_steps}  " + "  ".join(parts))
            self.progress.update(self.task, info="  ".join(parts))

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class DescribeCheckpoint(TrainerCallback):
    """Write booktune.json (version, config, base model) into each checkpoint once it is fully saved.

    The Trainer writes checkpoint folders in place; the marker, written last, is how `--resume` tells a complete
    checkpoint from one cut off by a kill.
    """

    def __init__(self, metadata: dict[str, Any]) -> None:
        self.metadata = metadata

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                atomic_write_json(folder / RUN_FILE, {**self.metadata, "global_step": state.global_step})


class NoClosingEval(TrainerCallback):
    """Skip the held-out evaluation transformers adds at the last step when that step is off the eval_steps grid.

    For callers that score the finished adapter themselves (`booktune run`): the same rows, a second time, at the
    trainer's per-device batch size.
    """

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps and state.eval_steps and state.global_step % state.eval_steps:
            control.should_evaluate = False
        return control


class NonFiniteError(BooktuneError):
    """Training diverged (a NaN or infinite loss, gradient or weight); the message names the step."""


class StopOnNonFinite(TrainerCallback):
    """Stop at the first logged non-finite loss or gradient norm, and before any checkpoint is written from
    non-finite weights: a diverged run must fail in one line naming the step, never be saved as finished."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                raise NonFiniteError(diverged(state.global_step, f"the {key.replace('_', ' ')} is {value}",
                                              args.learning_rate, args.output_dir))

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if control.should_save and model is not None:  # the checkpoint is written right after this
            check_finite_weights(model, state.global_step, args.learning_rate, args.output_dir)


def diverged(step: int, what: str, learning_rate: float | None = None, checkpoints: str | None = None) -> str:
    from booktune.runfolder import last_complete_checkpoint

    last = last_complete_checkpoint(Path(checkpoints)) if checkpoints else None
    kept = f"; the last good checkpoint is {last}" if last else ""
    lr = f" (now {learning_rate:g})" if learning_rate else ""
    return f"step {step}: {what}, so training stopped; lower train.learning_rate{lr}{kept}"


def check_finite_weights(model: Any, step: int, learning_rate: float | None = None,
                         checkpoints: str | None = None) -> None:
    """Raise NonFiniteError when a trained (LoRA) weight holds a NaN or an infinity."""
    import torch

    bad = next((n for n, p in model.named_parameters() if p.requires_grad and not torch.isfinite(p).all()), None)
    if bad is not None:
        raise NonFiniteError(diverged(step, f"the trained weight {bad} is not finite", learning_rate, checkpoints))


class QuantStatesFollowShards(TrainerCallback):
    """FSDP with a 4-bit base loaded on the CPU: once the shards are on the GPU, put the quantization states there
    too (move_quant_states says why)."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None and args.device.type == "cuda":
            move_quant_states(model, args.device)


def move_quant_states(model: Any, device: Any) -> int:
    """Move bitsandbytes' 4-bit quantization states (absmax, codebook) to `device`; how many moved.

    A 4-bit base loaded on the CPU for FSDP is quantized there. fully_shard moves the weight shards to the GPU; each
    Linear4bit also keeps its QuantState as a plain module attribute, which bitsandbytes reads back after every
    all-gather (nn/modules.py fix_4bit_weight_quant_state_from_module) and which follows the weight only when it moves
    through Params4bit.to. A guard: whatever is still elsewhere is moved."""
    import torch

    target, moved = torch.device(device), 0
    for module in model.modules():
        state = getattr(module, "quant_state", None)
        if state is not None and hasattr(state, "absmax") and state.absmax.device != target:
            state.to(target)
            moved += 1
    return moved
