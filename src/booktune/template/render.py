"""Rendering a conversation with the model's own chat template, reproducibly (dates pinned).

transformers compiles each template into a jinja environment whose global `strftime_now` calls
`datetime.now()` (transformers/utils/chat_template_utils.py). Keyword arguments to `apply_chat_template`
become template variables, and jinja variables shadow globals, so passing our own `strftime_now` pins
the date for every template that calls it (Llama 3.2, GPT-OSS, Mistral Small 3.x). Llama 3.1 reads
`date_string` instead (default "26 Jul 2024") and FireFunction v2 `datetime`; we pass both, with the same
pinned day, in the formats llama.cpp's server uses for them (common/chat.cpp).

Tool-use templates that loop over `tools` (or read `functions`) with no guard fail on a plain conversation:
transformers passes `tools=None`, and `functions` is undefined. For those, and only those, the template is
rendered with an empty tool list; the choice is made once per template by rendering probe conversations
(`tool_kwargs`) and is part of `template_kwargs`, so training and generation see the same text.
"""

from __future__ import annotations

import itertools
import logging
from datetime import datetime
from functools import lru_cache
from typing import Any

from booktune.errors import BooktuneError, is_bug

log = logging.getLogger("booktune.template")

# Llama 3.1's own default date: rendering with it changes nothing for templates that already pin it.
PINNED_DATE = datetime(2024, 7, 26)

# Empty values to try for the tool variables a template reads, in this order. `functions` also as the JSON text
# of an empty list: FireFunction v2 appends `functions` to its system prompt as a string.
EMPTY_TOOLS: dict[str, tuple] = {"tools": ([],), "functions": ([], "[]")}
_TOOL_PROBES = [
    [{"role": "user", "content": "Probe question?"}, {"role": "assistant", "content": "Probe answer."}],
    [{"role": "system", "content": "Probe system prompt."}, {"role": "user", "content": "Probe question?"},
     {"role": "assistant", "content": "Probe answer."}],
]
_TOOLS: dict[tuple, tuple[dict, bool]] = {}


class TemplateError(BooktuneError):
    """The tokenizer has no usable chat template, or the template refused the conversation."""


def pinned_strftime(fmt: str) -> str:
    """`strftime_now` replacement: always the pinned day, so token ids do not change with the calendar."""
    return PINNED_DATE.strftime(fmt)


def chat_template(tokenizer: Any) -> str:
    """The template string `apply_chat_template` would use (the default one when a tokenizer has several)."""
    try:
        template = tokenizer.get_chat_template()
    except (ValueError, AttributeError) as e:
        raise TemplateError(f"{template_name(tokenizer)}: no chat template ({str(e).splitlines()[0]})") from None
    if not isinstance(template, str) or not template.strip():
        raise TemplateError(f"{template_name(tokenizer)}: no chat template; use an instruct/chat model")
    return template


def template_key(tokenizer: Any) -> tuple:
    """What a per-template decision depends on: the template and the special tokens it may print."""
    return chat_template(tokenizer), tuple(sorted((k, str(v)) for k, v in tokenizer.special_tokens_map.items()))


@lru_cache(maxsize=1)
def _parser() -> Any:
    """A jinja environment that parses every tag transformers renders, `{% generation %}` included."""
    import jinja2
    import jinja2.ext

    class Generation(jinja2.ext.Extension):
        # transformers' AssistantTracker: `{% generation %}...{% endgeneration %}` renders its body unchanged.
        tags = {"generation"}

        def parse(self, parser: Any) -> list:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    return jinja2.Environment(extensions=["jinja2.ext.loopcontrols", Generation])


@lru_cache(maxsize=64)
def template_variables(template: str) -> frozenset[str]:
    """Variables a template reads that it does not define itself (e.g. 'enable_thinking', 'date_string')."""
    import jinja2.meta

    return frozenset(jinja2.meta.find_undeclared_variables(_parser().parse(template)))


