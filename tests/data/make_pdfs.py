"""Build the small layout test PDFs in tests/data/pdf/ with their exact truth.

    python tests/data/make_pdfs.py  [--shared ../shared]

A tiny typesetter on PyMuPDF's drawing API (base-14 Times, nothing embedded,
so each file stays a few KB) sets public-domain prose (Walden, from
../shared/corpus) in layouts the two sample books lack:

- two_column.pdf: two justified columns, word-per-span output, '-' line-end
  hyphenation (real compounds break at their own hyphen), alternating running
  heads with folios in the header;
- footnotes.pdf: one column, many footnotes (raised small markers, notes in
  small type under a rule), folio in the footer, a contents page with dot leaders;
- dropcap.pdf: ragged-right block paragraphs (no indent, space between),
  chapter openings with a three-line drop cap and small-caps opening words,
  letter-spaced running heads in capitals, soft-hyphen (U+00AD) breaks.

Each PDF gets NAME.truth.txt (paragraphs, blank-line separated) and
NAME.notes.txt beside it. Outputs are committed; tests never run this script.

The layouts set by real producers (pdfTeX, WeasyPrint, LibreOffice: notes at
the foot of each column and across pages, quotes over page turns) come from
the sibling `make_sources.py`, which keeps their sources in tests/data/src/.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf

HERE = Path(__file__).resolve().parent
W, H = 396.0, 612.0  # 5.5 x 8.5 in


@dataclass
class Style:
    name: str
    columns: int = 1
    justify: bool = True
    indent: float = 14.0
    para_gap: float = 0.0
    size: float = 11.0
    lead: float = 13.5
    hyphen: str = "-"
    heads: str = "top"  # running heads: top with folio, or letter-spaced caps
    folio: str = "top"  # top | bottom
    dropcap: bool = False
    toc: bool = False
    margin: float = 48.0


@dataclass
class Doc:
    style: Style
    pdf: pymupdf.Document = field(default_factory=pymupdf.open)
    page: pymupdf.Page | None = None
    y: float = 0.0
    col: int = 0
    chapter: str = ""
    notes: list[str] = field(default_factory=list)
    pending_notes: list[tuple[int, str]] = field(default_factory=list)
    reserved: float = 0.0
    top: float = 80.0  # where columns start on this page (below a chapter title)

    @property
    def col_width(self) -> float:
        s = self.style
        gutter = 18.0
        return (W - 2 * s.margin - gutter * (s.columns - 1)) / s.columns

    def col_x(self) -> float:
        return self.style.margin + self.col * (self.col_width + 18.0)

    @property
    def bottom(self) -> float:
        return H - 60.0 - self.reserved


FONT = pymupdf.Font("tiro")  # Nimbus Roman (Times), subset-embedded by TextWriter
_WRITERS: dict[int, pymupdf.TextWriter] = {}


def width(text: str, size: float) -> float:
    return FONT.text_length(text, fontsize=size)


def put(page: pymupdf.Page, xy: tuple[float, float], text: str, size: float) -> None:
    tw = _WRITERS.setdefault(page.number, pymupdf.TextWriter(page.rect))
    tw.append(xy, text, font=FONT, fontsize=size)


def finish(pdf: pymupdf.Document) -> None:
    for number, tw in sorted(_WRITERS.items()):
        tw.write_text(pdf[number])
    _WRITERS.clear()
    pdf.subset_fonts()


def new_page(doc: Doc, opener: bool = False) -> None:
    if doc.page is not None:
        flush_notes(doc)
    doc.page = doc.pdf.new_page(width=W, height=H)
    doc.y, doc.col, doc.reserved, doc.top = 80.0, 0, 0.0, 80.0
    n = doc.pdf.page_count
    s = doc.style
    head = "The Book of the Woods" if n % 2 == 0 else doc.chapter
    if opener:
        head = ""
    if s.heads == "spaced" and head:
        head = " ".join(head.upper())
    hx = s.margin
    if head:
        put(doc.page, (W / 2 - width(head, 8.5) / 2, 40), head, 8.5)
    folio = str(n)
    fy = 40 if s.folio == "top" and not opener else H - 36
    fx = (W - s.margin - width(folio, 9)) if (s.folio == "top" and not opener and n % 2) else hx
    if s.folio == "bottom" or opener:
        fx = W / 2 - width(folio, 9) / 2
    put(doc.page, (fx, fy), folio, 9)


def next_line(doc: Doc, lead: float) -> None:
    doc.y += lead
    if doc.y > doc.bottom:
        if doc.col + 1 < doc.style.columns:
            doc.col += 1
            doc.y = doc.top + lead
        else:
            new_page(doc)
            doc.y += lead


def flush_notes(doc: Doc) -> None:
    if not doc.pending_notes:
        return
    y = H - 60.0 - doc.reserved + 14
    doc.page.draw_line((doc.style.margin, y - 9), (doc.style.margin + 80, y - 9), width=0.4)
    for num, text in doc.pending_notes:
        put(doc.page, (doc.style.margin, y - 3), str(num), 6)
        for ln in wrap(text.split(), [W - 2 * doc.style.margin - 8], 9, "", False):
            put(doc.page, (doc.style.margin + 6, y), ln[0], 9)
            y += 11
    doc.pending_notes = []


def split_word(word: str, room: float, size: float, hyphen: str) -> tuple[str, str] | None:
    """Break a long word where its first part plus a hyphen still fits ('exam-ple')."""
    if "-" in word[1:-1]:
        head, _, tail = word.partition("-")
        if width(head + "-", size) <= room and head.isalpha():
            return head + "-", tail  # a compound breaks at its own hyphen
    if len(word) < 7 or not word.isalpha():
        return None
    for k in range(len(word) - 3, 2, -1):
        if width(word[:k] + "-", size) <= room:
            return word[:k] + hyphen, word[k:]
    return None


def wrap(words: list[str], measures: list[float], size: float, hyphen: str,
         hyphenate: bool = True) -> list[tuple[str, bool]]:
    """Greedy line breaking; line k gets measures[k] (the last one repeats). (line, is_last)."""
    lines: list[tuple[str, bool]] = []
    cur: list[str] = []
    words = list(words)
    while words:
        measure = measures[min(len(lines), len(measures) - 1)]
        w = words.pop(0)
        if width(" ".join(cur + [w]), size) <= measure:
            cur.append(w)
            continue
        room = measure - width(" ".join(cur + [""]), size)
        split = split_word(w, room, size, hyphen) if hyphenate else None
        if split:
            cur.append(split[0])
            words.insert(0, split[1])
        else:
            words.insert(0, w)
        lines.append((" ".join(cur), False))
        cur = []
    if cur:
        lines.append((" ".join(cur), True))
    return lines


def set_line(doc: Doc, text: str, x: float, measure: float, last: bool, size: float,
             notes: dict[str, tuple[int, str]]) -> None:
    words = text.split(" ")
    natural = sum(width(w, size) for w in words)
    gaps = len(words) - 1
    space = width(" ", size)
    if doc.style.justify and not last and gaps:
        space = (measure - natural) / gaps
    for k, w in enumerate(words):
        mark = notes.pop(w, None)  # one reference per note
        # word processors emit the space glyph and stretch the gap after it
        put(doc.page, (x, doc.y), w if mark or k == gaps else w + " ", size)
        x += width(w, size)
        if mark:  # a raised small reference number after the word
            num, text_ = mark
            put(doc.page, (x + 0.3, doc.y - 4), str(num), 7)
            x += width(str(num), 7) + 0.3
            doc.pending_notes.append((num, text_))
            doc.notes.append(text_)
            doc.reserved += 11 * (1 + len(text_) // 60) + 8
        x += space


def paragraph(doc: Doc, text: str, notes: dict[str, tuple[int, str]], first: bool = False) -> None:
    s = doc.style
    words = text.split()
    if s.dropcap and first:
        dropcap(doc, words)
        return
    indent = 0.0 if first else s.indent
    lines = wrap(words, [doc.col_width - indent, doc.col_width], s.size, s.hyphen)
    next_line(doc, s.lead + s.para_gap)
    for k, (t, last) in enumerate(lines):
        if k:
            next_line(doc, s.lead)
        x = doc.col_x() + (indent if k == 0 else 0)
        set_line(doc, t, x, doc.col_width - (indent if k == 0 else 0), last, s.size, notes)


def dropcap(doc: Doc, words: list[str]) -> None:
    """A three-line initial, the rest of the first word and the next two in small caps."""
    s = doc.style
    cap, rest0 = words[0][0], words[0][1:]
    capsize = 3 * s.lead + 4
    cap_w = width(cap, capsize) + 3
    next_line(doc, s.lead + s.para_gap)
    put(doc.page, (doc.col_x(), doc.y + 2 * s.lead), cap, capsize)
    x = doc.col_x() + cap_w
    for w in [rest0] + words[1:3]:
        for ch in w:  # capitals stay full size, lower case become shrunk capitals
            sz = s.size if ch.isupper() else 0.75 * s.size
            put(doc.page, (x, doc.y), ch.upper(), sz)
            x += width(ch.upper(), sz)
        x += width(" ", s.size)
    full, beside = doc.col_width, doc.col_width - cap_w
    lines = wrap(words[3:], [doc.col_x() + full - x, beside, beside, full], s.size, s.hyphen)
    for k, (t, last) in enumerate(lines):
        if k:
            next_line(doc, s.lead)
        lx = x if k == 0 else doc.col_x() + (cap_w if k < 3 else 0)
        set_line(doc, t, lx, doc.col_x() + full - lx, last, s.size, {})


def heading(doc: Doc, title: str) -> None:
    doc.chapter = title
    new_page(doc, opener=True)
    doc.y = 130.0
    put(doc.page, (W / 2 - width(title, 16) / 2, doc.y), title, 16)
    doc.y += 20
    doc.top = doc.y


def contents(doc: Doc, chapters: list[str]) -> None:
    page = doc.pdf.new_page(width=W, height=H)
    put(page, (W / 2 - width("Contents", 14) / 2, 100), "Contents", 14)
    for k, title in enumerate(chapters):
        num = str(3 + 4 * k)
        dots = "." * int((W - 2 * doc.style.margin - width(title, 11) - width(num, 11)) / width(".", 11) - 2)
        y = 140 + 20 * k
        put(page, (doc.style.margin, y), f"{title} {dots}", 11)
        put(page, (W - doc.style.margin - width(num, 11), y), num, 11)


def build(style: Style, chapters: list[tuple[str, list[str]]], notes_every: int = 0) -> tuple[bytes, str, str]:
    doc = Doc(style)
    title = doc.pdf.new_page(width=W, height=H)
    put(title, (90, 200), "The Book of the Woods", 20)
    if style.toc:
        contents(doc, [c for c, _ in chapters])
    truth: list[str] = []
    notes: list[str] = []
    for title_, paras in chapters:
        heading(doc, title_)
        truth.append(title_)
        for k, p in enumerate(paras):
            marks = {}
            if notes_every and k % notes_every == 1:
                words = p.split()
                target = words[len(words) // 2]
                if target.isalpha():
                    note = f"See the note on {target} in the appendix of the second edition, page {k + 10}."
                    marks[target] = (len(notes) % 9 + 1, note)
                    notes.append(note)  # numbering only: doc.notes has those actually set
            paragraph(doc, p, marks, first=k == 0)
            truth.append(p)
    flush_notes(doc)
    finish(doc.pdf)
    doc.pdf.set_metadata({"title": "The Book of the Woods", "author": "H. D. Thoreau"})
    return doc.pdf.tobytes(garbage=4, deflate=True, clean=True), "\n\n".join(truth) + "\n", "\n".join(doc.notes) + ("\n" if doc.notes else "")


def walden_paragraphs(shared: Path, n: int) -> list[str]:
    text = (shared / "corpus" / "thoreau_walden.truth.txt").read_text(encoding="utf-8")
    paras = [p for p in text.split("\n\n") if len(p) > 300 and "“" not in p[:1]]
    # base-14 Times has WinAnsi glyphs only: keep paragraphs it can set
    return [p for p in paras if all(ord(c) < 0x2020 or c in "—’“”‘" for c in p)][:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=HERE.parents[1] / ".." / "shared")
    args = ap.parse_args()
    paras = walden_paragraphs(args.shared, 60)
    chap = [("Of Houses", paras[0:10]), ("Of Fields", paras[10:20]), ("Of Ponds", paras[20:30])]
    out = HERE / "pdf"
    out.mkdir(exist_ok=True)
    jobs = {
        "two_column": (Style("two_column", columns=2, size=9.5, lead=11.5, indent=10), chap, 0),
        "footnotes": (Style("footnotes", folio="bottom", toc=True), chap, 3),
        "dropcap": (Style("dropcap", justify=False, indent=0, para_gap=7, heads="spaced", folio="bottom",
                          dropcap=True, hyphen="\u00ad"), chap, 0),
    }
    for name, (style, chapters, every) in jobs.items():
        pdf, truth, notes = build(style, chapters, every)
        (out / f"{name}.pdf").write_bytes(pdf)
        (out / f"{name}.truth.txt").write_text(truth, encoding="utf-8")
        (out / f"{name}.notes.txt").write_text(notes, encoding="utf-8")
        print(f"{name}.pdf: {len(pdf) // 1024} KB")


if __name__ == "__main__":
    main()
