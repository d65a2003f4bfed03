"""TXT and Markdown readers: encodings, line wrapping, markup stripping, footnotes, chapters."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from booktune.ingest import BookError, load_book
from booktune.ingest.text import text_paragraphs

WRAPPED = """\
CHAPTER I.

It was a bright cold day in April, and the clocks were striking
thirteen. Winston Smith, his chin nuzzled into his breast in an
effort to escape the vile wind, slipped quickly through the glass
doors of Victory Mansions, though not quickly enough to prevent a
swirl of gritty dust from entering along with him. The well-
known hallway smelt of boiled cabbage and old rag mats—
at one end of it a coloured poster had been tacked to the wall.

The philoso-
phy of the place was plain; everyone knew the philosophy by heart.

CHAPTER II.

As he put his hand to the door-knob Winston saw that he had left
the diary open on the table.
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_hard_wrapped_text_becomes_paragraphs(tmp_path: Path) -> None:
    book = load_book(write(tmp_path, "nineteen_eighty-four.txt", WRAPPED))
    paras = book.text.split("\n\n")
    assert paras[0] == "CHAPTER I."
    assert paras[1].startswith("It was a bright cold day in April, and the clocks were striking thirteen. Winston")
    # A line-end hyphen stays (a compound) unless the book spells the word joined; an em dash joins with no space.
    assert "The well-known hallway" in paras[1] and "old rag mats—at one end" in paras[1]
    assert paras[2] == "The philosophy of the place was plain; everyone knew the philosophy by heart."
    assert [c.title for c in book.chapters] == ["CHAPTER I.", "CHAPTER II."]
    assert all(book.text[c.start :].startswith(c.title) for c in book.chapters)
    assert (book.title, book.author, book.format, book.pages, book.notes) == (
        "Nineteen Eighty Four", None, "txt", None, [])


def test_one_paragraph_per_line(tmp_path: Path) -> None:
    lines = [f"Paragraph {i} is a single long line of prose that an editor saved without wrapping it, "
             f"as most modern text exports do, and it goes on for a while." for i in range(5)]
    book = load_book(write(tmp_path, "lines.txt", "\n".join(lines) + "\n"))
    assert book.text.split("\n\n") == lines


def test_wrapped_without_blank_lines_uses_indents_and_short_lines() -> None:
    body = ("    The first paragraph is wrapped at a fixed column and goes on\n"
            "for a second line and then ends here.\n"
            "    The second paragraph starts with an indent, like a printed\n"
            "book, and it is wrapped too, ending on a short line.\n") * 30
    paras = [p.text for p in text_paragraphs(body)]
    assert len(paras) == 60
    assert paras[0] == ("The first paragraph is wrapped at a fixed column and goes on "
                        "for a second line and then ends here.")


def test_gutenberg_boilerplate_is_cut(tmp_path: Path) -> None:
    text = ("The Project Gutenberg eBook of Walden\n\nTitle: Walden\n\nAuthor: Henry David Thoreau\n\n"
            "*** START OF THE PROJECT GUTENBERG EBOOK WALDEN ***\n\nWhen I wrote the following pages.\n\n"
            "*** END OF THE PROJECT GUTENBERG EBOOK WALDEN ***\n\nSection 1. General Terms of Use.\n")
    book = load_book(write(tmp_path, "pg205.txt", text, "utf-8-sig"))
    assert (book.title, book.author) == ("Walden", "Henry David Thoreau")
    assert book.text == "When I wrote the following pages."


SAMPLES = [
    ("cp1252", "The naïve café owner said “Hello” — and left.\r\nIt’s déjà vu, «señor».\r\n"),
    ("latin-1", "Ein schöner Tag für Müller, sagte die Straße.\n"),
    ("cp1250", "Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig.\n"),
    ("cp1251", "Привет, мир! Как дела? Это тестовый текст на русском языке.\n" * 2),
    ("utf-16", "Unicode with a byte-order mark: “quotes” and ελληνικά.\n"),
    ("utf-8-sig", "UTF-8 with a BOM: café.\n"),
]


@pytest.mark.parametrize(("encoding", "text"), SAMPLES, ids=[e for e, _ in SAMPLES])
def test_non_utf8_text_decodes_right(tmp_path: Path, encoding: str, text: str) -> None:
    book = load_book(write(tmp_path, f"{encoding}.txt", text, encoding))
    assert book.text.split() == text.split()  # every character decoded as written


@pytest.mark.parametrize("kind", ["empty", "blank", "binary", "undecidable"])
def test_unreadable_text_is_a_one_line_error(tmp_path: Path, kind: str) -> None:
    rng = random.Random(0)
    data = {"empty": b"", "blank": b" \n\n\t\n", "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20,
            "undecidable": bytes(rng.randrange(1, 256) for _ in range(4000))}[kind]
    path = tmp_path / f"{kind}.txt"
    path.write_bytes(data)
    with pytest.raises(BookError) as err:
        load_book(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    if kind == "undecidable":
        assert "not UTF-8" in message and "no other text encoding fits" in message


MARKDOWN = """\
---
title: A Walk in the Woods
author: [Jane Doe, John Roe]
---

# A Walk in the Woods

## The Start

It was *very* early, and **nobody** was up.[^dawn] She read [the map](http://x.org/map "Map")
and ![a photo](photo.jpg) set off on the `trail_head` path.<br>Then she stopped.

<!-- an editor's comment -->
<div class="aside">Some <b>HTML</b> prose.</div>

> A quoted paragraph.
>
> A second quoted paragraph.

```python
print("code is not prose")
```

| col | col |
|-----|-----|
| a   | b   |

***

The Second
----------

Roses are red,\\
violets are blue.

- first item
- second _item_

[^dawn]: Before six, that is,
    when the light is grey.
[^unused]: A note nobody cites.

Escaped \\*stars\\* stay.
"""


def test_markdown_markup_stripped(tmp_path: Path) -> None:
    book = load_book(write(tmp_path, "walk.md", MARKDOWN))
    assert book.text.split("\n\n") == [
        "A Walk in the Woods",
        "The Start",
        "It was very early, and nobody was up. She read the map and set off on the trail_head path. Then she stopped.",
        "Some HTML prose.",
        "A quoted paragraph.",
        "A second quoted paragraph.",
        "The Second",
        "Roses are red, violets are blue.",
        "first item",
        "second item",
        "Escaped *stars* stay.",
    ]
    assert book.notes == ["Before six, that is, when the light is grey.", "A note nobody cites."]
    assert (book.title, book.author, book.format) == ("A Walk in the Woods", "Jane Doe, John Roe", "md")
    # A lone `#` is the book's title; the repeated `##` level holds the chapters.
    assert [(c.title, book.text[c.start : c.start + len(c.title)]) for c in book.chapters] == [
        ("The Start", "The Start"), ("The Second", "The Second")]


def test_markdown_title_falls_back_to_stem(tmp_path: Path) -> None:
    book = load_book(write(tmp_path, "plain-notes.markdown", "Just a paragraph\nwrapped in two lines.\n"))
    assert (book.title, book.author, book.text, book.chapters) == (
        "Plain Notes", None, "Just a paragraph wrapped in two lines.", [])


def test_markdown_with_only_code_has_no_text(tmp_path: Path) -> None:
    path = write(tmp_path, "code.md", "```\nonly code\n```\n")
    with pytest.raises(BookError) as err:
        load_book(path)
    assert str(err.value) == f"{path}: no text found"
