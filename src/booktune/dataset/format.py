"""Turn passages into system / user / assistant conversations.

The assistant turn is the author's passage, verbatim, in both tasks. In the continuation task the user turn quotes
the lead-in (the words just before the passage) and asks for the continuation; a book's first passage gets the
opening prompt instead. In the answer task the user turn is a question the passage answers.
"""

from __future__ import annotations

from typing import Any

from booktune.errors import BooktuneError


class PromptError(BooktuneError):
    """A system or user prompt template with a placeholder booktune does not fill."""


OPENING_LEAD_IN = "(This is the opening of the book.)"


def make_messages(
    passage: str, lead_in: str, *, title: str, author: str, system_prompt: str, user_prompt: str
) -> list[dict[str, str]]:
    fill = {"title": title, "author": author, "lead_in": lead_in or OPENING_LEAD_IN}
    return [
        {"role": "system", "content": system_prompt.format(**fill)},
        {"role": "user", "content": user_prompt.format(**fill)},
        {"role": "assistant", "content": passage},
    ]


def make_record(
    *, book: str, index: int, title: str, author: str, lead_in: str, passage: str, system_prompt: str, user_prompt: str
) -> dict[str, Any]:
    """One dataset row: the messages plus the fields needed to rebuild them (e.g. when splitting a passage)."""
    messages = make_messages(
        passage, lead_in, title=title, author=author, system_prompt=system_prompt, user_prompt=user_prompt
    )
    pid = f"{book}-{index:05d}"
    return {"id": pid, "book": book, "title": title, "author": author, "lead_in": lead_in, "passage": passage,
            "task": "continue", "question": "", "passage_id": pid, "messages": messages}


def answer_messages(passage: str, question: str, *, title: str, author: str, system_prompt: str,
                    answer_prompt: str) -> list[dict[str, str]]:
    fill = {"title": title, "author": author, "question": question}
    return [
        {"role": "system", "content": system_prompt.format(**fill)},
        {"role": "user", "content": answer_prompt.format(**fill)},
        {"role": "assistant", "content": passage},
    ]


def make_answer_record(passage_record: dict[str, Any], question: str, n: int, *, system_prompt: str,
                       answer_prompt: str) -> dict[str, Any]:
    """The answer-task row of a passage: its `n`-th question as the user turn, the passage verbatim as the answer."""
    r = passage_record
    messages = answer_messages(r["passage"], question, title=r["title"], author=r["author"],
                               system_prompt=system_prompt, answer_prompt=answer_prompt)
    return {**r, "id": f"{r['passage_id']}-q{n}", "lead_in": "", "task": "answer", "question": question,
            "messages": messages}


def check_prompt_templates(system_prompt: str, user_prompt: str, answer_prompt: str = "{question}") -> None:
    """Fail early, naming the field, on a placeholder we do not fill."""
    for field, template, names in (("system_prompt", system_prompt, ("title", "author")),
                                   ("user_prompt", user_prompt, ("title", "author", "lead_in")),
                                   ("answer_prompt", answer_prompt, ("title", "author", "question"))):
        try:
            template.format(**{n: n for n in names})
        except (KeyError, IndexError, ValueError) as e:
            shown = ", ".join("{" + n + "}" for n in names)
            raise PromptError(f"config field prepare.{field}: bad placeholder {e} (use {shown})") from None
    if "{lead_in}" not in user_prompt:
        raise PromptError("config field prepare.user_prompt: must contain {lead_in}")
    if "{question}" not in answer_prompt:
        raise PromptError("config field prepare.answer_prompt: must contain {question}")
