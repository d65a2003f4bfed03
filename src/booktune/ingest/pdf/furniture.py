"""Running heads, running feet and page numbers (folios).

Detected from position and repetition, never from known strings:
- a folio is a number (arabic or roman) in the top or bottom band of a page whose
  value minus the page index is the same on several pages;
- a running head is a band line set apart from the text block whose letters
  (case, spacing and folio ignored) repeat on several pages, or that sits in a
  slot (same side, same baseline) where repeated heads or folios were found.
"""

from __future__ import annotations

import re
from collections import defaultdict

from booktune.ingest.pdf.layout import Line, Stats

BAND = 0.13  # share of the page height searched for furniture at the top and bottom
_ROMAN = re.compile(r"m{0,3}(cm|cd|d?c{0,3})(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})")
_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100, "d": 500, "m": 1000}
_NOT_LETTERS = re.compile(r"[\W\d_]+")


def folio_value(token: str) -> tuple[str, int] | None:
    """('arabic'|'roman', value) when the token reads as a page number."""
    t = token.strip().strip("-–—[]()·|.").strip().lower()
    if t.isdigit() and len(t) <= 4:
        return "arabic", int(t)
    if t and _ROMAN.fullmatch(t):
        total, prev = 0, 0
        for ch in reversed(t):
            v = _ROMAN_VALUES[ch]
            total, prev = (total - v, prev) if v < prev else (total + v, v)
        return "roman", total
    return None


def _split_folio(text: str) -> tuple[tuple[str, int] | None, str]:
    """Split a leading or trailing folio token off a band line."""
    tokens = text.split()
    if not tokens:
        return None, ""
    if re.fullmatch(r"(?i:page)", tokens[0]) and len(tokens) > 1:
        tokens = tokens[1:]
    for idx in (0, -1):
        value = folio_value(tokens[idx])
        if value:
            rest = tokens[1:] if idx == 0 else tokens[:-1]
            return value, " ".join(rest)
    return None, " ".join(tokens)


def _band_candidates(lines: list[Line], height: float, apart: float) -> list[tuple[str, Line]]:
    """(side, line) for lines in up to 3 rows at the top/bottom edge set apart from the text block."""
    rows: list[list[Line]] = []
    for ln in sorted(lines, key=lambda x: x.base):
        if rows and abs(ln.base - rows[-1][0].base) <= 0.5 * ln.size:
            rows[-1].append(ln)
        else:
            rows.append([ln])
    out = []
    for side, seq in (("top", rows), ("bottom", rows[::-1])):
        for k, row in enumerate(seq[:3]):
            inside = row[0].base <= BAND * height if side == "top" else row[0].y0 >= (1 - BAND) * height
            if not inside:
                break
            nxt = seq[k + 1][0].base if k + 1 < len(seq) else None
            if nxt is None or abs(nxt - row[0].base) >= apart:  # the gap to the text block
                out.extend((side, ln) for r in seq[: k + 1] for ln in r)
                break
    return out


def _key(text: str) -> str:
    return _NOT_LETTERS.sub("", text).casefold()


def mark_furniture(pages: list[list[Line]], stats: Stats) -> dict[str, int]:
    """Set reason 'folio' or 'head' on running heads/feet and page numbers.

    Returns the page-index minus folio offset of each numbering ('arabic', 'roman').
    """
    apart = 1.3 * stats.pitch  # furniture is set apart from the text block
    cands = [c for lines in pages for c in _band_candidates(lines, stats.page_height, apart)]
    offsets: dict[tuple[str, int], set[int]] = defaultdict(set)
    keys: dict[tuple[str, str], set[int]] = defaultdict(set)
    parsed = []
    for side, ln in cands:
        folio, rest = _split_folio(ln.text)
        parsed.append((side, ln, folio, rest))
        if folio:
            offsets[(folio[0], ln.page - folio[1])].add(ln.page)
        if rest:
            keys[(side, _key(rest))].add(ln.page)
    need = 3 if len(pages) >= 12 else 2
    good_offsets = {k for k, v in offsets.items() if len(v) >= need}
    good_keys = {k for k, v in keys.items() if len(v) >= need and k[1]}
    slots: set[tuple[str, int]] = set()
    for side, ln, folio, rest in parsed:
        is_folio = folio is not None and (folio[0], ln.page - folio[1]) in good_offsets
        if is_folio or (rest and (side, _key(rest)) in good_keys):
            ln.reason = "head" if rest else "folio"
            slots.add((side, round(ln.base)))
    for side, ln, _folio, rest in parsed:  # lone heads (short chapters) in a known slot
        if ln.reason is None and _in_slot(side, ln.base, slots):
            ln.reason = "head" if rest else "folio"
    best: dict[str, int] = {}
    for kind, off in sorted(good_offsets, key=lambda k: -len(offsets[k])):
        best.setdefault(kind, off)
    return best


def _in_slot(side: str, base: float, slots: set[tuple[str, int]]) -> bool:
    return any(s == side and abs(b - base) <= 1.5 for s, b in slots)
