"""Where each assistant answer and its end-of-turn marker sit in a rendered conversation, exactly.

Method (no per-template rules):
1. Render the conversation as is (the training text).
2. Render it again with every assistant answer wrapped in numbered sentinel tags (private-use characters
   that occur nowhere in the text). Removing the tags must give back the text of step 1 exactly;
   otherwise the template treats answers content-dependently and we refuse to guess.
   The tags give each answer's character span whatever the template did around it: earlier turns
   rewritten, thinking blocks added or dropped, dates or metadata inserted.
3. Tokenize the text once with offsets; the answer's tokens are those overlapping its span.
4. The end-of-turn marker is the first special (added) token after the answer, past whitespace only.
   A final answer the template ends with nothing at all (GLM-style) gets the eos token appended.
"""

from __future__ import annotations

import bisect
import itertools
import re
import weakref
from dataclasses import dataclass, field
from typing import Any

from booktune.template.render import TemplateError, render

# Assistant-message keys that hold reasoning, by template family (GPT-OSS: thinking; Qwen3: reasoning_content).
REASONING_KEYS = ("thinking", "reasoning_content", "reasoning")
_PRIVATE_USE = range(0xF0000, 0xF0400)  # supplementary private-use plane: never real book text


class LocateError(ValueError):
    """The answer or its end marker cannot be located exactly (message names the turn, not the example)."""


@dataclass
class Turn:
    """One trained stretch: an assistant turn (optionally with its reasoning) plus its end marker."""

    message: int  # index in the prepared message list
    start: int  # char where training starts (reasoning start when trained, else answer start)
    answer: tuple[int, int]  # char span of the answer text
    first_token: int  # first trained token
    marker_token: int  # the end-of-turn token (last trained token)


@dataclass
class Layout:
    text: str  # rendered conversation (+ an appended eos token when the template ends with none)
    ids: list[int]
    offsets: list[tuple[int, int]]
    turns: list[Turn] = field(default_factory=list)
    appended_eos: bool = False


def fresh_chars(text: str, n: int) -> list[str]:
    """`n` private-use characters absent from `text`, for sentinels that cannot collide with content."""
    out = list(itertools.islice((chr(c) for c in _PRIVATE_USE if chr(c) not in text), n))
    if len(out) < n:
        raise LocateError("the text uses every private-use sentinel character")
    return out


def layout(tokenizer: Any, messages: list[dict], *, train_reasoning: bool = False) -> Layout:
    """Text, token ids, offsets and the trained turns of already-prepared `messages`."""
    text = render(tokenizer, messages)
    spans = _answer_spans(tokenizer, messages, text, train_reasoning)
    if not spans:
        raise LocateError("no assistant turn to train on")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    lay = Layout(text, list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]])
    ends = [end for _, end in lay.offsets]
    for number, (message, start, answer) in enumerate(spans, 1):
        first = bisect.bisect_right(ends, start)
        _check_start(lay, first, start, number)
        marker = _end_marker(tokenizer, lay, answer[1], number, last=number == len(spans))
        lay.turns.append(Turn(message, start, answer, first, marker))
    return lay


def _answer_spans(tokenizer: Any, messages: list[dict], text: str, train_reasoning: bool) -> list[tuple]:
    """(message index, training start char, answer span) per assistant turn, from the sentinel render."""
    fields = [(i, key) for i, m in enumerate(messages) if m.get("role") == "assistant"
              for key in (("content",) + (REASONING_KEYS if train_reasoning else ()))
              if isinstance(m.get(key), str)]
    found = mark_spans(tokenizer, messages, fields, text)
    spans = []
    for turn, (k, i) in enumerate(((k, i) for k, (i, key) in enumerate(fields) if key == "content"), 1):
        span = found.get(k)
        if span is None:
            raise LocateError(f"assistant turn {turn} does not appear in the rendered text")
        if text[span[0]:span[1]] != messages[i]["content"]:
            raise LocateError(f"the template rewrites assistant turn {turn}: {text[span[0]:span[1]][:60]!r}")
        # Rendered reasoning of this turn (templates drop it from earlier turns) is trained from its start.
        starts = [found[j][0] for j, (mi, key) in enumerate(fields) if mi == i and key != "content" and j in found]
        spans.append((i, min([span[0], *starts]), span))
    return spans


