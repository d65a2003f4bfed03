"""Books that go wrong: markup in names and text, text a reader can keep only in part, an EPUB member too big to
read, and booktune's own bugs, which are never passed off as bad books."""

from __future__ import annotations

import zipfile

import pytest

from booktune.ingest import BookError, load_book
from tests.ingest.test_ingest_epub import build_epub
from tests.reliability.conftest import cli, one_line_error

PROSE = "It was [/i] a [bold]plain[/] line of [red]prose[/red], " * 80


def test_markup_in_a_book_name_and_its_text_is_printed_as_text(tmp_path, tiny_model_dir):
    books = tmp_path / "[b]shelf[i]"
    (books / "[").mkdir(parents=True)  # so that the book's path reads .../[/b]weird[i].txt
    (books / "[/b]weird[i].txt").write_text(PROSE + "\n\nAnother [/i] paragraph. " * 40)
    (books / "[/i]empty.txt").write_text("")
    result = cli("prepare", books, "--out", tmp_path / "data", "--model", tiny_model_dir, "--chunk-words", 100,
                 "--overlap-words", 10)
    assert result.exit_code == 0, result.output
    assert "[/i]empty.txt" in result.output  # the skipped book, named as it is
    one_line_error(cli("prepare", tmp_path / "[/b]missing.txt", "--out", tmp_path / "d2"), "[/b]missing.txt")


def test_the_run_summary_prints_sample_text_as_text(capsys):
    from booktune.evaluation.compare import Comparison
    from booktune.report.summary import print_summary

    sample = Comparison("[/b]id", "lead [/i] in", "base [bold]", "tuned [/]", "author [red]")
    print_summary([sample], {}, {}, {"[/b]file": "/tmp/[/i]x"}, 1.0)
    out = capsys.readouterr().out
    for text in ("[/b]id", "base [bold]", "tuned [/]", "author [red]", "/tmp/[/i]x"):
        assert text in out


def test_an_xhtml_chapter_kept_only_in_part_is_said_with_its_words(tmp_path):
    paras = "".join(f"<p>word{i} alpha beta gamma delta.</p>" for i in range(200))
    path = build_epub(tmp_path / "b.epub", [("c1.xhtml", f"<h2>One</h2>{paras}"), ("c2.xhtml", paras)])
    # the chapter as a broken file holds it (ebooklib would repair it on writing): an unclosed attribute
    # swallows what follows it
    broken = ('<html xmlns="http://www.w3.org/1999/xhtml"><head><title>c2</title></head><body>'
              + paras[:2000] + '<p class="x>' + paras[2000:] + "</body></html>")
    replace_member(path, "EPUB/c2.xhtml", broken.encode())
    book = load_book(path)
    assert len(book.warnings) == 1
    assert book.warnings[0].startswith("c2.xhtml: malformed XHTML; kept ") and "of about 1,00" in book.warnings[0]


def replace_member(path, name: str, data: bytes) -> None:
    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    assert name in [info.filename for info, _ in members], [info.filename for info, _ in members]
    with zipfile.ZipFile(path, "w") as zf:
        for info, content in members:
            zf.writestr(info, data if info.filename == name else content)


def test_an_epub_member_too_big_to_read_is_refused_before_it_is_read(tmp_path):
    path = build_epub(tmp_path / "big.epub", [("c1.xhtml", "<p>Some words here.</p>")])
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("OEBPS/zeros.bin", b"\0" * (65 * 2**20))
    with pytest.raises(BookError, match="zeros.bin unpacks to 65 MiB, over the 64 MiB"):
        load_book(path)


def test_a_bug_in_booktune_is_not_called_a_bad_book(tmp_path, monkeypatch):
    from booktune.ingest import text

    monkeypatch.setattr(text, "text_paragraphs", None)  # booktune's reader now calls None: a bug of its own
    (tmp_path / "a.txt").write_text("words")
    with pytest.raises(BookError, match="a bug in booktune stopped this book .TypeError at "
                                        "text.py:\\d+.; rerun with --debug"):
        load_book(tmp_path / "a.txt")
    monkeypatch.setenv("BOOKTUNE_DEBUG", "1")
    with pytest.raises(TypeError):
        load_book(tmp_path / "a.txt")


def test_a_reader_library_failing_on_a_bad_file_is_a_bad_book(tmp_path):
    path = tmp_path / "bad.epub"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
    with pytest.raises(BookError, match="bad.epub: ") as e:
        load_book(path)
    assert "bug" not in str(e.value)
