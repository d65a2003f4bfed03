"""A prepared DATA folder's splits as token rows: what training trains on and evaluation scores, made the same way
(the one labelling function, the same truncation policy, the prompts recorded in stats.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from booktune.config import PrepareConfig
from booktune.dataset.io import DataError, load_conversations, load_stats
from booktune.dataset.tokenize import TokenReport, tokenize_records

ANSWER_PROMPT = PrepareConfig.model_fields["answer_prompt"].default  # for DATA made before the answer task


def split_rows(data_dir: str | Path, split: str, tokenizer: Any, *, max_seq_length: int,
               truncation: str) -> tuple[list[dict[str, Any]], TokenReport]:
    """DATA's `split` ('train' or 'eval') as {'id', 'task', 'passage', 'input_ids', 'labels'} rows (tokenize_records)
    within max_seq_length."""
    records = load_conversations(data_dir, split)
    if not records:
        return [], TokenReport()
    prompts = load_stats(data_dir).get("prompts", {})
    return tokenize_records(tokenizer, records, max_seq_length=max_seq_length, truncation=truncation,
                            system_prompt=prompts.get("system_prompt"), user_prompt=prompts.get("user_prompt"),
                            answer_prompt=prompts.get("answer_prompt", ANSWER_PROMPT))


def train_rows(data_dir: str | Path, tokenizer: Any, *, max_seq_length: int,
               truncation: str) -> tuple[list[dict[str, Any]], TokenReport]:
    """The train split's rows and the truncation report; an empty split is an error naming the folder."""
    rows, report = split_rows(data_dir, "train", tokenizer, max_seq_length=max_seq_length, truncation=truncation)
    if not rows:
        raise DataError(f"{data_dir}: the train split is empty; prepare more text or lower "
                              "prepare.eval_fraction")
    return rows, report


def heldout_rows(data_dir: str | Path, tokenizer: Any, *, max_seq_length: int, truncation: str) -> list[dict]:
    """The eval split's rows; [] when nothing was held out."""
    return split_rows(data_dir, "eval", tokenizer, max_seq_length=max_seq_length, truncation=truncation)[0]


def trained_prompts(data_dir: str | Path) -> dict[str, Any]:
    """The prompts a run on DATA trains with, for RUN/booktune.json: the first training conversation's system
    message, and the user-turn forms with its book filled in ({lead_in} and {question} are where the user's text
    goes). `answer_prompt` is there when the run trained the answer task: `booktune chat` then asks that way."""
    records = load_conversations(data_dir, "train")
    if not records:
        return {}
    first = records[0]
    system = next((m["content"] for m in first["messages"] if m.get("role") == "system"), None)
    prompts = load_stats(data_dir).get("prompts", {})
    book = {"title": first.get("title", ""), "author": first.get("author", "")}
    user, answer = prompts.get("user_prompt"), prompts.get("answer_prompt")
    out = {"system_prompt": system,
           "user_prompt": None if user is None else user.format(**book, lead_in="{lead_in}")}
    if answer is not None and any(r.get("task") == "answer" for r in records):
        out["answer_prompt"] = answer.format(**book, question="{question}")
    return out
