"""Opening PDFs safely: every failure becomes a one-line BookError naming the file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymupdf

from booktune.ingest.pdf.layout import Line, read_document
from booktune.ingest.types import BookError


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
    except OSError as err:
        raise BookError(path, f"cannot read file: {err.strerror or err}") from None
    if not head:
        raise BookError(path, "empty file")
    if b"%PDF-" not in head:
        raise BookError(path, "not a PDF file (no %PDF header)")


def _check_complete(doc: pymupdf.Document, path: Path) -> None:
    """A repaired file without its end-of-file marker was cut short: its text would be partial."""
    if not doc.is_repaired:
        return
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 2048))
        tail = fh.read()
    if b"%%EOF" not in tail:
        raise BookError(path, "truncated PDF (the file ends before its end-of-file marker)")


def _unlock(doc: pymupdf.Document, path: Path, password: str | None) -> None:
    if not doc.needs_pass:
        return
    if password is None:
        raise BookError(path, "encrypted PDF: give its password (--password)")
    if not doc.authenticate(password):
        raise BookError(path, "encrypted PDF: wrong password")


@contextmanager
def open_pdf(path: Path, password: str | None = None) -> Iterator[pymupdf.Document]:
    """Open, unlock and sanity-check a PDF; turn any reader failure into BookError."""
    if not path.is_file():
        raise BookError(path, "no such file")
    _check_header(path)
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as err:  # noqa: BLE001 - MuPDF raises several types for broken files
        raise BookError(path, f"cannot open PDF ({err})") from None
    try:
        _check_complete(doc, path)
        _unlock(doc, path, password)
        if doc.page_count == 0:
            raise BookError(path, "PDF has no readable pages (empty, truncated or damaged)")
        yield doc
    except BookError:
        raise
    except Exception as err:  # noqa: BLE001 - damaged objects surface while reading pages
        raise BookError(path, f"damaged PDF ({type(err).__name__}: {err})") from None
    finally:
        doc.close()


def _ocr_textpage(page: pymupdf.Page, path: Path):
    try:
        return page.get_textpage_ocr(full=True, dpi=300)
    except Exception as err:  # noqa: BLE001 - missing Tesseract / tessdata
        raise BookError(path, f"OCR failed (is Tesseract installed?): {err}") from None


def read_pages(doc: pymupdf.Document, path: Path, ocr: bool = False) -> list[list[Line]]:
    """Lines of every page. A PDF without a text layer needs ocr=True (never done silently)."""
    pages = read_document(list(doc))
    if any(pages):
        return pages
    if not ocr:
        raise BookError(path, "no text on any page (a scanned PDF without a text layer?); "
                              "use --ocr to run Tesseract OCR on it")
    pages = read_document(list(doc), lambda page: _ocr_textpage(page, path))
    if not any(pages):
        raise BookError(path, "no text found, even with OCR")
    return pages
