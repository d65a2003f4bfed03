"""`--eval-device`: held-out loss and samples on another card than the one that trains.

On a machine with a big and a small card (an RTX 4090 and a 2070 SUPER), the big one trains and the small one
scores the base model, then the finished adapter on top of that same base: the training card never holds a second
copy. The base is loaded once on the eval card; after training the saved adapter is attached to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def eval_placement(eval_device: str | None, train_device: str, train_4bit: bool) -> tuple[str, bool]:
    """(device, load_in_4bit) for the evaluation copy: the training ones unless --eval-device names another.
    4-bit needs CUDA, so a CPU eval device gets a full-precision base."""
    if not eval_device or eval_device == train_device:
        return train_device, train_4bit
    return eval_device, train_4bit and eval_device.startswith("cuda")


def load_eval_base(train: Any, eval_device: str, load_in_4bit: bool) -> Any:
    """The base model for evaluation on `eval_device` (TrainConfig `train` names the model and dtype)."""
    from booktune.devices import pick_device, pick_dtype
    from booktune.model import load_model

    device = pick_device(eval_device)
    return load_model(train.model, device=device, dtype=pick_dtype(train.dtype, device), load_in_4bit=load_in_4bit,
                      trust_remote_code=train.trust_remote_code)


def with_adapter(base: Any, adapter_dir: str | Path) -> Any:
    """`base` with the trained adapter from RUN/adapter attached (in place), ready for loss and sampling."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.eval()
    return model
