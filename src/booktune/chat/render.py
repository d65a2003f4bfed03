"""Rendering a conversation with the model's own chat template, reproducibly (dates pinned).

transformers compiles each template into a jinja environment whose global `strftime_now` calls
`datetime.now()` (transformers/utils/chat_template_utils.py). Keyword arguments to `apply_chat_template`
become template variables, and jinja variables shadow globals, so passing our own `strftime_now` pins
the date for every template that calls it (Llama 3.2, GPT-OSS, Mistral Small 3.x). Llama 3.1 reads
`date_string` instead (default "26 Jul 2024"); we pass it too, with the same pinned day.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

# Llama 3.1's own default date: rendering with it changes nothing for templates that already pin it.
PINNED_DATE = datetime(2024, 7, 26)


class TemplateError(ValueError):
    """The tokenizer has no usable chat template, or the template refused the conversation."""


def pinned_strftime(fmt: str) -> str:
    """`strftime_now` replacement: always the pinned day, so token ids do not change with the calendar."""
    return PINNED_DATE.strftime(fmt)


def chat_template(tokenizer: Any) -> str:
    """The template string `apply_chat_template` would use (the default one when a tokenizer has several)."""
    try:
        template = tokenizer.get_chat_template()
    except (ValueError, AttributeError) as e:
        raise TemplateError(f"{_name(tokenizer)}: no chat template ({str(e).splitlines()[0]})") from None
    if not isinstance(template, str) or not template.strip():
        raise TemplateError(f"{_name(tokenizer)}: no chat template; use an instruct/chat model")
    return template


@lru_cache(maxsize=64)
def template_variables(template: str) -> frozenset[str]:
    """Variables a template reads that it does not define itself (e.g. 'enable_thinking', 'date_string')."""
    import jinja2
    import jinja2.meta

    ast = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(template)
    return frozenset(jinja2.meta.find_undeclared_variables(ast))


def template_kwargs(tokenizer: Any) -> dict[str, Any]:
    """Extra template variables booktune renders with, in training and in generation alike.

    - `strftime_now` / `date_string`: the pinned date (see the module docstring).
    - `enable_thinking=False` where the template has that switch (Qwen3, SmolLM3, Gemma 4): booktune trains
      answers without reasoning, so the model is shown the no-thinking form of its template.
    """
    kwargs: dict[str, Any] = {"strftime_now": pinned_strftime, "date_string": PINNED_DATE.strftime("%d %b %Y")}
    if "enable_thinking" in template_variables(chat_template(tokenizer)):
        kwargs["enable_thinking"] = False
    return kwargs


def render(tokenizer: Any, messages: list[dict], *, add_generation_prompt: bool = False) -> str:
    """The template's text for `messages`, date pinned. Template errors become TemplateError."""
    chat_template(tokenizer)  # a clear error for a tokenizer without a template
    try:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, **template_kwargs(tokenizer)
        )
    except Exception as e:  # jinja raises TemplateError, but templates also trip on KeyError/TypeError
        raise TemplateError(f"{_name(tokenizer)}: chat template failed: {str(e).splitlines()[0]}") from None


def _name(tokenizer: Any) -> str:
    return getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
