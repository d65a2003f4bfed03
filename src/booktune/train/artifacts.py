"""What a RUN folder holds, and how to load it back without the original command.

RUN/
  adapter/            PEFT adapter + tokenizer + chat_template.jinja + booktune.json
  booktune.json       booktune version, base model, data folder, full config, token report, metrics
  checkpoints/        resumable Trainer checkpoints (each with its own booktune.json once complete)
  logs/               TensorBoard event files
  loss.png            training loss plot
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from booktune import __version__
from booktune.fsutil import atomic_dir, atomic_write_json

RUN_FILE = "booktune.json"


class RunError(ValueError):
    """A RUN folder that is missing or incomplete; the message names it."""


def run_metadata(*, base_model: str, data_dir: str, config: dict[str, Any] | None) -> dict[str, Any]:
    import torch
    import transformers

    return {
        "booktune_version": __version__,
        "base_model": base_model,
        "data_dir": str(data_dir),
        "config": config or {},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__},
    }


def save_adapter(model: Any, tokenizer: Any, run_dir: Path, metadata: dict[str, Any],
                 state_dict: dict[str, Any] | None = None) -> Path:
    """Adapter, tokenizer (with its chat template) and metadata, swapped into RUN/adapter in one rename.
    `state_dict`: the model's full weights when they live in FSDP shards (gathered on rank 0)."""
    target = run_dir / "adapter"
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        (tmp / RUN_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    return target


def write_run_file(run_dir: Path, metadata: dict[str, Any]) -> None:
    atomic_write_json(run_dir / RUN_FILE, metadata)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The run's metadata; raises RunError naming the folder when it has no finished adapter."""
    run_dir = Path(run_dir)
    meta = run_dir / RUN_FILE
    if not (run_dir / "adapter" / "adapter_config.json").is_file() or not meta.is_file():
        raise RunError(f"{run_dir}: no finished run here (needs adapter/ and {RUN_FILE}); run `booktune train` first")
    return json.loads(meta.read_text(encoding="utf-8"))


def update_run_file(run_dir: str | Path, **fields: Any) -> dict[str, Any]:
    run_dir = Path(run_dir)
    data = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    data.update(fields)
    atomic_write_json(run_dir / RUN_FILE, data)
    return data
