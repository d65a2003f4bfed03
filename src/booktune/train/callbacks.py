"""Trainer callbacks: a rich progress bar, and checkpoints that describe themselves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from booktune.console import progress_bar

MARKER = "booktune.json"


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
                data = {**self.metadata, "global_step": state.global_step}
                tmp = folder / f".{MARKER}.tmp"
                tmp.write_text(json.dumps(data, indent=2, default=str))
                tmp.replace(folder / MARKER)


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint-N folder that carries the completion marker."""
    if not folder.is_dir():
        return None
    found = []
    for path in folder.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if m and path.is_dir() and (path / MARKER).is_file():
            found.append((int(m.group(1)), path))
    return max(found)[1] if found else None


class QuantStatesFollowShards(TrainerCallback):
    """FSDP with a 4-bit base loaded on the CPU: once the shards are on the GPU, put the quantization states there
    too (distributed.move_quant_states says why)."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        from booktune.train.distributed import move_quant_states

        if model is not None and args.device.type == "cuda":
            move_quant_states(model, args.device)
