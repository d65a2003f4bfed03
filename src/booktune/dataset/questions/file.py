"""The `file` question writer: the user's own questions, one JSON object per line.

    {"id": "thoreau_walden-00012", "question": "Why did you go to the woods?"}

Ids are the passage ids of train.jsonl and eval.jsonl (`passage_id`); a passage may have several questions. A
question for a held-out passage stays held out with it.
"""

from __future__ import annotations

import json
from pathlib import Path

from booktune.errors import BooktuneError


class QuestionsFileError(BooktuneError):
    """A questions file that cannot be read, or a line in it that is wrong; the message names the file and line."""


def read_questions_file(path: str | Path, known_ids: set[str]) -> dict[str, list[str]]:
    """Passage id -> its questions, in file order. Every line must be an object with a known 'id' (or
    'passage_id') and a non-empty 'question' string; blank lines are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QuestionsFileError(f"{path}: questions file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise QuestionsFileError(f"{path}: cannot read it as UTF-8 text ({type(e).__name__})") from None
    questions: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        pid, question = _parse_line(line, f"{path}:{n}")
        if pid not in known_ids:
            raise QuestionsFileError(f"{path}:{n}: no passage with id {pid!r} (ids are in train.jsonl and "
                                     "eval.jsonl, field passage_id)")
        questions.setdefault(pid, []).append(question)
    return questions


def _parse_line(line: str, where: str) -> tuple[str, str]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise QuestionsFileError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(row, dict):
        raise QuestionsFileError(f"{where}: expected an object with 'id' and 'question'")
    pid = row.get("id", row.get("passage_id"))
    question = row.get("question")
    if not isinstance(pid, str) or not pid:
        raise QuestionsFileError(f"{where}: needs a passage 'id' string")
    if not isinstance(question, str) or not question.strip():
        raise QuestionsFileError(f"{where}: needs a non-empty 'question' string")
    return pid, question.strip()
