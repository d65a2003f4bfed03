"""EPUB reader: real EPUB files built with ebooklib, read back through load_book."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from ebooklib import epub

from booktune.ingest import BookError, load_book
from booktune.ingest.epub.xhtml import ParagraphWalker, parse_xhtml


def build_epub(path: Path, docs: list[tuple[str, str]], *, spine: list[str] | None = None, toc: bool = True,
               guide: list[dict] | None = None, options: dict | None = None) -> Path:
    """docs: (file name, <body> inner XHTML). Spine follows `spine` (file names) or the docs' order."""
    book = epub.EpubBook()
    book.set_identifier("test-book")
    book.set_title("The Test Book")
    book.set_language("en")
    book.add_author("Ann Author")
    items = {}
    for name, body in docs:
        item = epub.EpubHtml(title=name, file_name=name, lang="en")
        item.content = f"<html><head><title>{name}</title></head><body>{body}</body></html>"
        book.add_item(item)
        items[name] = item
    book.add_item(epub.EpubNav())
    book.add_item(epub.EpubNcx())
    order = spine or [name for name, _ in docs]
    book.spine = ["nav"] + [items[n] for n in order]
    book.toc = [epub.Link(n, title, n) for n, title in _titles(docs) if title] if toc else []
    book.guide = guide or []
    epub.write_epub(str(path), book, options or {})
    return path


def _titles(docs):
    for name, body in docs:
        m = re.search(r"<h\d[^>]*>(.*?)</h\d>", body)
        yield name, m.group(1) if m else None


COVER = '<section epub:type="cover"><p>Cover art caption</p></section>'
TITLEPAGE = '<section epub:type="titlepage"><p>The Test Book</p><p>Ann Author</p></section>'
COPYRIGHT = '<section epub:type="copyright-page"><p>Copyright © 2024 Ann Author. All rights reserved.</p></section>'
CHAPTER1 = (
    '<section epub:type="chapter"><h2>The Pond</h2>'
    '<p>First paragraph with a note<a href="endnotes.xhtml#note-1" id="noteref-1" epub:type="noteref">1</a> in it.</p>'
    '<blockquote epub:type="z3998:poem"><p><span>Line one of verse,</span><br/><span>line two of verse.</span></p>'
    '<p><span>A second stanza</span><br/><span>ends here.</span></p></blockquote>'
    '<p>Em<em>phas</em>is and<span epub:type="pagebreak" title="5">5</span> a page break.</p></section>'
)
CHAPTER2 = (
    '<section epub:type="chapter"><h2>Sounds</h2>'
    '<p>Second chapter text<a href="#fn-a" epub:type="noteref">*</a> goes on.</p>'
    '<aside epub:type="footnote" id="fn-a"><p>* A footnote in the chapter itself.</p></aside>'
    '<ul><li>A listed item.</li><li>Another <strong>item</strong>.</li></ul></section>'
)
ENDNOTES = (
    '<section epub:type="endnotes"><h2>Endnotes</h2><ol><li id="note-1" epub:type="endnote">'
    '<p>The endnote text. <a href="chapter1.xhtml#noteref-1" epub:type="backlink">↩</a></p></li></ol></section>'
)
COLOPHON = '<section epub:type="colophon"><p>Set in a fine typeface.</p></section>'


@pytest.fixture
def semantic_epub(tmp_path: Path) -> Path:
    docs = [("cover.xhtml", COVER), ("titlepage.xhtml", TITLEPAGE), ("copyright.xhtml", COPYRIGHT),
            ("chapter1.xhtml", CHAPTER1), ("chapter2.xhtml", CHAPTER2), ("endnotes.xhtml", ENDNOTES),
            ("colophon.xhtml", COLOPHON)]
    return build_epub(tmp_path / "semantic.epub", docs)


def test_prose_notes_and_metadata(semantic_epub: Path) -> None:
    book = load_book(semantic_epub)
    assert book.format == "epub" and book.pages is None
    assert (book.title, book.author) == ("The Test Book", "Ann Author")
    assert book.text == (
        "The Pond\n\n"
        "First paragraph with a note in it.\n\n"
        "Line one of verse, line two of verse.\n\n"
        "A second stanza ends here.\n\n"
        "Emphasis and a page break.\n\n"
        "Sounds\n\n"
        "Second chapter text goes on.\n\n"
        "A listed item.\n\n"
        "Another item."
    )
    # Endnote first (referenced first), then the in-chapter footnote; markers and backlinks gone.
    assert book.notes == ["The endnote text.", "* A footnote in the chapter itself."]


