"""`instruction_part` / `response_part` for Unsloth's `train_on_responses_only`, derived by rendering.

Unsloth trains the tokens between each `response_part` and the next `instruction_part`, both found as
token subsequences. A fixed marker that matches nothing trains nothing (GPT-OSS checkpoints differ on
`<|start|>assistant<|channel|>final<|message|>` vs `<|start|>assistant<|message|>`), so the parts are read
off the tokenizer's own template: a probe conversation is rendered with every user and assistant text
marked (locate.mark_spans), and the parts are the template text that opens a user / an assistant turn.

The parts match text rendered by booktune (`booktune.template.messages.render_text`: same pinned date and
`enable_thinking=False`). Where the template adds an empty think block to the last turn only (Qwen3),
the shorter, common header is returned, so Unsloth trains that block; build_example does not.
"""

from __future__ import annotations

import os
from typing import Any

from booktune.template.locate import LocateError, layout, mark_spans, special_ids
from booktune.template.messages import PROBE, prepare_messages
from booktune.template.render import render


def unsloth_parts(tokenizer: Any) -> tuple[str, str]:
    """(instruction_part, response_part) for `unsloth.chat_templates.train_on_responses_only`."""
    messages = prepare_messages(tokenizer, PROBE)
    text = render(tokenizer, messages)
    spans = mark_spans(tokenizer, messages, [(i, "content") for i in range(len(messages))], text)
    if len(spans) != len(messages):
        raise LocateError("the template drops probe turns; cannot derive Unsloth parts")
    (_, u1_end), (a1_start, a1_end), (u2_start, u2_end), (a2_start, _) = (spans[k] for k in range(4))
    lay = layout(tokenizer, messages)
    marker_start, marker_end = lay.offsets[lay.turns[0].marker_token]
    # Usually the answer's end marker closes the turn and the user turn opens after it; in GLM-style
    # templates the marker *is* the next turn's opener (<|user|>).
    instruction = text[marker_end:u2_start].lstrip() or text[marker_start:u2_start]
    user_gap = text[a1_end:u2_start]
    heads = [_response_head(text[u_end:a_start], user_gap, _boundaries(tokenizer, lay, u_end, a_start))
             for u_end, a_start in ((u1_end, a1_start), (u2_end, a2_start))]
    short, long = sorted(heads, key=len)
    if not short or not long.startswith(short):
        raise LocateError(f"assistant turns open differently ({heads[0]!r} vs {heads[1]!r})")
    return instruction, short


def _boundaries(tokenizer: Any, lay: Any, start: int, stop: int) -> tuple[list[int], list[int]]:
    """Offsets (relative to `start`) where special tokens, and lines, begin within text[start:stop]."""
    specials = special_ids(tokenizer)
    tokens = sorted(s - start for (s, _), i in zip(lay.offsets, lay.ids) if i in specials and start <= s < stop)
    lines = [n + 1 for n, ch in enumerate(lay.text[start:stop]) if ch == "\n"]
    return tokens, lines


def _response_head(assistant_gap: str, user_gap: str, boundaries: tuple[list[int], list[int]]) -> str:
    """The part of the text before an answer that marks it as an assistant turn.

    Plain text that ends the user turn before any special token (GLM's '/nothink') is skipped; then the head
    starts at the last token or line boundary at or before the point where the gap stops looking like the
    text before a user turn (ChatML: '<|im_end|>\n<|im_start|>' is common, 'assistant\n' is not)."""
    tokens, lines = boundaries
    skip = tokens[0] if tokens else 0
    same = skip + len(os.path.commonprefix([assistant_gap[skip:], user_gap]))
    cut = max(b for b in [skip, *tokens, *lines] if skip <= b <= same)
    return assistant_gap[cut:]
