"""The RUN folder: what it holds, how it is written, and how it is read back without the original command.

RUN/
  adapter/            PEFT adapter + tokenizer + chat_template.jinja + booktune.json
  booktune.json       booktune version, base model, data folder, full config, token report, metrics; removed when
                      a run starts and written last, so its presence marks a finished run
  checkpoints/        resumable Trainer checkpoints (each with its own booktune.json once complete)
  logs/               TensorBoard event files
  loss.png            training loss plot
  .booktune-manifest.json   what booktune wrote here (outputs.py): only those entries are ever replaced
"""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from booktune.config import TrainConfig, format_validation_error
from booktune.devices import is_main_process
from booktune.errors import BooktuneError
from booktune.fsutil import atomic_write_json, read_json
from booktune.model import portable_name
from booktune.outputs import Layout, OutputDir
from booktune.version import __version__

RUN_FILE = "booktune.json"
RUN_LAYOUT = Layout("run", ("adapter", RUN_FILE, "checkpoints", "logs", "loss.png", "report.html", "report.md",
                            "launch-config.json"), RUN_FILE)
# Settings a checkpoint's weights, or the steps left to it, depend on: the adapter's shape, the rate and its schedule,
# and which examples make a step.
RESUME_KEYS = ("model", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "learning_rate", "lr_scheduler",
               "packing", "group_passages")


class RunError(BooktuneError):
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


def open_run(run_dir: str | Path, *, resume: bool = False, overwrite: bool = False) -> OutputDir:
    """RUN, checked before anything is trained: it may hold only what booktune wrote (unless `overwrite`), and an
    earlier run's checkpoints are continued with `resume` or discarded with `overwrite`, never silently."""
    folder = OutputDir.open(run_dir, RUN_LAYOUT, overwrite=overwrite)
    checkpoints = folder.path / "checkpoints"
    if is_main_process() and not resume and checkpoints.is_dir() and any(checkpoints.iterdir()):
        if not overwrite:
            raise RunError(f"{folder.path}: holds the checkpoints of an earlier run; pass --resume to continue it, "
                           "or --overwrite to start over")
        folder.remove("checkpoints")
    return folder


def save_adapter(model: Any, tokenizer: Any, run: OutputDir, metadata: dict[str, Any],
                 state_dict: dict[str, Any] | None = None) -> Path:
    """Adapter, tokenizer (with its chat template) and metadata, swapped into RUN/adapter whole.
    `state_dict`: the model's full weights when they live in FSDP shards (gathered on rank 0)."""
    with run.folder("adapter") as tmp:
        model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        name_base(tmp, portable_name(metadata.get("base_model")))
        tokenizer.save_pretrained(tmp)
        (tmp / RUN_FILE).write_text(json.dumps(metadata, indent=2, default=str))
    return run.path / "adapter"


def name_base(adapter: Path, name: str | None) -> None:
    """Make a saved adapter name `name` as its base, in adapter_config.json and in its model card, instead of the
    folder the base was loaded from (None: leave it). Done after saving: named before, PEFT's save would look the
    name up on the Hub."""
    config_file = adapter / "adapter_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    loaded_from = config.get("base_model_name_or_path")
    if not name or not loaded_from or loaded_from == name:
        return
    config_file.write_text(json.dumps(config | {"base_model_name_or_path": name}, indent=2) + "\n", encoding="utf-8")
    card = adapter / "README.md"
    if card.is_file():
        card.write_text(card.read_text(encoding="utf-8").replace(loaded_from, name), encoding="utf-8")


def write_run_file(run: OutputDir, metadata: dict[str, Any]) -> None:
    run.write_json(RUN_FILE, metadata)


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The run's metadata; raises RunError naming the folder when it holds no finished run."""
    run_dir = Path(run_dir)
    meta = run_dir / RUN_FILE
    if not (run_dir / "adapter" / "adapter_config.json").is_file() or not meta.is_file():
        raise RunError(f"{run_dir}: no finished run here (needs adapter/ and {RUN_FILE}); run `booktune train` first")
    if not (run_dir / "adapter" / "adapter_model.safetensors").is_file():
        raise RunError(f"{run_dir / 'adapter'}: no adapter_model.safetensors (booktune loads safetensors only); "
                       "rerun `booktune train`")
    return read_json(meta, RunError)


def run_train_config(run_dir: str | Path, meta: dict[str, Any], command: str = "evaluate") -> TrainConfig:
    """The training settings a finished run was made with (RUN/booktune.json). A base model whose own code would
    run is refused (`command` names the command that refuses it): a run folder never decides that."""
    saved = meta.get("config", {}).get("train", {})
    if saved.get("trust_remote_code"):
        raise RunError(f"{run_dir}: its base model {meta.get('base_model')} runs its own Python code, which "
                       f"`booktune {command}` never runs; measure it with `booktune run --trust-remote-code`")
    try:
        return TrainConfig.model_validate(saved)
    except ValidationError as e:
        raise RunError(f"{Path(run_dir) / RUN_FILE}: {format_validation_error(e)}") from None


def update_run_file(run_dir: str | Path, **fields: Any) -> dict[str, Any]:
    path = Path(run_dir) / RUN_FILE
    data = read_json(path, RunError) | fields
    atomic_write_json(path, data)
    return data


def check_resumable(checkpoint: Path, config: dict[str, Any]) -> None:
    """A checkpoint resumes only under the settings its weights were made with: one line naming any that differ."""
    saved = read_json(checkpoint / RUN_FILE, RunError).get("config", {}).get("train", {})
    now = config.get("train", {})
    changed = [k for k in RESUME_KEYS if k in saved and saved[k] != now.get(k)]
    if changed:
        what = ", ".join(f"train.{k} {saved[k]!r} -> {now.get(k)!r}" for k in changed)
        raise RunError(f"{checkpoint}: made with other settings ({what}); resume with the same ones, or pass "
                       "--overwrite to start over")


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint-N folder that carries the completion marker (written last, by DescribeCheckpoint)."""
    if not folder.is_dir():
        return None
    found = []
    for path in folder.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", path.name)
        if m and path.is_dir() and (path / RUN_FILE).is_file():
            found.append((int(m.group(1)), path))
    return max(found)[1] if found else None