def test_front_and_back_matter_left_out(semantic_epub: Path) -> None:
    text = load_book(semantic_epub).text
    for leaked in ("Cover art", "Copyright", "Ann Author", "typeface", "Endnotes", "↩"):
        assert leaked not in text


def test_chapters_follow_spine_not_manifest(tmp_path: Path) -> None:
    docs = [("b.xhtml", "<h1>Second</h1><p>Bee.</p>"), ("a.xhtml", "<h1>First</h1><p>Ay.</p>"),
            ("c.xhtml", "<h1>Third</h1><p>See.</p>")]
    book = load_book(build_epub(tmp_path / "order.epub", docs, spine=["a.xhtml", "b.xhtml", "c.xhtml"]))
    assert book.text == "First\n\nAy.\n\nSecond\n\nBee.\n\nThird\n\nSee."
    assert [c.title for c in book.chapters] == ["First", "Second", "Third"]
    for chapter in book.chapters:
        assert book.text[chapter.start :].startswith(chapter.title)


def test_chapters_from_headings_without_toc(semantic_epub: Path, tmp_path: Path) -> None:
    docs = [("one.xhtml", "<h2>Alpha</h2><p>Text one.</p>"), ("two.xhtml", "<p>No heading.</p>"),
            ("three.xhtml", "<h2>Gamma</h2><p>Text three.</p>")]
    book = load_book(build_epub(tmp_path / "notoc.epub", docs, toc=False))
    starts = [(c.title, book.text[c.start : c.start + 5]) for c in book.chapters]
    assert starts == [("Alpha", "Alpha"), ("Gamma", "Gamma")]


@pytest.mark.parametrize("source", ["landmarks", "guide"])
def test_unmarked_matter_skipped_by_landmarks_or_guide(tmp_path: Path, source: str) -> None:
    # No epub:type anywhere in the documents: only the EPUB 3 landmarks (or the EPUB 2 guide) say what they are.
    docs = [("title.xhtml", "<p>A Plain Book</p><p>Publisher Name, London</p>"),
            ("thanks.xhtml", "<p>I thank my editor, my dog and my bank.</p>"),
            ("ch1.xhtml", "<h1>Chapter One</h1><p>The story starts.</p>")]
    guide = [{"href": "title.xhtml", "title": "Title", "type": "title-page"},
             {"href": "thanks.xhtml", "title": "Thanks", "type": "acknowledgements"},
             {"href": "ch1.xhtml", "title": "Start", "type": "text"}]
    options = {"epub2_guide": False} if source == "landmarks" else {"epub3_landmark": False}
    book = load_book(build_epub(tmp_path / f"{source}.epub", docs, guide=guide, options=options))
    assert book.text == "Chapter One\n\nThe story starts."


def test_unmarked_contents_and_copyright_pages_skipped(tmp_path: Path) -> None:
    docs = [("toc.xhtml", '<p><a href="ch1.xhtml">Chapter One</a></p><p><a href="ch2.xhtml">Chapter Two</a></p>'),
            ("rights.xhtml", "<p>First published 1854. Copyright © Somebody. ISBN 978-0-00-000000-0.</p>"),
            ("ch1.xhtml", "<h1>Chapter One</h1><p>One.</p>"), ("ch2.xhtml", "<h1>Chapter Two</h1><p>Two.</p>")]
    book = load_book(build_epub(tmp_path / "plain.epub", docs))
    assert book.text == "Chapter One\n\nOne.\n\nChapter Two\n\nTwo."


def test_footnotes_without_semantics(tmp_path: Path) -> None:
    # Calibre/Word style: a superscript link to a paragraph that links back.
    body = ('<h1>Notes Chapter</h1><p>A claim<sup><a href="#fn1" id="ref1">1</a></sup> and another'
            '<sup>[<a href="#fn2" id="ref2">2</a>]</sup> claim, and a <a href="#sec2">cross reference</a>.</p>'
            '<p id="sec2">Section two.</p><hr/>'
            '<p id="fn1"><a href="#ref1">1</a>. The first note.</p>'
            '<p id="fn2"><sup><a href="#ref2">2</a></sup> The second note.</p>')
    book = load_book(build_epub(tmp_path / "calibre.epub", [("ch.xhtml", body)]))
    assert book.text == "Notes Chapter\n\nA claim and another claim, and a cross reference.\n\nSection two."
    assert book.notes == ["The first note.", "The second note."]


