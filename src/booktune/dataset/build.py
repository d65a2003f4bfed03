"""The prepare stage's output: cleaned text, conversations (HF dataset + JSONL) and stats.

DATA/
  text/<book>.txt          cleaned prose, one paragraph per line
  notes/<book>.notes.txt   footnote texts moved out of the prose (only for books that have some)
  train.jsonl, eval.jsonl  one conversation per line: id, book, title, author, lead_in, passage, messages
  dataset/                 the same as a `datasets.DatasetDict` (train / eval), for `load_from_disk`
  stats.json               counts and token lengths; written last, so its presence marks a complete DATA folder
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from booktune.dataset.chunk import Words
from booktune.dataset.format import make_record
from booktune.dataset.split import chapter_word_starts, split_book
from booktune.fsutil import atomic_dir, atomic_write_text


@dataclass
class BookRows:
    slug: str
    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    words: int
    gap_words: int
    split_by: str = "paragraphs"


@dataclass
class Prepared:
    out: Path
    rows: list[BookRows] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def train(self) -> list[dict[str, Any]]:
        return [r for b in self.rows for r in b.train]

    @property
    def eval(self) -> list[dict[str, Any]]:
        return [r for b in self.rows for r in b.eval]


def book_slug(path: Path, taken: set[str]) -> str:
    """A file-safe, unique name for a book."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("_") or "book"
    base, n = slug, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


def is_named(path: Path, names: list[str] | tuple[str, ...]) -> bool:
    """True when `path` is named in `names` by file name or stem (as `--eval-books` takes them)."""
    return any(n in (path.name, path.stem) for n in names)


def book_rows(book: Any, slug: str, *, chunk_words: int, overlap_words: int, eval_fraction: float,
              system_prompt: str, user_prompt: str, hold_out: bool = False) -> BookRows:
    """Chunk and format one book into train and eval conversations (all eval when `hold_out`)."""
    words = Words.from_text(book.text)
    starts = chapter_word_starts(book.text, [c.start for c in getattr(book, "chapters", [])])
    split = split_book(words, eval_fraction=eval_fraction, target=chunk_words, overlap=overlap_words,
                       chapter_starts=starts, hold_out=hold_out)
    author = book.author or "the author"
    fmt = {"title": book.title, "author": author, "system_prompt": system_prompt, "user_prompt": user_prompt}
    train = [make_record(book=slug, index=i, lead_in=c.lead_in, passage=c.passage, **fmt)
             for i, c in enumerate(split.train)]
    held = [make_record(book=slug, index=len(train) + i, lead_in=c.lead_in, passage=c.passage, **fmt)
            for i, c in enumerate(split.eval)]
    return BookRows(slug, train, held, len(words), split.gap_words, split.by)


def write_texts(out: Path, books: list[Any], slugs: list[str]) -> None:
    with atomic_dir(out / "text") as tmp:
        for book, slug in zip(books, slugs):
            (tmp / f"{slug}.txt").write_text(book.text.rstrip() + "\n", encoding="utf-8")
    with atomic_dir(out / "notes") as tmp:
        for book, slug in zip(books, slugs):
            if book.notes:
                (tmp / f"{slug}.notes.txt").write_text("\n".join(book.notes) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_dataset(out: Path, train: list[dict[str, Any]], held: list[dict[str, Any]]) -> None:
    """The conversations as a `datasets.DatasetDict`, plus the JSONL view."""
    from datasets import Dataset, DatasetDict, disable_progress_bars

    disable_progress_bars()  # a sub-second write; its bars would only clutter the stats table

    write_jsonl(out / "train.jsonl", train)
    write_jsonl(out / "eval.jsonl", held)
    columns = ["id", "book", "title", "author", "lead_in", "passage", "messages"]
    splits = {name: Dataset.from_list(rows) if rows else Dataset.from_dict({c: [] for c in columns})
              for name, rows in (("train", train), ("eval", held))}
    with atomic_dir(out / "dataset") as tmp:
        DatasetDict(splits).save_to_disk(str(tmp))
