"""Lines, columns and layout statistics of PDF pages (PyMuPDF "dict" output).

Everything downstream works on `Line` objects: one visual line of one column,
in reading order, with its geometry and dominant font size. Removal passes
(furniture, notes, matter) set `Line.reason`; nothing is deleted in place so
that `booktune inspect` can show what went where.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pymupdf

# Clip to the media box; no ligature/whitespace preservation (PyMuPDF expands
# ligature glyphs to letters and turns odd spaces into plain ones).
TEXT_FLAGS = pymupdf.TEXT_MEDIABOX_CLIP
SUPERSCRIPT = 1  # PyMuPDF span flag bit
BOLD = 16


@dataclass(slots=True)
class Span:
    text: str
    size: float
    flags: int
    x0: float
    x1: float
    base: float  # baseline y


@dataclass(slots=True)
class Line:
    page: int  # 0-based page index
    x0: float
    y0: float
    x1: float
    y1: float
    base: float  # baseline of the dominant span
    size: float  # dominant (most characters) font size
    spans: list[Span]
    text: str = ""
    col: int = 0  # column index on its page, -1 when spanning columns
    reason: str | None = None  # why the line was removed; None = kept
    markers: list[str] = field(default_factory=list)  # footnote marks cut out of the line
    dropcap: bool = False  # beside a drop cap: its indent is not a paragraph indent
    cap: str = ""  # the drop-cap letter merged at the start of this line
    why: str = ""  # the evidence behind a removal or a join, for `booktune inspect`

    @property
    def width(self) -> float:
        return self.x1 - self.x0


def _make_line(page: int, spans: list[Span]) -> Line:
    if len(spans) == 1:
        s = spans[0]
        return Line(page, s.x0, 0.0, s.x1, 0.0, s.base, round(s.size, 1), spans)
    weights: dict[float, int] = {}
    for s in spans:
        weights[s.size] = weights.get(s.size, 0) + len(s.text)
    size = max(weights, key=weights.__getitem__)
    main = spans[0]
    for s in spans:
        if s.size == size:
            main = s
            break
    return Line(page, min(s.x0 for s in spans), 0.0, max(s.x1 for s in spans), 0.0,
                main.base, round(size, 1), spans)


def _dict_lines(page: pymupdf.Page, index: int, textpage=None) -> list[Line]:
    out: list[Line] = []
    data = page.get_text("dict", flags=TEXT_FLAGS, textpage=textpage)
    for block in data["blocks"]:
        for ln in block.get("lines", ()):
            spans = [Span(s["text"], s["size"], s["flags"], s["bbox"][0], s["bbox"][2], s["origin"][1])
                     for s in ln["spans"] if s["text"]]
            if not spans or not "".join(s.text for s in spans).strip():
                continue
            line = _make_line(index, spans)
            line.y0, line.y1 = ln["bbox"][1], ln["bbox"][3]
            out.append(line)
    return out


def _same_row(a: Line, b: Line) -> bool:
    """b sits on a's row: same baseline, or vertically inside it (superscripts, dot leaders)."""
    big, small = (a, b) if a.size >= b.size else (b, a)
    if big.size >= 1.8 * small.size and len(big.spans[0].text.strip()) <= 2:
        return False  # a drop cap spans several rows: it is merged later, into the right one
    if abs(a.base - b.base) <= 0.25 * max(a.size, b.size):
        return True
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    return overlap >= 0.6 * min(a.y1 - a.y0, b.y1 - b.y0)


def _join_pieces(pieces: list[Line]) -> Line:
    """One line from pieces of one row (PyMuPDF splits rows at wide word gaps)."""
    pieces.sort(key=lambda p: p.x0)
    spans: list[Span] = []
    for p in pieces:
        if spans and p.x0 - spans[-1].x1 > 0.15 * p.size and not spans[-1].text.endswith(" ") \
                and not p.spans[0].text.startswith(" "):
            last = spans[-1]
            spans.append(Span(" ", last.size, last.flags, last.x1, p.x0, last.base))
        spans.extend(p.spans)
    line = _make_line(pieces[0].page, spans)
    line.y0, line.y1 = min(p.y0 for p in pieces), max(p.y1 for p in pieces)
    line.col = pieces[0].col
    return line


