"""load_book: one file in, one Book out, or a one-line BookError; never any other exception."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from booktune.errors import bug_note, debugging, is_bug
from booktune.ingest.assemble import stem_title
from booktune.ingest.types import Book, BookError, Chapter


def _sniff_pdf(path: Path) -> None:
    """A '.pdf' must carry the %PDF header (the spec lets it sit anywhere in the first 1 KiB)."""
    with path.open("rb") as f:
        head = f.read(1024)
    if not head:
        raise BookError(path, "the file is empty")
    if b"%PDF-" not in head:
        looks = ("text" if head.isascii() or _is_utf8(head)
                 else "a ZIP archive (an EPUB or Office file?)" if head.startswith(b"PK\x03\x04")
                 else "some other binary format")
        raise BookError(path, f"not a PDF file (no %PDF header; it looks like {looks})")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(data) - 3  # a character cut by the 1 KiB read
    return True


def _load_pdf(path: Path, password: str | None, ocr: bool) -> Book:
    from booktune.ingest.pdf import extract_pdf

    _sniff_pdf(path)
    res = extract_pdf(path, password=password, ocr=ocr)
    chapters = [c if isinstance(c, Chapter) else Chapter(title=c[0], start=c[1]) for c in res.chapters or []]
    return Book(path=path, title=res.title or stem_title(path), author=res.author, text=res.text,
                notes=list(res.notes), pages=res.pages, format="pdf", chapters=chapters)


def _load_epub(path: Path, password: str | None, ocr: bool) -> Book:
    from booktune.ingest.epub import load_epub

    return load_epub(path)


def _load_text(path: Path, password: str | None, ocr: bool) -> Book:
    from booktune.ingest.text import load_text

    return load_text(path)


def _load_markdown(path: Path, password: str | None, ocr: bool) -> Book:
    from booktune.ingest.markdown import load_markdown

    return load_markdown(path)


# Suffix -> reader: a new format is one more entry here.
READERS: dict[str, Callable[[Path, str | None, bool], Book]] = {
    ".pdf": _load_pdf, ".epub": _load_epub, ".txt": _load_text, ".md": _load_markdown, ".markdown": _load_markdown,
}


def _read(path: Path, password: str | None, ocr: bool) -> Book:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise BookError(path, f"unsupported file type '{path.suffix.lower()}'")
    return reader(path, password, ocr)


def load_book(path: str | Path, *, password: str | None = None, ocr: bool = False) -> Book:
    """Read one book, dispatching on its suffix. Raises BookError (never another exception) for any bad input."""
    path = Path(path)
    if not path.is_file():
        raise BookError(path, "no such file" if not path.exists() else "not a regular file")
    try:
        book = _read(path, password, ocr)
    except BookError:
        raise
    except MemoryError:
        raise BookError(path, "ran out of memory reading this book") from None
    except Exception as e:  # a reader library's own failure on a malformed file: report it, don't crash the run
        if is_bug(e):
            if debugging():
                raise
            raise BookError(path, bug_note(e)) from None
        detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise BookError(path, f"could not read it ({type(e).__name__}{': ' + detail if detail else ''})") from None
    if not book.text.strip():
        raise BookError(path, "no text found")
    return book
