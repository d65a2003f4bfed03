"""`{% generation %}` blocks: the template's own statement of which text is assistant output.

Templates written for answer-only training (TRL's `*_training.jinja`, LFM2.5, Poolside Laguna) wrap every
assistant turn in `{% generation %}` ... `{% endgeneration %}`, the convention behind transformers'
`return_assistant_tokens_mask` and TRL's `assistant_only_loss`. The tag changes no text. booktune does not take
its labels from the blocks (they differ in what they include: TRL's Qwen3 block holds the empty think block,
Laguna's the `<assistant>` header); it uses them as a second check, independent of the sentinel render that
located the answers:

- every trained turn (its answer and its end marker) lies inside one block, so nothing the template calls prompt
  is trained, the next turn's opener included (blocks that touch count as one: TRL's DiffusionGemma template
  closes a turn's content and its `<turn|>` in two);
- every block holds a trained turn, unless it holds nothing but special tokens and whitespace (TRL's Phi-3.5
  template has a block of its own for the eos after the last turn), so no assistant text is left untrained.

The blocks are read with transformers' own renderer (`render_jinja_template`, which `apply_chat_template` calls),
as character spans, so they are exactly the spans transformers would turn into its mask.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from booktune.template.locate import Layout, LocateError, special_ids
from booktune.template.render import chat_template, template_kwargs

# The test transformers applies before it tracks blocks (chat_template_utils.render_jinja_template), here on the
# template without its comments: TRL's templates name the tag in their header comment.
GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")
COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)


def has_generation_blocks(tokenizer: Any) -> bool:
    return _has_tag(chat_template(tokenizer))


@lru_cache(maxsize=64)
def _has_tag(template: str) -> bool:
    return bool(GENERATION_TAG.search(COMMENT.sub("", template)))


def generation_blocks(tokenizer: Any, messages: list[dict], text: str) -> list[tuple[int, int]]:
    """Character spans of the template's generation blocks in `text`, the plain render of `messages`."""
    from transformers.utils.chat_template_utils import render_jinja_template

    kwargs = {**tokenizer.special_tokens_map, **template_kwargs(tokenizer)}  # what apply_chat_template passes
    try:
        rendered, blocks = render_jinja_template(conversations=[messages], chat_template=chat_template(tokenizer),
                                                 return_assistant_tokens_mask=True, **kwargs)
    except Exception as e:  # the plain render of the same messages succeeded, so this is unexpected
        raise LocateError(f"rendering the template's generation blocks failed: {str(e).splitlines()[0]}") from None
    if rendered[0] != text:
        raise LocateError("the template renders differently while its generation blocks are tracked")
    return _merge_touching([(start, end) for start, end in blocks[0] if end > start])


def _merge_touching(blocks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(blocks):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def check_generation_blocks(tokenizer: Any, lay: Layout, blocks: list[tuple[int, int]]) -> None:
    """Raise LocateError unless booktune's trained turns and the template's blocks agree (module docstring)."""
    used = set()
    for number, turn in enumerate(lay.turns, 1):
        appended = lay.appended_eos and number == len(lay.turns)  # an eos booktune added is not in the render
        end = turn.answer[1] if appended else lay.offsets[turn.marker_token][1]
        inside = [k for k, (start, stop) in enumerate(blocks) if start <= turn.start and end <= stop]
        if not inside:
            raise LocateError(f"assistant turn {number} ({_short(lay.text[turn.start:end])}) is not inside one of "
                              "the template's {% generation %} blocks")
        used.add(inside[0])
    specials = special_ids(tokenizer)
    for k, (start, stop) in enumerate(blocks):
        if k not in used and _holds_text(lay, specials, start, stop):
            raise LocateError(f"the template's {{% generation %}} block {_short(lay.text[start:stop])} holds no "
                              "answer that booktune trains")


def _holds_text(lay: Layout, specials: frozenset[int], start: int, stop: int) -> bool:
    """Whether text[start:stop] has anything but special tokens and whitespace."""
    return any(begin < stop and end > start and token not in specials
               and lay.text[max(begin, start):min(end, stop)].strip()
               for token, (begin, end) in zip(lay.ids, lay.offsets))


def _short(text: str, width: int = 60) -> str:
    return repr(text if len(text) <= width else text[: width // 2] + " … " + text[-width // 2:])
