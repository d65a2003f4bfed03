"""Reading a prepared DATA folder back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from booktune.errors import BooktuneError
from booktune.fsutil import read_json


class DataError(BooktuneError):
    """A DATA folder that is missing, incomplete or malformed; the message names the file."""


def check_data_dir(data_dir: str | Path) -> Path:
    data_dir = Path(data_dir)
    if not (data_dir / "stats.json").is_file():
        raise DataError(f"{data_dir}: not a prepared data folder (no stats.json); run `booktune prepare` first")
    return data_dir


def load_conversations(data_dir: str | Path, split: str = "train") -> list[dict[str, Any]]:
    """The conversations of one split ('train' or 'eval'), as written by `booktune prepare`."""
    path = check_data_dir(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: missing; rerun `booktune prepare`")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            raise DataError(f"{path}:{n}: each line needs a 'messages' list")
        rows.append(row)
    return rows


def load_stats(data_dir: str | Path) -> dict[str, Any]:
    return read_json(check_data_dir(data_dir) / "stats.json", DataError)
