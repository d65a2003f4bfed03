"""Expand the user's inputs (files and folders) into the list of book files to read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from booktune.ingest.dispatch import READERS
from booktune.ingest.types import BookError
from booktune.outputs import is_output_folder

SUPPORTED_SUFFIXES = tuple(READERS)


@dataclass
class Found:
    books: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (folder, why it was not read)


def _supported(path: Path) -> bool:
    # Hidden files include macOS '._name.pdf' resource forks, which are not books.
    return path.suffix.lower() in SUPPORTED_SUFFIXES and not path.name.startswith(".")


def _walk(folder: Path, found: Found) -> list[Path]:
    """Book files below `folder`, sorted, following symlinked folders once each (a link loop is walked once).
    A folder booktune wrote (it holds a manifest) is skipped whole, and said so: its text/ is not a shelf of books."""
    books, seen = [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        here = Path(root)
        real = here.resolve()
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        if here != folder and is_output_folder(here):
            found.skipped.append((str(here), "a folder booktune wrote (its output is never read back as books)"))
            dirs.clear()
            continue
        dirs.sort()
        books += [here / f for f in files if _supported(here / f) and (here / f).is_file()]
    return sorted(books)


def discover(inputs: Sequence[str | Path]) -> Found:
    """Expand files and folders (recursively, sorted) into book files, each listed once, and the folders skipped.

    Raises BookError for a missing path, an unsupported single file, or a folder with no supported files.
    """
    found = Found()
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            books = _walk(path, found)
            if not books:
                raise BookError(path, f"no books in this folder (looked for {', '.join(SUPPORTED_SUFFIXES)})")
            found.books += books
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                kind = f"'{path.suffix}'" if path.suffix else "with no suffix"
                raise BookError(path, f"unsupported file type {kind} (supported: {', '.join(SUPPORTED_SUFFIXES)})")
            found.books.append(path)
        elif path.exists():
            raise BookError(path, "not a regular file or folder")
        else:
            raise BookError(path, "no such file or folder")
    seen: set[Path] = set()
    found.books = [p for p in found.books if not (p.resolve() in seen or seen.add(p.resolve()))]
    return found


def find_books(inputs: Sequence[str | Path]) -> list[Path]:
    """The book files of `inputs` (see `discover`, which also says which folders it skipped)."""
    return discover(inputs).books