def _merge_rows(lines: list[Line]) -> list[Line]:
    """Merge the pieces of each row within each column."""
    if len(lines) < 2:
        return lines
    lines.sort(key=lambda ln: (ln.col, ln.base))
    out: list[Line] = []
    row = [lines[0]]
    for ln in lines[1:]:
        if ln.col == row[0].col and _same_row(row[0], ln):
            row.append(ln)
        else:
            out.append(row[0] if len(row) == 1 else _join_pieces(row))
            row = [ln]
    out.append(row[0] if len(row) == 1 else _join_pieces(row))
    return out


def _free_strips(body: list[Line], width: float) -> list[float]:
    """Middles of the vertical strips inside the page that (almost) no wide line crosses."""
    step = 2.0
    cover = [0] * (int(width / step) + 2)
    for ln in body:
        for k in range(max(0, int(ln.x0 / step)), min(len(cover), int(ln.x1 / step) + 1)):
            cover[k] += 1
    limit = max(1, len(body) // 20)  # a title may span the columns
    mids, run = [], []
    for k in range(int(0.2 * width / step), int(0.8 * width / step) + 1):
        if cover[k] <= limit:
            run.append(k)
        elif run:
            mids.append(run[len(run) // 2] * step)
            run = []
    if run:
        mids.append(run[len(run) // 2] * step)
    return mids


def _is_gutter(mid: float, lines: list[Line], body: list[Line], height: float) -> bool:
    """Text on both sides of the strip: 4 wide lines each, or (a short last column) no line
    crossing it and 2 lines at least on each side."""
    if min(sum(1 for ln in body if ln.x1 <= mid), sum(1 for ln in body if ln.x0 >= mid)) >= 4:
        return True
    inside = [ln for ln in lines if 0.1 * height < ln.base < 0.9 * height]
    if any(ln.x0 < mid < ln.x1 for ln in inside):
        return False
    left = sum(1 for ln in inside if ln.x1 <= mid)
    right = sum(1 for ln in inside if ln.x0 >= mid)
    return min(left, right) >= 2 and left + right >= 8


def _gutters_of(body: list[Line], lines: list[Line], width: float, height: float) -> list[float]:
    if len(body) < 8:
        return []
    centre = width / 2
    if sum(1 for ln in body if ln.x0 < centre < ln.x1) > 0.6 * len(body):
        return []  # most lines cross the middle: one column (the common case, decided fast)
    return [mid for mid in _free_strips(body, width) if _is_gutter(mid, lines, body, height)]


def _find_gutters(lines: list[Line], width: float, height: float, text_size: float) -> list[float]:
    """x positions of column gutters (any number): strips inside the page no wide line crosses,
    else none that a line in the running-text size crosses (notes or a title set across the columns)."""
    wide = [ln for ln in lines if ln.width > 0.12 * width]
    found = _gutters_of(wide, lines, width, height)
    if not found:
        running = [ln for ln in wide if abs(ln.size - text_size) <= 0.05 * text_size]
        if len(running) < len(wide):
            found = _gutters_of(running, lines, width, height)
    return found


def _assign_columns(lines: list[Line], gutters: list[float]) -> None:
    """Column index = gutters passed on the left; -1 for a line that crosses a gutter."""
    for ln in lines:
        col = 0
        for g in gutters:
            if ln.x0 >= g - 2:
                col += 1
            elif ln.x1 > g + 2:
                col = -1
                break
        ln.col = col


def _close_band(band: list[Line], out: list[Line]) -> None:
    """Append a band column by column; a lone line just under a spanning one is that paragraph's
    short last line (a note set across the columns), not a column of its own."""
    if len(band) == 1 and out and out[-1].col == -1 and band[0].base - out[-1].base < 2 * band[0].size:
        band[0].col = -1
    out.extend(sorted(band, key=lambda b: (b.col, b.base)))


def _order(lines: list[Line], gutters: list[float]) -> list[Line]:
    """Reading order: bands split by column-spanning lines; in each band, column by column."""
    lines.sort(key=lambda ln: (ln.base, ln.x0))
    if not gutters:
        return lines
    out: list[Line] = []
    band: list[Line] = []
    for ln in lines:
        if ln.col == -1:
            _close_band(band, out)
            band = []
            out.append(ln)
        else:
            band.append(ln)
    _close_band(band, out)
    return out


def _text_size(pages: list[list[Line]]) -> float:
    """The book's running-text size: the size most of the lines' length is set in."""
    sizes: Counter[float] = Counter()
    for pieces in pages:
        for ln in pieces:
            sizes[round(ln.size * 2) / 2] += ln.x1 - ln.x0
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _layout(page: pymupdf.Page, pieces: list[Line], text_size: float) -> list[Line]:
    gutters = _find_gutters(pieces, page.rect.width, page.rect.height, text_size)
    _assign_columns(pieces, gutters)
    lines = _order(_merge_rows(pieces), gutters)
    for ln in lines:
        ln.text = "".join(s.text for s in ln.spans)
    return lines


def read_document(pages: list[pymupdf.Page], textpage: Callable[[pymupdf.Page], Any] | None = None) -> list[list[Line]]:
    """Each page's visual lines in reading order, with `text` set from their spans.

    `textpage` makes a page's text layer (OCR), one page at a time. Columns are found from the
    lines in the book's running-text size, so that notes or titles set across the columns do
    not hide the gutter."""
    pieces = [_dict_lines(page, i, textpage(page) if textpage else None) for i, page in enumerate(pages)]
    size = _text_size(pieces)
    return [_layout(page, p, size) for page, p in zip(pages, pieces)]


@dataclass
class Stats:
    """Book-wide typography: the body font size, line pitch and column edges."""

    body_size: float
    pitch: float  # baseline-to-baseline distance of body lines
    left: dict[tuple[int, int], float]  # (page, col) -> left edge of body text; page -1/-2: even/odd pages
    right: dict[tuple[int, int], float]  # (page, col) -> right edge of body text
    page_height: float

    def is_body(self, ln: Line) -> bool:
        return abs(ln.size - self.body_size) <= 0.035 * self.body_size

    def edges(self, ln: Line) -> tuple[float, float]:
        """The text block's edges on the line's page and column (a page of block quote only: its side's)."""
        key = (ln.page, max(ln.col, 0))
        if key not in self.left:
            key = (-1 - ln.page % 2, key[1])
        return self.left.get(key, ln.x0), self.right.get(key, ln.x1)


def _mode(values: list[float], default: float) -> float:
    return Counter(values).most_common(1)[0][0] if values else default


def _left_edge(x0s: list[float]) -> float:
    """Smallest x0 shared by a fair share of lines (the mode fails on dialogue-heavy pages)."""
    need = max(2, int(0.15 * len(x0s)))
    counts = Counter(x0s)
    for v in sorted(counts):
        if counts[v] + counts.get(v - 1, 0) + counts.get(v + 1, 0) >= need:
            return v
    return min(x0s) if x0s else 0.0


def _right_edge(x1s: list[float]) -> float:
    """A high percentile of line ends: the measure in justified and ragged text alike."""
    if not x1s:
        return 0.0
    ordered = sorted(x1s)
    return ordered[int(0.85 * (len(ordered) - 1))]


def compute_stats(pages: list[list[Line]], page_height: float) -> Stats:
    sizes: Counter[float] = Counter()
    for lines in pages:
        for ln in lines:
            sizes[round(ln.size * 2) / 2] += len(ln.text)
    body = sizes.most_common(1)[0][0] if sizes else 10.0
    tol = 0.035 * body
    pitches: list[float] = []
    per_parity: dict[tuple[int, int], tuple[list[float], list[float]]] = {}
    page_edges: dict[tuple[int, int], tuple[list[float], list[float]]] = {}
    for lines in pages:
        prev = None
        for ln in lines:
            if abs(ln.size - body) > tol:
                continue
            key = (ln.page, max(ln.col, 0))
            xs = page_edges.setdefault(key, ([], []))
            xs[0].append(round(ln.x0))
            xs[1].append(round(ln.x1))
            par = per_parity.setdefault((ln.page % 2, max(ln.col, 0)), ([], []))
            par[0].append(round(ln.x0))
            par[1].append(round(ln.x1))
            if prev is not None and prev.col == ln.col and 0 < ln.base - prev.base < 3 * body:
                pitches.append(round(ln.base - prev.base, 1))
            prev = ln
    left, right = {}, {}
    for key, (x0s, x1s) in page_edges.items():
        fallback = per_parity[(key[0] % 2, key[1])]
        src = (x0s, x1s) if len(x0s) >= 6 else fallback
        left[key] = _left_edge(src[0])
        right[key] = _right_edge(src[1])
    for (parity, col), (x0s, x1s) in per_parity.items():  # pages without body text use their side's edges
        left[(-1 - parity, col)] = _left_edge(x0s)
        right[(-1 - parity, col)] = _right_edge(x1s)
    return Stats(body, _mode(pitches, 1.2 * body), left, right, page_height)
