"""Data types shared by every ingest reader (the ingest contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from booktune.errors import BooktuneError


@dataclass
class Chapter:
    title: str
    start: int  # character offset of the chapter heading in Book.text


@dataclass
class Book:
    path: Path
    title: str  # metadata title, else a title-cased file stem
    author: str | None  # metadata author, else None
    text: str  # one paragraph per line, a blank line between paragraphs
    notes: list[str]  # footnote / endnote texts, in order
    pages: int | None  # pages in the source (None for txt/md/epub)
    format: str  # "pdf" | "epub" | "txt" | "md"
    chapters: list[Chapter] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # text the reader had to give up on, said per file


class BookError(BooktuneError):
    """One bad book. str(err) is a one-line message that starts with the file path."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())  # keep the message on one line
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self):  # picklable across ProcessPoolExecutor boundaries
        return (BookError, (self.path, self.reason))


@dataclass
class Skipped:
    path: Path
    reason: str
