"""PDF books to clean prose: `extract_pdf` and its inspection twin `explain_pdf`.

Pipeline: read lines (pdf_layout) -> mark running heads and folios
(pdf_furniture) -> mark footnotes and cut reference marks (pdf_notes) -> mark
front/back matter (pdf_matter) -> paragraphs (pdf_paragraphs) -> join
hyphenated words with the book's own evidence and normalise (clean).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf

from booktune.ingest.clean import HyphenEvidence, join_lines, normalize_chars, normalize_paragraph
from booktune.ingest.pdf.furniture import mark_furniture
from booktune.ingest.pdf.layout import Line, Stats, compute_stats
from booktune.ingest.pdf.matter import mark_matter
from booktune.ingest.pdf.notes import mark_notes, strip_markers
from booktune.ingest.pdf.open import open_pdf, read_pages
from booktune.ingest.pdf.paragraphs import Para, build_paragraphs, merge_drop_caps, turn_reason
from booktune.ingest.types import Chapter

pymupdf.TOOLS.mupdf_display_errors(False)  # broken objects become BookError, not stderr noise


@dataclass
class PdfResult:
    text: str
    notes: list[str]
    pages: int
    title: str | None
    author: str | None
    chapters: list[Chapter] = field(default_factory=list)


@dataclass
class PageReport:
    """What happened to one page: kept lines, removed lines with a reason, hyphen decisions."""

    page: int  # 1-based
    kept: list[str] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)  # (line, reason)
    markers: list[str] = field(default_factory=list)  # footnote marks cut from kept lines
    joins: list[tuple[str, str]] = field(default_factory=list)  # ('exam-|ple', 'example')
    notes: list[tuple[str, str]] = field(default_factory=list)  # (a note's first line here, the evidence)
    turns: list[tuple[str, str]] = field(default_factory=list)  # ('…last words|first words…', the evidence)


@dataclass
class _Analysis:
    pages: list[list[Line]]
    stats: Stats
    notes: list[list[str]]
    paras: list[Para]
    evidence: HyphenEvidence
    toc: list
    meta: dict
    body: tuple[int, int]


def _line_text(ln: Line) -> str:
    """Normalised characters, keeping a trailing soft hyphen for the joiner."""
    text = ln.text.rstrip()
    soft = text.endswith("\u00ad")
    text = normalize_chars(text[:-1] if soft else text)
    return text + "\u00ad" if soft else text


def _analyse(doc: pymupdf.Document, pages: list[list[Line]]) -> _Analysis:
    stats = compute_stats(pages, doc[0].rect.height if doc.page_count else 792.0)
    offsets = mark_furniture(pages, stats)
    rules = _RuleFinder(doc)
    notes = mark_notes(pages, stats, rules)
    body = mark_matter(pages, stats, offsets)
    kept: list[Line] = []
    for lines in pages:
        for ln in merge_drop_caps(lines, stats):
            if ln.reason is None:
                strip_markers(ln)
                ln.text = _line_text(ln)
                if ln.text.strip():
                    kept.append(ln)
    if _gapped_hyphens_are_breaks([ln.text for ln in kept]):
        for ln in kept:
            ln.text = _GAPPED_END.sub(r"\1-", ln.text)
        notes = [[_GAPPED_END.sub(r"\1-", t) for t in note] for note in notes]
    evidence = HyphenEvidence([ln.text for ln in kept] + [text for note in notes for text in note])
    for ln in kept:
        if ln.cap:
            _space_after_cap(ln, evidence)
    paras = build_paragraphs(kept, stats)
    return _Analysis(pages, stats, notes, paras, evidence, doc.get_toc(simple=True), doc.metadata or {}, body)


_GAPPED_END = re.compile(r"([^\W\d_]) [-\u2010]\s*$")  # 'acci -': a line-end hyphen read apart from its word
_SPACED_HYPHEN = re.compile(r"\w [-\u2010] \w")


def _gapped_hyphens_are_breaks(texts: list[str]) -> bool:
    """Some producers (LibreOffice) leave a gap before a line-end hyphen that MuPDF reads as a space.
    Unless the book sets ' - ' as a dash inside its lines, such a hyphen breaks a word."""
    if not any(t.rstrip().endswith((" -", " \u2010")) and _GAPPED_END.search(t) for t in texts):
        return False
    return sum(1 for t in texts if _SPACED_HYPHEN.search(t)) <= max(2, len(texts) // 1000)


def _space_after_cap(ln: Line, evidence: HyphenEvidence) -> None:
    """'I' + 'do not' or 'W' + 'hen'? Ask the book which word it prints."""
    word = ln.text.split(maxsplit=1)[0] if ln.text.strip() else ""
    letters = "".join(c for c in word if c.isalpha())
    rest = letters[len(ln.cap):]
    # the merged word itself was counted once, from this very line
    if rest and evidence.counts[letters.casefold()] <= 1 and evidence.counts[rest.casefold()]:
        ln.text = ln.cap + " " + ln.text[len(ln.cap):]


class _RuleFinder:
    """Is there a horizontal rule just above y, over the x range of a line? (footnote separators)"""

    def __init__(self, doc: pymupdf.Document) -> None:
        self.doc = doc
        self.cache: dict[int, list[pymupdf.Rect]] = {}

    def __call__(self, page: int, y: float, x0: float, x1: float) -> bool:
        if page not in self.cache:
            self.cache[page] = [d["rect"] for d in self.doc[page].get_drawings()
                                if d["rect"].height <= 2 and d["rect"].width > 20]
        return any(0 < y - r.y0 < 30 and r.x0 < x1 and r.x1 > x0 for r in self.cache[page])


def _render(a: _Analysis) -> tuple[str, list[tuple[int, Para]]]:
    """Paragraph texts joined with blank lines; also each kept paragraph's offset."""
    out: list[str] = []
    offsets: list[tuple[int, Para]] = []
    pos = 0
    for para in a.paras:
        text = normalize_paragraph(join_lines([ln.text for ln in para.lines], a.evidence))
        if not text:
            continue
        if out:
            pos += 2
        offsets.append((pos, para))
        out.append(text)
        pos += len(text)
    return "\n\n".join(out), offsets


