"""The base model's measurements, kept between evaluations: its held-out loss and its sampled replies.

What the base model scores and says on the held-out split depends on the model, the held-out examples, the
evaluation's settings and the software and machine that computed it, never on the training. So `booktune run` and
`booktune evaluate` store each base measurement under a hash of all of those and read it back when they meet the
same again: a second run on the same DATA (another learning rate, more steps) or the evaluation of several runs
trained from one DATA computes the base model's half of the evaluation once. A hit gives the figures a fresh
computation gives; anything that could change them is in the key:
- the model: its folder's files (name, size, modification time) or its Hub commit; its dtype, quantization,
  attention implementation and device;
- what was measured: the tokenized rows, or the prompts and every sampling setting (seed, batch size);
- the software: booktune's own source, torch, transformers, peft and bitsandbytes versions, torch's CPU kernels
  and thread count.

Entries are small JSON files in booktune's cache folder (`model.eval_cache_dir()`), written atomically;
one that cannot be read counts as missing. `--no-cache-base` (eval.cache_base false) computes everything again.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.markup import escape

from booktune.console import console


class BaseCache:
    """Base measurements by key, in `root` (None: the cache is off and every lookup misses)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.hits = 0  # lookups answered from the cache, for the "kept from an earlier evaluation" notes

    @classmethod
    def from_config(cls, enabled: bool) -> BaseCache:
        from booktune.model import eval_cache_dir

        return cls(eval_cache_dir() if enabled else None)

    def get_or_measure(self, model: Any, kind: str, inputs: Any, measure: Callable[[], Any]) -> tuple[Any, bool]:
        """(value, read back): the value stored for measuring `inputs` with `model` as `kind`, else `measure()`,
        stored for next time."""
        key = self.key(model, kind, inputs)
        value = self.load(key)
        if value is not None:
            return value, True
        value = measure()
        self.save(key, value)
        return value, False

    def key(self, model: Any, kind: str, inputs: Any) -> str | None:
        """The entry's name for measuring `inputs` (anything JSON can hold) with `model` as `kind`; None when the
        cache is off or the model's weights cannot be identified."""
        if self.root is None:
            return None
        model_id = model_fingerprint(model)
        if model_id is None:
            return None
        text = json.dumps({"kind": kind, "model": model_id, "software": software(), "inputs": inputs},
                          sort_keys=True, default=str)
        return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"

    def load(self, key: str | None) -> Any:
        """The stored value, or None (no key, no entry, or an entry that cannot be read)."""
        if key is None:  # also whenever the cache is off
            return None
        try:
            value = json.loads((self.root / f"{key}.json").read_text(encoding="utf-8"))["value"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        self.hits += 1
        return value

    def save(self, key: str | None, value: Any) -> None:
        """Store `value`; a cache folder that cannot be written costs a warning, never the evaluation."""
        if key is None:
            return
        from booktune.fsutil import atomic_write_json

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.root / f"{key}.json", {"key": key, "value": value})
        except OSError as e:
            console.print(f"[yellow]{escape(str(self.root))}: cannot keep the base model's results "
                          f"({escape(e.strerror or str(e))}); they are computed again next time")


OFF = BaseCache(None)  # a cache that is off: every lookup misses, nothing is stored


# Attention implementations that compute the evaluation's batches as another one does: booktune's packed-row
# attention hands every batch with an attention mask (all the evaluation's) and every cached decoding step to SDPA
# (training/varlen.py), so a model trained with it and a freshly loaded one share their entries.
EVALUATED_AS = {"booktune_varlen": "sdpa"}


def model_fingerprint(model: Any) -> dict[str, Any] | None:
    """What identifies the weights `model` computes with (the base under a PEFT wrapper); None if unknown."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    source = folder_files(config._name_or_path) or (
        {"hub": config._name_or_path, "commit": config._commit_hash} if getattr(config, "_commit_hash", None)
        else None)
    if source is None:
        return None
    weight = next(base.parameters())
    quant = getattr(config, "quantization_config", None)
    return {"source": source, "dtype": str(weight.dtype), "device": device_name(weight.device),
            "attention": EVALUATED_AS.get(config._attn_implementation, config._attn_implementation),
            "quantization": quant if isinstance(quant, dict) or quant is None else quant.to_dict()}


def folder_files(path: str) -> list[tuple[str, int, int]] | None:
    """(name, size, modification time) of each file in a local model folder; None if `path` is not one."""
    folder = Path(path) if path else None
    if folder is None or not folder.is_dir():
        return None
    return [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(folder.iterdir()) if f.is_file()]


def device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def software() -> dict[str, Any]:
    """Versions and kernels that can change a measurement (CPU kernels and thread counts change bf16 sums)."""
    import torch

    versions = {}
    for name in ("torch", "transformers", "peft", "bitsandbytes"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions | {"booktune": source_hash(), "cpu": torch.backends.cpu.get_cpu_capability(),
                       "threads": torch.get_num_threads()}


@functools.cache
def source_hash() -> str:
    """A hash of booktune's own Python source: any change to how it measures makes earlier entries miss."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def rows_digest(rows: list[dict[str, Any]]) -> str:
    """A hash of tokenized rows' tasks, input ids and labels, in order."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row.get("task"), row["input_ids"], row["labels"]]).encode())
    return digest.hexdigest()


def tokenizer_digest(tokenizer: Any) -> str:
    """A hash of what renders a prompt: the tokenizer's vocabulary size, special tokens and chat template."""
    parts = [len(tokenizer), tokenizer.name_or_path, tokenizer.chat_template, tokenizer.all_special_tokens]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
