"""Cut a book's prose into passages of about N words that end on sentence ends where possible.

Passages are contiguous and do not overlap: the overlap is the *lead-in*, the words before a passage that the user
turn quotes, so no text is ever trained twice. A passage never cuts a word, and keeps the book's paragraph breaks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A word ends a sentence when it ends with . ! ? (or an ellipsis), maybe followed by closing quotes/brackets.
_SENTENCE_END = re.compile(r"(?:[.!?]|\.\.\.|…)[\"'”’»)\]]*$")
# How far from the target length a sentence end may move the cut, as a share of the target.
_SLACK = 0.25


@dataclass(frozen=True)
class Words:
    """A text as words, each with the separator that follows it (' ' inside a paragraph, '\\n\\n' after one)."""

    words: list[str]
    seps: list[str]

    @classmethod
    def from_text(cls, text: str) -> Words:
        words: list[str] = []
        seps: list[str] = []
        for para in re.split(r"\n\s*\n|\n", text):
            tokens = para.split()
            if not tokens:
                continue
            words.extend(tokens)
            seps.extend([" "] * (len(tokens) - 1) + ["\n\n"])
        return cls(words, seps)

    def __len__(self) -> int:
        return len(self.words)

    def join(self, start: int, end: int) -> str:
        """Words [start, end) as text, paragraph breaks kept, no trailing separator."""
        parts: list[str] = []
        for i in range(start, end):
            parts.append(self.words[i])
            if i < end - 1:
                parts.append(self.seps[i])
        return "".join(parts)

    def is_sentence_end(self, i: int) -> bool:
        """True when a cut after word i falls on a sentence or paragraph end."""
        return self.seps[i] == "\n\n" or bool(_SENTENCE_END.search(self.words[i]))


@dataclass(frozen=True)
class Chunk:
    start: int  # index of the passage's first word in the book
    end: int  # one past its last word
    lead_in: str  # up to overlap_words words before the passage ('' at the start of a section)
    passage: str


def best_cut(words: Words, start: int, target: int, limit: int) -> int:
    """End index (exclusive) for a passage starting at `start`: the sentence end nearest to start+target within
    the slack, else exactly start+target. Never beyond `limit`."""
    ideal = min(start + target, limit)
    if ideal >= limit:
        return limit
    slack = max(1, int(target * _SLACK))
    best = None
    for end in range(max(start + 1, ideal - slack), min(limit, ideal + slack) + 1):
        if words.is_sentence_end(end - 1) and (best is None or abs(end - ideal) < abs(best - ideal)):
            best = end
    return best if best is not None else ideal


def chunk_words(
    words: Words, start: int, end: int, *, target: int, overlap: int, lead_floor: int | None = None
) -> list[Chunk]:
    """Passages covering words [start, end) of a book. A tail shorter than half a passage joins the one before.

    Lead-ins reach back no further than `lead_floor` (default `start`), so a held-out section can take its first
    lead-in from the untrained gap before it, and a training section never quotes held-out text."""
    floor = start if lead_floor is None else lead_floor
    chunks: list[Chunk] = []
    pos = start
    while pos < end:
        cut = best_cut(words, pos, target, end)
        if end - cut < target // 2:
            cut = end
        lead_start = max(floor, pos - overlap)
        chunks.append(Chunk(pos, cut, words.join(lead_start, pos), words.join(pos, cut)))
        pos = cut
    return chunks
