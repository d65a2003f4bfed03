"""Front matter (title, copyright, contents...) and back matter (index, contents at the end).

Heuristics, in order of trust:
- a contents page: several lines ending in a page number right-aligned in one
  column (or after dot leaders), numbers not decreasing; the body starts at
  the page the first entry points to (through the folio offset) or after the
  contents, whichever is later;
- leading pages with almost no body-size text (title, half title, copyright in
  small type, dedication) are front matter;
- an index: lines of words followed by comma-separated page numbers, near the
  end; it and what follows are back matter.
"""

from __future__ import annotations

import re

from booktune.ingest.pdf.furniture import folio_value
from booktune.ingest.pdf.layout import Line, Stats

_LEADERS = re.compile(r"(?:\.\s?){3,}\s*(\S+)\s*$|\s(\d{1,4}|[ivxlc]{1,6})\s*$")
_INDEX_LINE = re.compile(r"^\D.*?,\s*\d{1,4}(?:[-–]\d{1,4})?(?:,\s*\d{1,4}(?:[-–]\d{1,4})?)*\.?$"
                         r"|^\d{1,4}(?:[-–]\d{1,4})?(?:,\s*\d{1,4}(?:[-–]\d{1,4})?)+\.?$")


def _kept(lines: list[Line]) -> list[Line]:
    return [ln for ln in lines if ln.reason is None]


def _entry_number(ln: Line) -> tuple[str, int] | None:
    text = ln.text.strip()
    value = folio_value(text)
    if value:
        return value
    m = _LEADERS.search(text)
    if m:
        return folio_value(m.group(1) or m.group(2))
    return None


def toc_entries(lines: list[Line]) -> list[tuple[str, int]]:
    """Page numbers of contents entries on this page, or [] when it is not a contents page."""
    kept = _kept(lines)
    nums = [(ln, v) for ln in kept if (v := _entry_number(ln))]
    if len(nums) < 2:
        return []
    right = max(ln.x1 for ln, _ in nums)
    aligned = [(ln, v) for ln, v in nums if abs(ln.x1 - right) <= 3]
    values = [v[1] for _, v in aligned if v[0] == "arabic"]
    leaders = sum(1 for ln, _ in aligned if "..." in ln.text or ". . ." in ln.text)
    if len(aligned) < 2 or values != sorted(values):
        return []
    if leaders < 2 and (len(aligned) < 4 or len(aligned) < 0.2 * len(kept)):
        return []
    return [v for _, v in aligned]


def _is_index(lines: list[Line]) -> bool:
    kept = [ln.text.strip() for ln in _kept(lines)]
    hits = sum(1 for t in kept if _INDEX_LINE.match(t))
    return len(kept) >= 6 and hits >= 0.5 * len(kept)


def _body_lines(lines: list[Line], stats: Stats) -> int:
    return sum(1 for ln in _kept(lines) if stats.is_body(ln))


def _front_end(pages: list[list[Line]], stats: Stats, offsets: dict[str, int]) -> int:
    n = len(pages)
    tocs = [(i, e) for i in range(max(1, n // 4 + 1)) if (e := toc_entries(pages[i]))]
    start = 0
    if tocs and (tocs[0][0] < n // 4 or n < 8):
        last = tocs[0][0]
        while last + 1 < n and toc_entries(pages[last + 1]):
            last += 1
        start = last + 1
        kind, first = tocs[0][1][0]
        if kind in offsets and start <= first + offsets[kind] < max(start + 1, n // 3):
            start = first + offsets[kind]
    while start < n and _body_lines(pages[start], stats) < 6:
        start += 1
    return start if start < n else 0


def _back_start(pages: list[list[Line]], front_end: int) -> int:
    n = len(pages)
    for i in range(max(front_end + 1, int(0.7 * n)), n):
        if _is_index(pages[i]) or toc_entries(pages[i]):
            return i
    return n


def mark_matter(pages: list[list[Line]], stats: Stats, offsets: dict[str, int]) -> tuple[int, int]:
    """Set 'front matter' / 'back matter' on pages outside the body; return the body's page range."""
    start = _front_end(pages, stats, offsets)
    end = _back_start(pages, start)
    for i, lines in enumerate(pages):
        if i < start or i >= end:
            for ln in lines:
                if ln.reason is None:
                    ln.reason = "front matter" if i < start else "back matter"
    return start, end