def _base_kwargs(tokenizer: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"strftime_now": pinned_strftime, "date_string": PINNED_DATE.strftime("%d %b %Y"),
                              "datetime": PINNED_DATE.strftime("%b %d %Y")}
    if "enable_thinking" in template_variables(chat_template(tokenizer)):
        kwargs["enable_thinking"] = False
    return kwargs


def template_kwargs(tokenizer: Any) -> dict[str, Any]:
    """Extra template variables booktune renders with, in training and in generation alike.

    - `strftime_now` / `date_string` / `datetime`: the pinned date (see the module docstring).
    - `enable_thinking=False` where the template has that switch (Qwen3, SmolLM3, Gemma 4): booktune trains
      answers without reasoning, so the model is shown the no-thinking form of its template.
    - `tools=[]` / `functions=[]` (or `"[]"`) where the template cannot render a conversation without them
      (`tool_kwargs`).
    """
    return {**_base_kwargs(tokenizer), **tool_kwargs(tokenizer)}


def tool_kwargs(tokenizer: Any) -> dict[str, Any]:
    """Empty tool variables the template needs to render a plain conversation ({} for most), probed once."""
    key = template_key(tokenizer)
    if key not in _TOOLS:
        _TOOLS[key] = _probe_tools(tokenizer)
        if _TOOLS[key][0]:
            log.warning("%s: the chat template fails without tools; it is rendered with %s, in training and "
                        "generation alike", template_name(tokenizer), _show(_TOOLS[key][0]))
    return {name: list(value) if isinstance(value, list) else value for name, value in _TOOLS[key][0].items()}


def _probe_tools(tokenizer: Any) -> tuple[dict, bool]:
    """(the first set of empty tool variables under which most probes render, whether they were tried and none
    rendered even a plain conversation)."""
    read = [name for name in EMPTY_TOOLS if name in template_variables(chat_template(tokenizer))]
    choices = [[None, *((name, value) for value in EMPTY_TOOLS[name])] for name in read]
    candidates = sorted((dict(c for c in combo if c) for combo in itertools.product(*choices)), key=len)
    best, best_score = {}, -1
    for extra in candidates:  # {} first: a template that renders as it is keeps its own text
        score = sum(_renders(tokenizer, probe, extra) for probe in _TOOL_PROBES)
        if score > best_score:
            best, best_score = extra, score
        if score == len(_TOOL_PROBES):
            break
    return best, len(candidates) > 1 and best_score == 0


def _renders(tokenizer: Any, messages: list[dict], extra: dict) -> bool:
    try:
        tokenizer.apply_chat_template(messages, tokenize=False, chat_template=chat_template(tokenizer),
                                      **_base_kwargs(tokenizer), **extra)
    except Exception:  # any failure counts: the probe only compares candidates
        return False
    return True


def render(tokenizer: Any, messages: list[dict], *, add_generation_prompt: bool = False) -> str:
    """The template's text for `messages`, date pinned. Template errors become TemplateError."""
    template = chat_template(tokenizer)  # a clear error for a tokenizer without a template
    try:
        # The template is passed explicitly: with `tools` set, transformers would switch a tokenizer that has
        # several templates to its "tool_use" one.
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                             chat_template=template, **template_kwargs(tokenizer))
    except Exception as e:  # jinja raises TemplateError, but templates also trip on KeyError/TypeError
        if is_bug(e):  # raised in booktune's own code, not in the template: a bug, not a template to refuse
            raise
        raise TemplateError(f"{template_name(tokenizer)}: chat template failed: {str(e).splitlines()[0]}"
                            f"{_tried(tokenizer)}") from None


def _tried(tokenizer: Any) -> str:
    """Says so in the refusal when empty tool variables were tried and did not help."""
    key = template_key(tokenizer)
    return " (also with empty tools/functions)" if key in _TOOLS and _TOOLS[key][1] else ""


def _show(extra: dict) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in extra.items())


def template_name(tokenizer: Any) -> str:
    """How refusals name a template: by its model (the tokenizer's name or path)."""
    return getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