def mark_spans(tokenizer: Any, messages: list[dict], fields: list[tuple[int, str]], text: str) -> dict:
    """Char span in `text` (the plain render) of each (message index, key) field that the template renders,
    keyed by the field's position in `fields`. Raises LocateError when marking changes the render."""
    opener, closer = fresh_chars(text, 2)
    marked = [dict(m) for m in messages]
    for k, (i, key) in enumerate(fields):
        marked[i][key] = f"{opener}{k}{opener}{marked[i][key]}{closer}{k}{closer}"
    try:
        tagged = render(tokenizer, marked)
    except TemplateError as e:
        raise LocateError(f"the template rejects marked answers ({e})") from None
    clean, found = _strip_tags(tagged, opener, closer)
    if clean != text:
        raise LocateError("the template renders answers content-dependently; cannot locate them exactly")
    return found


def _strip_tags(tagged: str, opener: str, closer: str) -> tuple[str, dict[int, tuple[int, int]]]:
    """The text without sentinel tags, and each tag number's (start, end) in that text."""
    pattern = re.compile(f"([{opener}{closer}])(\\d+)\\1")
    pieces, opened, found, removed, last = [], {}, {}, 0, 0
    for m in pattern.finditer(tagged):
        pieces.append(tagged[last:m.start()])
        last = m.end()
        at = m.start() - removed
        removed += m.end() - m.start()
        k = int(m.group(2))
        if m.group(1) == opener:
            if k in opened:
                raise LocateError("the template renders an assistant turn twice")
            opened[k] = at
        elif k in opened and k not in found:
            found[k] = (opened[k], at)
        else:
            raise LocateError("the template reorders or duplicates assistant text")
    pieces.append(tagged[last:])
    return "".join(pieces), found


def _check_start(lay: Layout, first: int, start: int, turn: int) -> None:
    """The first trained token may reach back into the template only over whitespace (e.g. 'A: ' + 'Hi')."""
    if first >= len(lay.ids):
        raise LocateError(f"assistant turn {turn} has no tokens")
    begin = lay.offsets[first][0]
    if begin < start and lay.text[begin:start].strip():
        raise LocateError(f"assistant turn {turn} starts inside token {lay.text[begin:lay.offsets[first][1]]!r}, "
                          "which also holds template text")


def _end_marker(tokenizer: Any, lay: Layout, answer_end: int, turn: int, *, last: bool) -> int:
    """Index of the end-of-turn token after the answer: the first special token, past whitespace only."""
    specials = special_ids(tokenizer)
    starts = [s for s, _ in lay.offsets]
    j = bisect.bisect_left(starts, answer_end)
    if j > 0 and lay.text[answer_end:lay.offsets[j - 1][1]].strip():
        raise LocateError(f"assistant turn {turn} ends inside a token that also holds template text")
    while j < len(lay.ids):
        if lay.ids[j] in specials:
            return j
        piece = lay.text[lay.offsets[j][0]:lay.offsets[j][1]]
        if piece.strip():
            raise LocateError(f"after assistant turn {turn} the template renders {piece!r} before any "
                              "end-of-turn token")
        j += 1
    if not last or tokenizer.eos_token_id is None:
        raise LocateError(f"assistant turn {turn} has no end-of-turn token and the tokenizer no eos token")
    # The template ends the final answer with nothing (GLM-style): the model must still learn to stop.
    end = len(lay.text)
    lay.text += tokenizer.eos_token
    lay.ids.append(tokenizer.eos_token_id)
    lay.offsets.append((end, len(lay.text)))
    lay.appended_eos = True
    return len(lay.ids) - 1


_SPECIALS: weakref.WeakKeyDictionary[Any, tuple[int, frozenset[int]]] = weakref.WeakKeyDictionary()


def special_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of special and added tokens that are not plain whitespace: the candidates for end markers."""
    size = len(tokenizer)
    cached = _SPECIALS.get(tokenizer)
    if cached and cached[0] == size:
        return cached[1]
    ids = {i for i, tok in tokenizer.added_tokens_decoder.items() if tok.content.strip()}
    ids.update(i for i in tokenizer.all_special_ids if i is not None)
    result = frozenset(ids)
    _SPECIALS[tokenizer] = (size, result)
    return result
