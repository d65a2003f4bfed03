"""Turn passages into system / user / assistant conversations.

The assistant turn is the author's passage, verbatim. The user turn quotes the lead-in (the words just before the
passage) and asks for the continuation; a book's first passage gets the opening prompt instead.
"""

from __future__ import annotations

from typing import Any

class PromptError(ValueError):
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
    return {
        "id": f"{book}-{index:05d}",
        "book": book,
        "title": title,
        "author": author,
        "lead_in": lead_in,
        "passage": passage,
        "messages": messages,
    }


def check_prompt_templates(system_prompt: str, user_prompt: str) -> None:
    """Fail early, naming the field, on a placeholder we do not fill."""
    fill = {"title": "T", "author": "A", "lead_in": "L"}
    for field, template in (("system_prompt", system_prompt), ("user_prompt", user_prompt)):
        try:
            template.format(**fill)
        except (KeyError, IndexError, ValueError) as e:
            raise PromptError(f"config field prepare.{field}: bad placeholder {e} (use {{title}}, {{author}}, {{lead_in}})") from None
    if "{lead_in}" not in user_prompt:
        raise PromptError("config field prepare.user_prompt: must contain {lead_in}")
