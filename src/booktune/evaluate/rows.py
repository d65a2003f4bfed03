"""The held-out split as token rows, made exactly like the training rows (same masking, same truncation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def heldout_rows(data_dir: str | Path, tokenizer: Any, *, max_seq_length: int, truncation: str) -> list[dict]:
    """DATA's eval split as {'id', 'input_ids', 'labels'} rows; [] when nothing was held out."""
    from booktune.dataset import load_conversations, load_stats
    from booktune.dataset.tokenize import tokenize_records

    records = load_conversations(data_dir, "eval")
    if not records:
        return []
    prompts = load_stats(data_dir).get("prompts", {})
    rows, _ = tokenize_records(tokenizer, records, max_seq_length=max_seq_length, truncation=truncation,
                               system_prompt=prompts.get("system_prompt"), user_prompt=prompts.get("user_prompt"))
    return rows


def answer_bytes(tokenizer: Any, rows: list[dict[str, Any]]) -> int:
    """UTF-8 bytes of the answer text the labelled tokens spell (special tokens such as end-of-turn excluded)."""
    total = 0
    for r in rows:
        ids = [t for t, label in zip(r["input_ids"], r["labels"]) if label != -100]
        total += len(tokenizer.decode(ids, skip_special_tokens=True).encode("utf-8"))
    return total
