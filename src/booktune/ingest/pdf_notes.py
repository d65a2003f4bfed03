"""Footnotes: reference marks in the prose and note texts at the foot of the page.

A reference mark is a short run of digits or note symbols set as a superscript
(PyMuPDF's superscript flag, or a smaller raised span). A note region is the
block of small-type lines at the bottom of a page (above the folio) that opens
with such a mark, confirmed by its size, a separator rule or a mark in the
page's prose.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from booktune.ingest.pdf_layout import SUPERSCRIPT, Line, Span, Stats

_MARK = re.compile(r"[\d*†‡§¶‖#]{1,3}|[a-z]")
_LEADING_MARK = re.compile(r"^\s*(\d{1,3}|[*†‡§¶‖]{1,3})[.)]?\s+(?=\S)")
_UNICODE_SUP = re.compile(r"(?<=[^\W\d_]|[.,;:!?’”)\]])[¹²³⁰⁴⁵⁶⁷⁸⁹]+")


def _is_mark(span: Span, line: Line) -> bool:
    t = span.text.strip()
    if not t or not _MARK.fullmatch(t):
        return False
    if t.isalpha() and not span.flags & SUPERSCRIPT:
        return False  # letters only when flagged: small raised letters are too often small caps
    raised = span.base < line.base - 0.12 * line.size
    return bool(span.flags & SUPERSCRIPT) or (span.size < 0.8 * line.size and raised)


def strip_markers(line: Line) -> None:
    """Cut reference marks out of a prose line, remembering them in line.markers."""
    keep = []
    for i, span in enumerate(line.spans):
        if i > 0 and _is_mark(span, line):  # a mark follows the word it annotates
            line.markers.append(span.text.strip())
        else:
            keep.append(span)
    if len(keep) != len(line.spans):
        line.spans = keep
        line.text = "".join(s.text for s in keep)
    if not line.text.isascii() and _UNICODE_SUP.search(line.text):
        line.markers.extend(_UNICODE_SUP.findall(line.text))
        line.text = _UNICODE_SUP.sub("", line.text)


def _opens_note(line: Line) -> bool:
    first = next((s for s in line.spans if s.text.strip()), None)
    if first is None:
        return False
    t = first.text.strip()
    if _MARK.fullmatch(t.rstrip(".)")) and not t.isalpha() and first.size < 0.85 * line.size:
        return True
    return bool(_LEADING_MARK.match(line.text))


def _note_region(lines: list[Line], stats: Stats) -> list[Line]:
    """Small-type lines at the foot of the page, bottom-up until prose-size text."""
    region: list[Line] = []
    for ln in sorted(lines, key=lambda x: -x.base):
        if ln.reason is not None:
            continue
        if ln.size > 0.9 * stats.body_size:
            break
        region.append(ln)
    region.reverse()
    return region


def _confirmed(region: list[Line], lines: list[Line], stats: Stats, has_rule: Callable[[int, float], bool]) -> bool:
    if region[0].size <= 0.85 * stats.body_size:
        return True
    prose = (ln for ln in lines if ln.size > 0.9 * stats.body_size)
    if any(_is_mark(s, ln) for ln in prose for s in ln.spans[1:]):
        return True
    return has_rule(region[0].page, region[0].y0)


def _note_text(line: Line) -> str:
    spans = line.spans
    first = next((i for i, s in enumerate(spans) if s.text.strip()), 0)
    if first < len(spans) and spans[first].size < 0.85 * line.size and _MARK.fullmatch(spans[first].text.strip().rstrip(".)")):
        return "".join(s.text for s in spans[first + 1:]).strip()
    return _LEADING_MARK.sub("", line.text, count=1).strip()


def mark_notes(pages: list[list[Line]], stats: Stats, has_rule: Callable[[int, float], bool]) -> list[list[str]]:
    """Set reason 'footnote' on note lines; return each note as its list of lines."""
    notes: list[list[str]] = []
    for lines in pages:
        region = _note_region(lines, stats)
        if not region:
            continue
        opens = _opens_note(region[0])
        if opens and not _confirmed(region, lines, stats, has_rule):
            continue
        if not opens and not (notes and region[0].size <= 0.85 * stats.body_size and has_rule(region[0].page, region[0].y0)):
            continue  # a continued note needs its rule and small type
        for ln in region:
            ln.reason = "footnote"
            if _opens_note(ln) or not notes:
                notes.append([_note_text(ln)])
            else:
                notes[-1].append(ln.text.strip())
    return notes
