"""Labels by construction: the one function that turns a conversation into `input_ids` + `labels`.

Training, evaluation and `booktune preview` all call `build_example`. Labels are -100 everywhere except
each assistant answer and that turn's end-of-turn marker (so the model learns to stop). Every example is
verified as it is built: the trained tokens of each turn must decode to the answer, optional whitespace,
then the marker; where the template marks assistant output with `{% generation %}` blocks, the trained turns
must also agree with those (generation.py). Any mismatch raises MaskingError naming the example; no silently
wrong row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from booktune.errors import BooktuneError
from booktune.template.generation import check_generation_blocks, generation_blocks, has_generation_blocks
from booktune.template.locate import Layout, LocateError, layout
from booktune.template.messages import prepare_messages
from booktune.template.render import TemplateError, template_name

IGNORE = -100


@dataclass
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE except trained tokens, where it equals input_ids


class MaskingError(BooktuneError):
    """An example whose answer or end marker cannot be located and verified; one line naming the example."""


def build_example(
    tokenizer: Any, messages: list[dict], *, name: str = "example", train_reasoning: bool = False
) -> TokenizedExample:
    """Tokenize `messages` with the tokenizer's own chat template; train answers + end markers only.

    `train_reasoning=True` also trains an assistant message's reasoning (`thinking`, e.g. GPT-OSS's
    analysis channel) where the template renders it, from its first token through the answer.
    No truncation here: callers decide what to do with long examples.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise MaskingError(f"{name}: needs a fast (Rust) tokenizer for exact offsets")
    try:
        prepared = prepare_messages(tokenizer, messages)
        _check_answers(prepared, name)
        lay = layout(tokenizer, prepared, train_reasoning=train_reasoning)
        labels = [IGNORE] * len(lay.ids)
        for turn in lay.turns:
            labels[turn.first_token:turn.marker_token + 1] = lay.ids[turn.first_token:turn.marker_token + 1]
            _verify(tokenizer, lay, turn)
        if has_generation_blocks(tokenizer):
            rendered = lay.text[:lay.offsets[-1][0]] if lay.appended_eos else lay.text
            check_generation_blocks(tokenizer, lay, generation_blocks(tokenizer, prepared, rendered))
    except TemplateError as e:  # its message names the template already
        raise MaskingError(f"{name}: {e}") from None
    except LocateError as e:  # the template is the problem: name it (by its model)
        raise MaskingError(f"{name}: {template_name(tokenizer)}: {e}") from None
    return TokenizedExample(lay.ids, labels)


def _check_answers(prepared: list[dict], name: str) -> None:
    """Problems of the example itself, not of the template: the message does not name the template."""
    answers = [m for m in prepared if m["role"] == "assistant"]
    if not answers:
        raise MaskingError(f"{name}: no assistant turn to train on")
    for n, m in enumerate(answers, 1):
        if not m["content"]:
            raise MaskingError(f"{name}: assistant turn {n} is empty")


def _verify(tokenizer: Any, lay: Layout, turn: Any) -> None:
    """Trained tokens must decode to [whitespace] answer-text [whitespace] marker, nothing else."""
    ids = lay.ids[turn.first_token:turn.marker_token + 1]
    marker = tokenizer.convert_ids_to_tokens(ids[-1])
    expected = lay.text[turn.start:turn.answer[1]]
    decoded = _decode(tokenizer, lay.ids, turn.first_token, turn.marker_token + 1)
    body = decoded[: -len(marker)].strip()
    # A tokenizer's normalizer may change code points (Qwen2's NFC turns U+F900 into U+8C48): same text, new form.
    if decoded.endswith(marker) and (body == expected or _nfkc(body) == _nfkc(expected)):
        return
    raise LocateError(f"trained tokens decode to {_short(decoded)}, expected {_short(expected + marker)}")


def _nfkc(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", text)


def _decode(tokenizer: Any, ids: list[int], start: int, stop: int) -> str:
    """Text of ids[start:stop]; via a prefix difference when a direct decode loses characters (SentencePiece
    decoders strip the first space; a multi-byte character can be split across the span's first token)."""
    direct = tokenizer.decode(ids[start:stop], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    if "\ufffd" not in direct:
        return direct
    head = tokenizer.decode(ids[:start], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    full = tokenizer.decode(ids[:stop], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return full[len(head):] if full.startswith(head) else direct


def _short(text: str, width: int = 80) -> str:
    return repr(text if len(text) <= width else text[: width // 2] + " … " + text[-width // 2:])