def test_html_entities_and_nested_blocks() -> None:
    raw = (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>'
           b"<div>Loose&nbsp;text &mdash; before<p>a block</p>and after<br/>a break</div>"
           b"<div class=\"stanza\"><div class=\"line\">Verse one</div><div class=\"line\">verse two</div></div>"
           b"<table><tr><td>cell</td></tr></table></body></html>")
    walker = ParagraphWalker(set())
    walker.visit(parse_xhtml(raw))
    walker.flush()
    assert [p.text for p in walker.paras] == ["Loose\u00a0text \u2014 before", "a block", "and after a break",
                                              "Verse one verse two"]


def _without_spine(src: Path, dst: Path) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith(".opf"):
                data = re.sub(rb"<spine.*?</spine>", b"", data, flags=re.S)
            zout.writestr(info, data)
    return dst


def test_epub_without_spine_is_a_one_line_error(semantic_epub: Path, tmp_path: Path) -> None:
    bad = _without_spine(semantic_epub, tmp_path / "nospine.epub")
    with pytest.raises(BookError) as err:
        load_book(bad)
    assert str(err.value) == f"{bad}: EPUB has no spine (the reading order in its OPF package file)"


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"just some text, not a zip"])
def test_broken_epub_is_a_one_line_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "broken.epub"
    bad.write_bytes(content)
    with pytest.raises(BookError) as err:
        load_book(bad)
    message = str(err.value)
    assert message.startswith(f"{bad}: ") and "\n" not in message


CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"


def _standard_ebooks_epub(slug: str, out: Path) -> tuple[Path, str, list[str]]:
    """A whole book laid out the way Standard Ebooks does (their XHTML is the corpus's source): title page,
    imprint, one document per chapter with <hgroup> headings, endnotes with backlinks, colophon, uncopyright."""
    from html import escape

    truth = (CORPUS / f"{slug}.truth.txt").read_text(encoding="utf-8").strip()
    notes = [n for n in (CORPUS / f"{slug}.notes.txt").read_text(encoding="utf-8").split("\n") if n.strip()]
    meta = json.loads((CORPUS / f"{slug}.meta.json").read_text(encoding="utf-8"))
    heads = [h[0] for h in meta["chapters"]]
    chapters: list[list[str]] = []
    paras = truth.split("\n\n")
    i = 0
    while i < len(paras):
        if chapters and paras[i] not in heads:
            chapters[-1].append(f"<p>{escape(paras[i])}</p>")
            i += 1
            continue
        lines = meta["chapters"][len(chapters)]
        hgroup = (f'<hgroup><h2 epub:type="ordinal">{escape(lines[0])}</h2><p epub:type="title">{escape(lines[1])}</p>'
                  f"</hgroup>" if len(lines) == 2 else f'<h2 epub:type="title">{escape(lines[0])}</h2>')
        chapters.append([hgroup])
        i += len(lines)
    for n in range(len(notes)):  # a reference at the end of the n-th chapter's first paragraph
        chapters[n][1] = chapters[n][1].replace(
            "</p>", f'<a href="endnotes.xhtml#note-{n + 1}" id="noteref-{n + 1}" epub:type="noteref">{n + 1}</a></p>')
    endnotes = "".join(
        f'<li id="note-{n + 1}" epub:type="endnote"><p>{escape(t)} '
        f'<a href="chapter-{n + 1}.xhtml#noteref-{n + 1}" epub:type="backlink">↩</a></p></li>'
        for n, t in enumerate(notes))
    docs = [("titlepage.xhtml", f'<section epub:type="titlepage"><h1 epub:type="fulltitle">{meta["title"]}</h1>'
                                f'<p>By <b epub:type="z3998:author-name">{meta["author"]}</b>.</p></section>'),
            ("imprint.xhtml", '<section epub:type="imprint"><h2 epub:type="title">Imprint</h2>'
                              "<p>This ebook is the product of many hours of hard work by volunteers.</p></section>")]
    docs += [(f"chapter-{k + 1}.xhtml", f'<section epub:type="chapter">{"".join(body)}</section>')
             for k, body in enumerate(chapters)]
    docs += [("endnotes.xhtml", f'<section epub:type="endnotes"><h2 epub:type="title">Endnotes</h2><ol>{endnotes}</ol>'
                                "</section>"),
             ("colophon.xhtml", '<section epub:type="colophon"><h2 epub:type="title">Colophon</h2>'
                                "<p>The text was set in League Spartan.</p></section>"),
             ("uncopyright.xhtml", '<section epub:type="copyright-page"><h2 epub:type="title">Uncopyright</h2>'
                                   "<p>May you do good and not evil.</p></section>")]
    return build_epub(out, docs), truth, notes


