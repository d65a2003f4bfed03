"""DATA/questions.jsonl: the model writer's questions and scores, by passage hash and writer, so that a second
prepare of the same books with the same writer loads no model and generates nothing.

One line per passage and writer: {"passage": sha256 of the passage text, "writer": the writer's key, "question":
..., "score": 1-5 or null}. The writer's key names the model and the prompts' hash: another model, or other
prompts, write anew. The threshold (`min_score`) is applied after the cache, so changing it costs nothing either.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

CACHE_FILE = "questions.jsonl"


def passage_key(passage: str) -> str:
    return hashlib.sha256(passage.encode("utf-8")).hexdigest()


def read_cache(folder: Any, writer: str) -> dict[str, dict[str, Any]]:
    """Passage hash -> {'question', 'score'} for `writer`, from DATA (an OutputDir); {} when there is none, or a
    line that is not booktune's (the cache is only ever a saving, so a damaged line is skipped)."""
    path = folder.path / CACHE_FILE if folder is not None else None
    if path is None or CACHE_FILE not in folder.owned or not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            if row["writer"] == writer:
                out[row["passage"]] = {"question": row["question"], "score": row["score"]}
        except (ValueError, KeyError, TypeError):
            continue
    return out


def write_cache(folder: Any, writer: str, entries: dict[str, dict[str, Any]]) -> None:
    """`entries` as `writer`'s, beside the lines of other writers already there (atomic, recorded in the manifest)."""
    if folder is None:
        return
    path = folder.path / CACHE_FILE
    others = []
    if CACHE_FILE in folder.owned and path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["writer"] != writer:
                    others.append(line)
            except (ValueError, KeyError, TypeError):
                continue
    mine = [json.dumps({"passage": k, "writer": writer, **v}, ensure_ascii=False) for k, v in entries.items()]
    folder.write_text(CACHE_FILE, "".join(line + "\n" for line in [*others, *mine]))
