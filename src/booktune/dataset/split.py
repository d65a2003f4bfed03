"""Hold out the end of each book for evaluation, before chunking, with an untrained gap in between.

A random split of overlapping chunks would put a training neighbour beside almost every eval chunk. Splitting each
book into a contiguous training head and held-out tail, separated by a gap of one passage whose words are never
trained, keeps the eval text unseen.
"""

from __future__ import annotations

from dataclasses import dataclass

from booktune.dataset.chunk import Chunk, Words, best_cut, chunk_words


@dataclass(frozen=True)
class BookSplit:
    train: list[Chunk]
    eval: list[Chunk]
    gap_words: int


def paragraph_start_near(words: Words, index: int) -> int:
    """The first word of the paragraph that contains or follows word `index`."""
    for i in range(max(0, index - 1), len(words) - 1):
        if words.seps[i] == "\n\n":
            return i + 1
    return index


def split_book(words: Words, *, eval_fraction: float, target: int, overlap: int) -> BookSplit:
    """Train passages from the head of the book, eval passages from its tail, one passage of gap between."""
    n = len(words)
    eval_words = int(n * eval_fraction)
    if eval_fraction <= 0 or eval_words < target:  # too little to hold out a whole passage
        return BookSplit(chunk_words(words, 0, n, target=target, overlap=overlap), [], 0)
    cut = paragraph_start_near(words, n - eval_words - target)
    eval_start = best_cut(words, cut, target, n)  # the gap ends on a sentence end, so eval passages start clean
    train = chunk_words(words, 0, cut, target=target, overlap=overlap)
    held = chunk_words(words, eval_start, n, target=target, overlap=overlap, lead_floor=cut)
    return BookSplit(train, held, eval_start - cut)