@pytest.mark.parametrize("slug", ["russell_problems-of-philosophy", "thoreau_walden"])
def test_whole_book_round_trip(tmp_path: Path, slug: str) -> None:
    if not CORPUS.exists():
        pytest.skip("../shared/corpus is not here")
    path, truth, notes = _standard_ebooks_epub(slug, tmp_path / f"{slug}.epub")
    book = load_book(path)
    assert book.text == truth
    assert book.notes == notes
    meta = json.loads((CORPUS / f"{slug}.meta.json").read_text(encoding="utf-8"))
    assert [book.text[c.start :].split("\n\n")[0] for c in book.chapters] == [h[0] for h in meta["chapters"]]


EPUB2_FILES = {
    "mimetype": "application/epub+zip",
    "META-INF/container.xml": '<?xml version="1.0"?><container version="1.0" '
    'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" '
    'media-type="application/oebps-package+xml"/></rootfiles></container>',
    "OEBPS/content.opf": '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="2.0" '
    'unique-identifier="uid"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:opf="http://www.idpf.org/2007/opf"><dc:title>  Old   Book </dc:title><dc:identifier id="uid">u1'
    '</dc:identifier><dc:creator opf:role="trl">A Translator</dc:creator><dc:creator opf:role="aut">Real Author'
    '</dc:creator></metadata><manifest><item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
    '<item id="t" href="Text/title.xhtml" media-type="application/xhtml+xml"/>'
    '<item id="c2" href="Text/ch%202.xhtml" media-type="application/xhtml+xml"/>'
    '<item id="c1" href="Text/ch1.xhtml" media-type="application/xhtml+xml"/>'
    '<item id="n" href="Text/notes.xhtml" media-type="application/xhtml+xml"/></manifest>'
    '<spine toc="ncx"><itemref idref="t"/><itemref idref="c1"/><itemref idref="c2"/><itemref idref="n"/></spine>'
    '<guide><reference type="title-page" href="Text/title.xhtml" title="Title"/></guide></package>',
    "OEBPS/toc.ncx": '<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
    "<navMap>"
    '<navPoint id="p1"><navLabel><text>Chapter the First</text></navLabel><content src="Text/ch1.xhtml"/></navPoint>'
    '<navPoint id="p2"><navLabel><text>Chapter the Second</text></navLabel><content src="Text/ch%202.xhtml"/>'
    "</navPoint></navMap></ncx>",
    "OEBPS/Text/title.xhtml": "<html><body><h1>Old Book</h1><p>Real Author</p></body></html>",
    "OEBPS/Text/ch1.xhtml": '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
    '"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd"><html xmlns="http://www.w3.org/1999/xhtml"><body>'
    '<h2 class="chapter">I</h2><p>A word<sup><a href="../Text/notes.xhtml#n1" id="r1">1</a></sup> and more&nbsp;text '
    "&mdash; to the end&hellip;</p></body></html>",
    "OEBPS/Text/ch 2.xhtml": "<html><body><h2>II</h2><p>Second.</p></body></html>",
    "OEBPS/Text/notes.xhtml": '<html><body><h2>Notes</h2><div class="footnotes"><p id="n1"><a href="ch1.xhtml#r1">'
    "[1]</a> Note one&rsquo;s body.</p></div></body></html>",
}


def test_epub2_ncx_subfolders_entities_and_plain_notes(tmp_path: Path) -> None:
    path = tmp_path / "old.epub"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in EPUB2_FILES.items():
            zf.writestr(name, text)
    book = load_book(path)
    assert (book.title, book.author) == ("Old Book", "Real Author")
    assert book.text == "I\n\nA word and more text — to the end…\n\nII\n\nSecond."
    assert book.notes == ["Note one’s body."]
    assert [(c.title, c.start) for c in book.chapters] == [("Chapter the First", 0),
                                                           ("Chapter the Second", book.text.index("II"))]
