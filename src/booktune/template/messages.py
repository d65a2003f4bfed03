"""Chat-template quirks, shared by training and generation so both see the same tokens.

Decisions (each detected by rendering probe conversations, never from a model name):
- Surrounding whitespace of every message is stripped: many templates `trim` content, and training on
  text the template would rewrite makes labels ambiguous.
- No system role (Gemma 2 raises "System role not supported"; some templates silently drop it): the
  system prompt is folded into the first user turn as "SYSTEM\\n\\nUSER", with a one-time notice.
- Mistral-Nemo style (the system prompt is rendered only inside the *last* user turn, and only when the
  conversation ends with that user turn, so a training example ending with the answer loses it): the
  system prompt is folded into the last user turn exactly as the template does at inference, with a
  one-time warning. Training and generation then see the same prompt.
- Dates are pinned, `enable_thinking=False` is passed where the template has it, and empty `tools` /
  `functions` where a tool-use template fails without them (render.py).
- The generation prompt is the training render of the same conversation cut where the answer starts,
  so generation continues from exactly the tokens training conditioned on: Qwen3/3.5 get the empty
  `<think>\\n\\n</think>\\n\\n` block (masked context in training, never trained), GPT-OSS starts in its
  final channel, Gemma 4 omits the empty thought channel its generation prompt would add.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from booktune.template.locate import REASONING_KEYS, fresh_chars, layout
from booktune.template.render import TemplateError, render, template_key, template_kwargs

__all__ = ["prepare_messages", "render_text", "render_prompt_ids", "stop_token_ids", "template_kwargs",
           "system_mode", "TemplateError"]

log = logging.getLogger("booktune.template")

_PROBE_SYSTEM = "Probe system prompt from booktune."
PROBE = [{"role": "user", "content": "Probe question one?"}, {"role": "assistant", "content": "Probe answer one."},
         {"role": "user", "content": "Probe question two?"}, {"role": "assistant", "content": "Probe answer two."}]
_MODES: dict[tuple, str] = {}
_STOPS: weakref.WeakKeyDictionary[Any, tuple[tuple, list[int]]] = weakref.WeakKeyDictionary()
_NOTICES = {
    "fold_first": "the chat template has no system role: the system prompt is folded into the first user turn",
    "fold_last": "the chat template keeps the system prompt only in a final user turn, so it would vanish from "
                 "training examples; it is folded into the last user turn, as the template does when generating",
}


def system_mode(tokenizer: Any) -> str:
    """'native', 'fold_first' (no system role) or 'fold_last' (Mistral-Nemo style), probed once per template."""
    key = template_key(tokenizer)
    if key not in _MODES:
        _MODES[key] = _probe_system(tokenizer)
        if _MODES[key] in _NOTICES:
            log.warning("%s: %s", getattr(tokenizer, "name_or_path", "") or "tokenizer", _NOTICES[_MODES[key]])
    return _MODES[key]


def _probe_system(tokenizer: Any) -> str:
    system = [{"role": "system", "content": _PROBE_SYSTEM}]
    try:
        if _PROBE_SYSTEM in render(tokenizer, system + PROBE[:2]):
            return "native"
    except TemplateError:
        return "fold_first"  # the template refuses a system message
    try:
        if _PROBE_SYSTEM in render(tokenizer, system + PROBE[:1], add_generation_prompt=True):
            return "fold_last"
    except TemplateError:
        pass
    return "fold_first"  # dropped silently either way


def prepare_messages(tokenizer: Any, messages: list[dict]) -> list[dict]:
    """A normalised copy of `messages` for this tokenizer's template (see the module docstring)."""
    out = []
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise TemplateError(f"message {n} is not a {{'role': ..., 'content': ...}} mapping")
        if not isinstance(message.get("content"), str):
            raise TemplateError(f"message {n} ({message['role']}) has no text 'content'")
        copy = dict(message)
        for key in ("content", *REASONING_KEYS):
            if isinstance(copy.get(key), str):
                copy[key] = copy[key].strip()
        out.append(copy)
    if out and out[0]["role"] == "system":
        mode = system_mode(tokenizer)
        if mode != "native":
            out = _fold_system(out, last=mode == "fold_last")
    return out


def _fold_system(messages: list[dict], *, last: bool) -> list[dict]:
    system, rest = messages[0]["content"], messages[1:]
    users = [i for i, m in enumerate(rest) if m["role"] == "user"]
    if not system or not users:
        return rest
    i = users[-1] if last else users[0]
    rest[i] = {**rest[i], "content": f"{system}\n\n{rest[i]['content']}"}
    return rest


def render_text(tokenizer: Any, messages: list[dict]) -> str:
    """The training text of a conversation (what `build_example` tokenizes), e.g. for Unsloth notebooks."""
    return render(tokenizer, prepare_messages(tokenizer, messages))


def render_prompt_ids(tokenizer: Any, messages: list[dict]) -> list[int]:
    """Token ids to generate the next assistant turn from: the training render cut where the answer starts."""
    prepared = prepare_messages(tokenizer, messages)
    if not prepared or prepared[-1]["role"] == "assistant":
        raise TemplateError("the conversation to continue must end with a user turn")
    # A stand-in answer that starts like prose (a letter), so a template space before it merges as in training.
    mark = "A" + fresh_chars("".join(m["content"] for m in prepared), 1)[0] * 2
    try:
        text = render(tokenizer, prepared + [{"role": "assistant", "content": mark}])
    except TemplateError:
        text = ""
    if text.count(mark) != 1:  # the template would not render a trailing answer: use its own prompt
        return tokenizer(render(tokenizer, prepared, add_generation_prompt=True), add_special_tokens=False)[
            "input_ids"]
    # Tokenize with an answer in place and keep the tokens before it: whitespace ending the prompt then splits
    # as it did in training (GPT-2-style regexes split '\n\n' differently at the end of a text).
    cut = text.index(mark)
    if not getattr(tokenizer, "is_fast", False):  # no offsets: tokenize the prompt alone
        return tokenizer(text[:cut], add_special_tokens=False)["input_ids"]
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return [i for i, (_, end) in zip(enc["input_ids"], enc["offset_mapping"]) if end <= cut]


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an assistant turn (every end marker the template uses, then eos), for generation."""
    key = (template_key(tokenizer), len(tokenizer))
    cached = _STOPS.get(tokenizer)
    if cached is None or cached[0] != key:
        lay = layout(tokenizer, prepare_messages(tokenizer, PROBE))
        ids = [lay.ids[t.marker_token] for t in lay.turns]
        if tokenizer.eos_token_id is not None:
            ids.append(tokenizer.eos_token_id)
        cached = _STOPS[tokenizer] = (key, list(dict.fromkeys(ids)))
    return list(cached[1])
