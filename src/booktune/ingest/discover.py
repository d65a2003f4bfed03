"""Expand the user's inputs (files and folders) into the list of book files to read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from booktune.ingest.types import BookError

SUPPORTED_SUFFIXES = (".pdf", ".epub", ".txt", ".md", ".markdown")


def _supported(path: Path) -> bool:
    # Hidden files include macOS '._name.pdf' resource forks, which are not books.
    return path.suffix.lower() in SUPPORTED_SUFFIXES and not path.name.startswith(".")


def find_books(inputs: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders (recursively, sorted) into book files, each listed once.

    Raises BookError for a missing path, an unsupported single file, or a folder with no supported files.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            books = sorted(p for p in path.rglob("*") if p.is_file() and _supported(p))
            if not books:
                raise BookError(path, f"no books in this folder (looked for {', '.join(SUPPORTED_SUFFIXES)})")
            found += books
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                kind = f"'{path.suffix}'" if path.suffix else "with no suffix"
                raise BookError(path, f"unsupported file type {kind} (supported: {', '.join(SUPPORTED_SUFFIXES)})")
            found.append(path)
        elif path.exists():
            raise BookError(path, "not a regular file or folder")
        else:
            raise BookError(path, "no such file or folder")
    seen: set[Path] = set()
    return [p for p in found if not (p.resolve() in seen or seen.add(p.resolve()))]
