"""Conversations to token ids and labels, within max_seq_length, by the one masking function.

An example longer than max_seq_length is never trained with its end-of-turn marker cut off: it is either dropped or
its passage is split at a sentence end into shorter conversations (the second half quoting the end of the first as
its lead-in), recursively until every piece fits. An answer example keeps its question on the first half; the second
half, which the question no longer introduces, becomes a continuation of the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from booktune.dataset.chunk import Words, best_cut
from booktune.errors import BooktuneError

IGNORE = -100


class TruncationError(BooktuneError):
    """No trainable example is left (all dropped or fully masked)."""


@dataclass
class TokenReport:
    examples: int = 0  # conversations in
    kept: int = 0  # tokenized examples out (split pieces counted one by one)
    dropped: int = 0
    split: int = 0  # conversations that had to be split
    tokens: int = 0  # total tokens of the kept examples
    trained_tokens: int = 0  # tokens with a label
    tokens_lost: int = 0  # trained tokens of dropped examples
    longest: int = 0
    fully_masked: int = 0
    dropped_ids: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"examples: {self.examples} in, {self.kept} out ({self.split} split, {self.dropped} dropped)",
            f"tokens: {self.tokens:,} ({self.trained_tokens:,} trained); lost to truncation: {self.tokens_lost:,}",
            f"longest example: {self.longest} tokens",
        ]


def split_record(record: dict[str, Any], rebuild: Callable[[dict, str, str], list[dict]]) -> list[dict[str, Any]]:
    """Two records from one, cut at the sentence end nearest the middle of its passage."""
    words = Words.from_text(record["passage"])
    if len(words) < 2:
        return []
    cut = best_cut(words, 0, len(words) // 2, len(words) - 1)
    overlap = max(1, len(record.get("lead_in", "").split()) or 50)
    first, second = words.join(0, cut), words.join(cut, len(words))
    lead2 = words.join(max(0, cut - overlap), cut)
    pieces = []
    for suffix, lead, passage in (("a", record.get("lead_in", ""), first), ("b", lead2, second)):
        # Each half is a passage of its own, which the same half of the other task's example trains too.
        piece = {**record, "id": f"{record['id']}{suffix}", "lead_in": lead, "passage": passage,
                 "passage_id": f"{record.get('passage_id', record['id'])}{suffix}"}
        if suffix == "b" and piece.get("task") == "answer":
            piece.update(task="continue", question="")
        piece["messages"] = rebuild(piece, lead, passage)
        pieces.append(piece)
    return pieces


def prompt_rebuilder(prompts: dict[str, str]) -> Callable[[dict, str, str], list]:
    """Messages for a piece of a split record, by its task, with the prompts DATA was prepared with."""
    from booktune.dataset.format import answer_messages, make_messages

    def rebuild(piece: dict[str, Any], lead_in: str, passage: str) -> list[dict]:
        book = {"title": piece["title"], "author": piece["author"], "system_prompt": prompts["system_prompt"]}
        if piece.get("task") == "answer":
            return answer_messages(passage, piece["question"], answer_prompt=prompts["answer_prompt"], **book)
        return make_messages(passage, lead_in, user_prompt=prompts["user_prompt"], **book)

    return rebuild


def tokenize_records(
    tokenizer: Any,
    records: list[dict[str, Any]],
    *,
    max_seq_length: int,
    truncation: str = "split",
    system_prompt: str | None = None,
    user_prompt: str | None = None,
    answer_prompt: str = "{question}",
) -> tuple[list[dict[str, Any]], TokenReport]:
    """Rows of {'id', 'task', 'passage', 'input_ids', 'labels'} and a report; 'passage' is the id of the passage
    the example trains, which its continuation and answer examples share. Raises TruncationError when nothing
    trainable is left."""
    from booktune.template.labels import build_example

    report = TokenReport(examples=len(records))
    out: list[dict[str, Any]] = []
    queue = list(records)
    while queue:
        record = queue.pop(0)
        ex = build_example(tokenizer, record["messages"], name=record["id"])
        trained = sum(1 for x in ex.labels if x != IGNORE)
        if len(ex.input_ids) <= max_seq_length:
            if trained == 0:
                report.fully_masked += 1
                continue
            out.append({"id": record["id"], "task": record.get("task", "continue"),
                        "passage": record.get("passage_id", record["id"]), "input_ids": ex.input_ids,
                        "labels": ex.labels})
            report.kept += 1
            report.tokens += len(ex.input_ids)
            report.trained_tokens += trained
            report.longest = max(report.longest, len(ex.input_ids))
            continue
        pieces = []
        if truncation == "split" and system_prompt is not None and user_prompt is not None:
            prompts = {"system_prompt": system_prompt, "user_prompt": user_prompt, "answer_prompt": answer_prompt}
            pieces = split_record(record, prompt_rebuilder(prompts))
        if pieces:
            report.split += 1
            queue[:0] = pieces
        else:
            report.dropped += 1
            report.tokens_lost += trained
            report.dropped_ids.append(record["id"])
    if not out:
        raise TruncationError(
            f"no trainable example left: {report.dropped} dropped as longer than max_seq_length {max_seq_length}, "
            f"{report.fully_masked} fully masked; raise train.max_seq_length or lower prepare.chunk_words"
        )
    return out, report
