"""Show what a TokenizedExample trains: the whole rendered text, trained spans marked.

Rich mode: trained tokens bold green, masked tokens dim red, special tokens (the end marker included)
shown literally, e.g. `<|im_end|>`. Plain mode (`plain=True`, for logs): the same text with every
trained span wrapped in `[[` and `]]`, e.g. `...<|im_start|>assistant\\n[[The pond was still.<|im_end|>]]\\n`.
The brackets are not escaped: a literal `[[` in a book would print as is.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby
from typing import Any

from rich.text import Text

from booktune.template.labels import IGNORE, TokenizedExample

TRAINED_STYLE = "bold green"
MASKED_STYLE = "dim red"
OPEN, CLOSE = "[[", "]]"


def _runs(tokenizer: Any, example: TokenizedExample) -> list[tuple[bool, str]]:
    """(trained?, text) for each maximal run of tokens with the same status, decoded in context so that
    SentencePiece spaces and multi-byte characters split across runs come out right."""
    flags = [label != IGNORE for label in example.labels]
    runs, stop, previous = [], 0, ""
    for trained, group in groupby(flags):
        stop += len(list(group))
        text = tokenizer.decode(example.input_ids[:stop], skip_special_tokens=False,
                                clean_up_tokenization_spaces=False)
        runs.append((trained, text[len(previous):] if text.startswith(previous) else text))
        previous = text
    return runs


def render_preview(tokenizer: Any, example: TokenizedExample, *, plain: bool = False) -> Text | str:
    """A rich Text (or, with plain=True, a string with [[trained]] spans) of one example."""
    runs = _runs(tokenizer, example)
    if plain:
        return "".join(f"{OPEN}{text}{CLOSE}" if trained else text for trained, text in runs)
    out = Text()
    for trained, text in runs:
        out.append(text, style=TRAINED_STYLE if trained else MASKED_STYLE)
    return out


def mask_summary(examples: Iterable[TokenizedExample]) -> dict[str, int]:
    """Counts over examples: examples, tokens, trained_tokens, fully_masked (no trained token), longest."""
    out = {"examples": 0, "tokens": 0, "trained_tokens": 0, "fully_masked": 0, "longest": 0}
    for ex in examples:
        trained = sum(1 for label in ex.labels if label != IGNORE)
        out["examples"] += 1
        out["tokens"] += len(ex.input_ids)
        out["trained_tokens"] += trained
        out["fully_masked"] += trained == 0
        out["longest"] = max(out["longest"], len(ex.input_ids))
    return out
