"""Hold out part of each book for evaluation, before chunking, with an untrained gap in between.

A random split of overlapping chunks would put a training neighbour beside almost every eval chunk. Instead each
book is cut once into a contiguous training head and a held-out tail, separated by a gap of one passage whose words
are never trained. Where the book's chapters are known the tail starts at a chapter heading (whole chapters are held
out), as long as that keeps the held-out share within a factor of two of `eval_fraction`; otherwise it starts at a
paragraph. A book named in `--eval-books` is held out whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from booktune.dataset.chunk import Chunk, Words, best_cut, chunk_words

SplitKind = Literal["chapters", "paragraphs", "whole book", "none"]


@dataclass(frozen=True)
class BookSplit:
    train: list[Chunk]
    eval: list[Chunk]
    gap_words: int
    by: SplitKind = "paragraphs"  # how the held-out section was chosen


def paragraph_start_near(words: Words, index: int) -> int:
    """The first word of the paragraph that contains or follows word `index`."""
    for i in range(max(0, index - 1), len(words) - 1):
        if words.seps[i] == "\n\n":
            return i + 1
    return index


def paragraph_start_before(words: Words, index: int) -> int:
    """The first word of the paragraph that contains word `index` (0 when there is none before it)."""
    for i in range(min(index, len(words) - 1), 0, -1):
        if words.seps[i - 1] == "\n\n":
            return i
    return 0


def chapter_word_starts(text: str, char_starts: Sequence[int]) -> list[int]:
    """Word indices (as counted by `Words.from_text`) of chapter headings given as character offsets."""
    return sorted({len(text[: max(0, c)].split()) for c in char_starts})


def pick_chapter(starts: Sequence[int], n: int, eval_words: int, target: int) -> int | None:
    """The chapter start nearest the ideal held-out start whose tail is 0.5-2x `eval_words` and leaves room for
    a gap and some training text before it; None when no chapter fits."""
    ideal = n - eval_words
    fits = [s for s in starts if eval_words / 2 <= n - s <= 2 * eval_words and s >= 2 * target]
    return min(fits, key=lambda s: abs(s - ideal)) if fits else None


def split_book(words: Words, *, eval_fraction: float, target: int, overlap: int,
               chapter_starts: Sequence[int] = (), hold_out: bool = False) -> BookSplit:
    """Train passages from the head of the book, eval passages from its tail, one passage of gap between.

    `chapter_starts` are word indices of chapter headings (see `chapter_word_starts`); `hold_out` makes the
    whole book eval text."""
    n = len(words)
    if hold_out:
        return BookSplit([], chunk_words(words, 0, n, target=target, overlap=overlap), 0, "whole book")
    eval_words = int(n * eval_fraction)
    if eval_fraction <= 0 or eval_words < target:  # too little to hold out a whole passage
        return BookSplit(chunk_words(words, 0, n, target=target, overlap=overlap), [], 0, "none")
    chapter = pick_chapter(chapter_starts, n, eval_words, target)
    if chapter is not None:  # the gap is the passage before the heading; eval starts on the heading
        cut, eval_start, by = paragraph_start_before(words, chapter - target), chapter, "chapters"
    else:
        cut = paragraph_start_near(words, n - eval_words - target)
        eval_start, by = best_cut(words, cut, target, n), "paragraphs"  # eval starts on a sentence end
    train = chunk_words(words, 0, cut, target=target, overlap=overlap)
    held = chunk_words(words, eval_start, n, target=target, overlap=overlap, lead_floor=cut)
    return BookSplit(train, held, eval_start - cut, by)
