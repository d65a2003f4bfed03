"""Questions each passage answers, for the answer task (`--tasks answer`), by the writer `--question-writer` names.

- keywords.py: key phrases by TF-IDF in varied question forms; no model.
- model.py: a local chat model writes one question per passage, then scores the pair 1-5 (self-curation); pairs
  under `min_score` are dropped. Questions and scores are cached in DATA (cache.py).
- file.py: the user's own questions, by passage id.

Questions are written per passage, and a passage's questions go with it to its split: a held-out passage's question
is held out too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from booktune.config import PrepareConfig
from booktune.dataset.questions.written import Context, Question, Written

__all__ = ["Context", "Question", "Written", "write_questions"]


def write_questions(groups: Sequence[Sequence[dict[str, Any]]], p: PrepareConfig, ctx: Context) -> Written:
    """Questions for every passage record in `groups` (one group per book and split: TF-IDF counts within one)."""
    writers = chosen_writers(p.question_writer, ctx.model).split(",")
    if writers[0] == "file":
        return _from_file(groups, p.questions_file or "")
    if writers[0] == "model":
        from booktune.dataset.questions.model import QuestionModelError, model_questions

        try:
            return model_questions([r for g in groups for r in g], p, ctx)
        except QuestionModelError as e:
            if "keywords" not in writers:
                raise
            from rich.markup import escape

            from booktune.console import console

            console.print(f"[yellow]{escape(str(e))}; writing questions with keywords instead", highlight=False)
    return _from_keywords(groups)


def chosen_writers(question_writer: str, writer_model: str | None, gpu: bool | None = None) -> str:
    """The writers `question_writer` names; 'auto' picks by where a model could write: the embedded 135M default
    writes unusable questions and a CPU is too slow for a larger one (docs/quality.md), so keywords there."""
    if question_writer != "auto":
        return question_writer
    from booktune.model import DEFAULT_MODEL

    if gpu is None:
        import torch

        gpu = torch.cuda.is_available()
    return "model,keywords" if gpu and (writer_model or DEFAULT_MODEL) != DEFAULT_MODEL else "keywords"


def _from_keywords(groups: Sequence[Sequence[dict[str, Any]]]) -> Written:
    from booktune.dataset.questions.keywords import keyword_questions

    out = Written("keywords")
    for group in groups:
        for record, text in zip(group, keyword_questions([r["passage"] for r in group])):
            if text:
                out.questions[record["passage_id"]] = [Question(text)]
                out.written += 1
    return out


def _from_file(groups: Sequence[Sequence[dict[str, Any]]], path: str) -> Written:
    from booktune.dataset.questions.file import read_questions_file

    ids = {r["passage_id"] for g in groups for r in g}
    found = read_questions_file(path, ids)
    out = Written("file", {pid: [Question(q) for q in qs] for pid, qs in found.items()})
    out.written = sum(len(q) for q in found.values())
    return out
