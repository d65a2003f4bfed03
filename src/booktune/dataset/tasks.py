"""The training tasks each passage yields (`--tasks`): its continuation example, and an answer example per kept
question. A passage's examples stay in its split, so the held-out split keeps its questions to itself."""

from __future__ import annotations

from typing import Any

from booktune.config import PrepareConfig
from booktune.dataset.format import make_answer_record
from booktune.dataset.questions import Context, Written, write_questions


def apply_tasks(rows: list[Any], p: PrepareConfig, ctx: Context) -> dict[str, Any] | None:
    """Replace each BookRows' passage records by their examples for `p.tasks`; the question counts (None without
    the answer task)."""
    tasks = p.tasks.split(",")
    written = None
    if "answer" in tasks:
        written = write_questions([g for r in rows for g in (r.train, r.eval) if g], p, ctx)
    for r in rows:
        r.train = examples(r.train, tasks, written, p)
        r.eval = examples(r.eval, tasks, written, p)
    if written is None:
        return None
    counts = written.counts()
    counts["examples"] = {split: sum(1 for r in rows for x in getattr(r, split) if x["task"] == "answer")
                          for split in ("train", "eval")}
    return counts


def examples(records: list[dict[str, Any]], tasks: list[str], written: Written | None,
             p: PrepareConfig) -> list[dict[str, Any]]:
    """Each passage's continuation (if asked), then one answer example per kept question."""
    out = []
    for record in records:
        if "continue" in tasks:
            out.append(record)
        questions = written.questions.get(record["passage_id"], []) if written else []
        out += [make_answer_record(record, q.text, n, system_prompt=p.system_prompt, answer_prompt=p.answer_prompt)
                for n, q in enumerate(questions, 1)]
    return out
