"""The ingest front door: find_books, load_book dispatch and load_books over good and bad books."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from ebooklib import epub

from booktune.ingest import (
    SUPPORTED_SUFFIXES,
    Book,
    BookError,
    Skipped,
    find_books,
    load_book,
    load_books,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
CORPUS = SHARED / "corpus"
SLUGS = ["russell_problems-of-philosophy", "thoreau_walden"]


def one_line_error(err: pytest.ExceptionInfo, path: Path) -> str:
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


def touch(path: Path, data: bytes = b"text\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- find_books ---------------------------------------------------------------------------------------------------

def test_find_books_recurses_sorted_and_filters(tmp_path: Path) -> None:
    for name in ["b.txt", "a.EPUB", "sub/deep/c.md", "sub/d.markdown", "sub/e.pdf", "notes.docx", ".hidden.txt",
                 "sub/._e.pdf", "image.png"]:
        touch(tmp_path / name)
    found = find_books([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.EPUB", "b.txt", "sub/d.markdown", "sub/deep/c.md", "sub/e.pdf"]


def test_find_books_files_and_folders_once_each(tmp_path: Path) -> None:
    book = touch(tmp_path / "shelf" / "one.txt")
    touch(tmp_path / "shelf" / "two.txt")
    assert find_books([book, tmp_path / "shelf"]) == [book, tmp_path / "shelf" / "two.txt"]


def test_find_books_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(BookError) as err:
        find_books([missing])
    assert one_line_error(err, missing).endswith("no such file or folder")


def test_find_books_empty_folder(tmp_path: Path) -> None:
    touch(tmp_path / "readme.docx")
    with pytest.raises(BookError) as err:
        find_books([tmp_path])
    assert "no books in this folder" in one_line_error(err, tmp_path)


def test_find_books_unsupported_file(tmp_path: Path) -> None:
    doc = touch(tmp_path / "thesis.docx")
    with pytest.raises(BookError) as err:
        find_books([doc])
    message = one_line_error(err, doc)
    assert "'.docx'" in message and all(s in message for s in SUPPORTED_SUFFIXES)


# --- load_book ----------------------------------------------------------------------------------------------------

def test_renamed_text_file_is_not_a_pdf(tmp_path: Path) -> None:
    fake = touch(tmp_path / "fake.pdf", b"Chapter 1\n\nThis is a plain text file with a .pdf name.\n")
    with pytest.raises(BookError) as err:
        load_book(fake)
    assert one_line_error(err, fake).endswith("not a PDF file (no %PDF header; it looks like text)")


@pytest.mark.parametrize("name", ["missing.txt", "missing.pdf"])
def test_missing_book(tmp_path: Path, name: str) -> None:
    with pytest.raises(BookError) as err:
        load_book(tmp_path / name)
    one_line_error(err, tmp_path / name)


def test_truncated_real_pdf(tmp_path: Path) -> None:
    pdf = CORPUS / f"{SLUGS[1]}.pdf"
    if not pdf.exists():
        pytest.skip("../shared/corpus is not here")
    cut = touch(tmp_path / "cut.pdf", pdf.read_bytes()[:20_000])
    with pytest.raises(BookError) as err:
        load_book(cut)
    one_line_error(err, cut)


# --- load_books over a shelf of good and bad books --------------------------------------------------------------

def epub_without_spine(path: Path) -> Path:
    book = epub.EpubBook()
    book.set_identifier("x")
    book.set_title("Spineless")
    chapter = epub.EpubHtml(title="One", file_name="one.xhtml", lang="en")
    chapter.content = "<html><body><h1>One</h1><p>Some prose.</p></body></html>"
    book.add_item(chapter)
    book.add_item(epub.EpubNav())
    book.spine = ["nav", chapter]
    epub.write_epub(str(path.with_suffix(".tmp")), book)
    with zipfile.ZipFile(path.with_suffix(".tmp")) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith(".opf"):
                data = re.sub(rb"<spine.*?</spine>", b"", data, flags=re.S)
            zout.writestr(info, data)
    return path


CP1252_TEXT = "“Naïve,” said the café’s owner — déjà vu.\n\nA second paragraph, in Windows-1252.\n"


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CORPUS.exists():
        pytest.skip("../shared/corpus is not here")
    root = tmp_path_factory.mktemp("shelf")
    for slug in SLUGS:
        shutil.copy(CORPUS / f"{slug}.pdf", root / f"{slug}.pdf")
    touch(root / "bad" / "renamed.pdf", b"just text, renamed to .pdf\n")
    touch(root / "bad" / "empty.txt", b"")
    epub_without_spine(root / "bad" / "spineless.epub")
    touch(root / "good" / "windows.txt", CP1252_TEXT.encode("cp1252"))
    return root


@pytest.mark.parametrize("workers", [2, 1])
def test_load_books_skips_bad_books_and_keeps_order(shelf: Path, workers: int) -> None:
    paths = find_books([shelf])
    books, skipped = load_books(paths, workers=workers, progress=False)
    assert [b.path for b in books] == [p for p in paths if p.parent.name != "bad"]
    assert [s.path for s in skipped] == [shelf / "bad" / n for n in ("empty.txt", "renamed.pdf", "spineless.epub")]
    assert all(isinstance(s, Skipped) and s.reason and "\n" not in s.reason for s in skipped)
    assert "no %PDF header" in skipped[1].reason and "no spine" in skipped[2].reason

    windows = next(b for b in books if b.path.name == "windows.txt")
    assert windows.text == "“Naïve,” said the café’s owner — déjà vu.\n\nA second paragraph, in Windows-1252."
    for slug in SLUGS:
        book = next(b for b in books if b.path.stem == slug)
        meta = json.loads((CORPUS / f"{slug}.meta.json").read_text())
        assert isinstance(book, Book) and book.format == "pdf"
        assert (book.title, book.author, book.pages) == (meta["title"], meta["author"], meta["pages"])
        assert abs(len(book.text.split()) - meta["words"]) < 0.02 * meta["words"]


def test_load_books_shows_progress(shelf: Path, capsys: pytest.CaptureFixture) -> None:
    books, skipped = load_books([shelf / "good" / "windows.txt", shelf / "bad" / "empty.txt"], workers=1)
    assert (len(books), len(skipped)) == (1, 1)
    assert "Reading books" in capsys.readouterr().out


def test_load_books_empty_list() -> None:
    assert load_books([], progress=False) == ([], [])


def test_unexpected_reader_failure_becomes_book_error(tmp_path: Path) -> None:
    # Elements nested 1,500 deep exhaust Python's recursion in the XHTML walker: not a case the EPUB reader
    # handles itself, so it exercises load_book's catch-all, which must still give one line naming the file.
    deep = b"<html><body>" + b"<span>" * 1500 + b"deep" + b"</span>" * 1500 + b"</body></html>"
    book = epub.EpubBook()
    book.set_identifier("deep")
    item = epub.EpubItem(uid="c", file_name="c.xhtml", media_type="application/xhtml+xml", content=deep)
    book.add_item(item)
    book.add_item(epub.EpubNcx())
    book.spine = [item]
    path = tmp_path / "deep.epub"
    epub.write_epub(str(path), book)
    with pytest.raises(BookError) as err:
        load_book(path)
    assert "could not read it (RecursionError" in one_line_error(err, path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers fork only on Linux")
def test_load_books_from_a_script_on_stdin(shelf: Path) -> None:
    # A spawned worker re-runs the caller's __main__, which is impossible for `python - <<EOF` (and wrong for
    # scripts without a main guard); the pool must still read every book.
    script = (f"from booktune.ingest import load_books\nfrom pathlib import Path\n"
              f"books, skipped = load_books([Path({str(shelf / 'good' / 'windows.txt')!r}), "
              f"Path({str(shelf / 'bad' / 'empty.txt')!r})], workers=2, progress=False)\n"
              f"print(len(books), [s.reason for s in skipped])\n")
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "1 ['the file is empty']", out.stderr[-2000:]