def _chapters(a: _Analysis, offsets: list[tuple[int, Para]], text: str) -> list[Chapter]:
    """Chapters from the outline (first heading on each entry's page), else from headings."""
    start, end = a.body
    entries = [(t, p - 1) for lvl, t, p in a.toc if lvl <= 2 and start <= p - 1 < end]
    chapters: list[Chapter] = []
    seen: set[int] = set()
    for title, page in entries:
        pos = next((o for o, p in offsets if p.lines[0].page == page and p.heading), None)
        if pos is None:
            pos = next((o for o, p in offsets if p.lines[0].page == page), None)
        if pos is not None and pos not in seen:
            seen.add(pos)
            chapters.append(Chapter(normalize_paragraph(normalize_chars(title)), pos))
    if chapters:
        return chapters
    big = max((p.size for _, p in offsets if p.heading), default=0.0)
    prev_heading = False
    for pos, p in offsets:
        if p.heading and not prev_heading and p.size >= big - 0.5:
            end_pos = text.find("\n\n", pos)
            chapters.append(Chapter(text[pos: end_pos if end_pos >= 0 else None], pos))
        prev_heading = p.heading
    return chapters


def _finish_notes(a: _Analysis) -> list[str]:
    out = []
    for lines in a.notes:
        note = normalize_paragraph(normalize_chars(join_lines(lines, a.evidence)))
        if note:
            out.append(note)
    return out


def _meta(a: _Analysis, key: str) -> str | None:
    value = normalize_paragraph(normalize_chars(a.meta.get(key) or ""))
    return value or None


def extract_pdf(path: Path, *, password: str | None = None, ocr: bool = False) -> PdfResult:
    """Clean prose, notes and structure of one PDF book. Raises BookError on bad input."""
    path = Path(path)
    with open_pdf(path, password) as doc:
        a = _analyse(doc, read_pages(doc, path, ocr))
        text, offsets = _render(a)
        return PdfResult(text, _finish_notes(a), doc.page_count, _meta(a, "title"), _meta(a, "author"),
                         _chapters(a, offsets, text))


def explain_pdf(path: Path, *, password: str | None = None, ocr: bool = False,
                pages: list[int] | None = None) -> list[PageReport]:
    """Per page (1-based numbers in `pages`, default all): what was kept, what was removed and why."""
    path = Path(path)
    with open_pdf(path, password) as doc:
        a = _analyse(doc, read_pages(doc, path, ocr))
    reports = [PageReport(i + 1) for i in range(len(a.pages))]
    for lines in a.pages:
        for ln in lines:
            rep = reports[ln.page]
            if ln.reason is None:
                rep.kept.append(ln.text)
                rep.markers.extend(ln.markers)
            else:
                rep.removed.append((normalize_paragraph(ln.text), ln.reason))
                if ln.reason == "footnote" and ln.why:
                    rep.notes.append((normalize_paragraph(ln.text), ln.why))
    for para in a.paras:
        for first, second in zip(para.lines, para.lines[1:]):
            join_lines([first.text, second.text], a.evidence, reports[first.page].joins)
            if (first.page, first.col) != (second.page, second.col):
                seam = " ".join(first.text.split()[-4:]) + "|" + " ".join(second.text.split()[:4])
                where = "next page" if second.page != first.page else "next column"
                reports[first.page].turns.append((seam, f"{where}: {turn_reason(first, second, a.stats)}"))
    wanted = set(pages) if pages else None
    return [r for r in reports if wanted is None or r.page in wanted]
