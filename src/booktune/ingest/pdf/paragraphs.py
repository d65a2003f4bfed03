"""Paragraphs from kept lines: where does a new paragraph start?

Signals, from strongest to weakest: a change of font size (headings, quotes,
verse), extra vertical space, a first-line indent, and a previous line that
stopped short although the next word would have fitted (block paragraphs).
Drop caps are merged into their line first, and synthetic small caps at a
paragraph start are lowered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from booktune.ingest.pdf.layout import Line, Span, Stats

_TERMINAL = tuple(".!?:;\u201d\u2019\")]\u2014")
_SENTENCE_END = tuple(".!?\u201d\u2019\")")


@dataclass
class Para:
    lines: list[Line] = field(default_factory=list)
    heading: bool = False  # set larger than the body text
    size: float = 0.0


def _is_cap(ln: Line, stats: Stats) -> bool:
    text = ln.text.strip()
    return ln.reason is None and ln.size >= 1.6 * stats.body_size and 0 < len(text) <= 2 and text[-1].isalpha()


def merge_drop_caps(lines: list[Line], stats: Stats) -> list[Line]:
    """Fold a large initial letter into the first line beside it; flag the lines beside it.

    The cap line gets reason 'drop cap' (its letter lives on in the merged line).
    """
    for cap in [ln for ln in lines if _is_cap(ln, stats)]:
        beside = [ln for ln in lines if ln is not cap and ln.reason is None and ln.col == cap.col
                  and ln.y0 < cap.y1 and ln.y1 > cap.y0 and ln.x0 >= cap.x1 - 2]
        if not beside:
            continue
        first = min(beside, key=lambda b: b.base)
        letter = cap.text.strip()
        first.spans = [Span(letter, cap.size, 0, cap.x0, cap.x1, first.base)] + first.spans
        first.text = letter + first.text.lstrip()
        first.cap = letter
        first.x0 = cap.x0
        _lower_small_caps(first, stats)
        cap.reason = "drop cap"
        for ln in beside:
            ln.dropcap = True
    return lines


def _lower_small_caps(ln: Line, stats: Stats) -> None:
    """Opening words set as shrunken capitals ('W' + 'HEN I') read as 'When I'."""
    changed = False
    for i, span in enumerate(ln.spans[1:], start=1):
        letters = [c for c in span.text if c.isalpha()]
        if not letters:
            continue
        if not all(c.isupper() for c in letters):
            break
        if span.size <= 0.88 * stats.body_size:
            ln.spans[i] = Span(span.text.lower(), span.size, span.flags, span.x0, span.x1, span.base)
            changed = True
        elif len(letters) > 1:
            break  # a full-size capital word ends the small caps; a lone 'I' does not
    if changed:
        ln.text = "".join(s.text for s in ln.spans)


def _word_fits(prev: Line, cur: Line, right: float) -> bool:
    """Would the first word of `cur` have fitted at the end of `prev`?"""
    word = cur.text.split(maxsplit=1)[0] if cur.text.strip() else ""
    char_w = cur.width / max(len(cur.text), 1)
    return prev.x1 + (len(word) + 1) * char_w < right - 0.5 * char_w


def _centred(ln: Line, left: float, right: float, em: float) -> bool:
    lgap, rgap = ln.x0 - left, right - ln.x1
    return not ln.dropcap and lgap > em and abs(lgap - rgap) < em


def _indented_in_block(prev: Line, cur: Line, stats: Stats) -> bool:
    """A new paragraph inside an indented block quote: indented from the block's own left edge
    (the previous line's), after a sentence's end. Body text is judged against the page's edges instead."""
    if stats.is_body(cur) or cur.dropcap or prev.dropcap:
        return False
    em = cur.size
    return 0.6 * em < cur.x0 - prev.x0 < 8 * em and prev.text.rstrip().endswith(_SENTENCE_END)


def starts_paragraph(prev: Line | None, cur: Line, stats: Stats) -> bool:
    if prev is None:
        return True
    em = stats.body_size
    if abs(cur.size - prev.size) > 0.035 * max(cur.size, prev.size):
        return True
    same_column = cur.page == prev.page and cur.col == prev.col
    if same_column and cur.base - prev.base > 1.15 * stats.pitch * cur.size / em:
        return True
    left, right = stats.edges(cur)
    indent = cur.x0 - left
    prev_left, _ = stats.edges(prev)
    same_indent = abs(indent - (prev.x0 - prev_left)) < 1  # e.g. a block quote indented on both sides
    if not same_column and not same_indent and _centred(cur, left, right, em) != _centred(prev, *stats.edges(prev), em):
        return True  # a page turn into or out of a centred title: no vertical gap to go by
    prev_full = prev.x0 - prev_left < 0.4 * em or prev.dropcap
    if 0.6 * em < indent < 8 * em and not cur.dropcap:
        if prev_full:
            return True
        short = prev.x1 < stats.edges(prev)[1] - 2 * em
        if short and stats.is_body(cur) and abs(cur.x0 - prev.x0) < 1 and prev.text.rstrip().endswith(_TERMINAL):
            return True  # a one-line paragraph followed by an indented one
    if _indented_in_block(prev, cur, stats):
        return True
    hyphenated = prev.text.rstrip().endswith(("-", "\u2010", "\u00ad"))
    if indent < 0.4 * em and prev_full and stats.is_body(cur) and not hyphenated:
        # a line stopped short though the next word fitted: the paragraph ended there
        return prev.text.rstrip().endswith(_TERMINAL) and _word_fits(prev, cur, stats.edges(prev)[1])
    return False


def build_paragraphs(lines: list[Line], stats: Stats) -> list[Para]:
    """Group kept lines (in reading order) into paragraphs."""
    paras: list[Para] = []
    prev: Line | None = None
    for ln in lines:
        if starts_paragraph(prev, ln, stats):
            paras.append(Para(size=ln.size, heading=ln.size >= 1.06 * stats.body_size))
        paras[-1].lines.append(ln)
        prev = ln
    return paras


def turn_reason(prev: Line, cur: Line, stats: Stats) -> str:
    """Why a paragraph carries on across a page or column turn: the evidence `starts_paragraph` weighed."""
    em = stats.body_size
    found = [f"same type size ({cur.size:g} pt)"]
    end = prev.text.rstrip()
    if end.endswith(("-", "\u2010", "\u00ad")):
        found.append("the last line ends in a hyphen")
    elif not end.endswith(_TERMINAL):
        found.append("the last line ends mid-sentence")
    if prev.x1 >= stats.edges(prev)[1] - 2 * em:
        found.append("it runs to the margin")
    left = stats.edges(cur)[0] if stats.is_body(cur) else prev.x0
    if cur.x0 - left < 0.6 * em:
        found.append("the next line has no indent")
    if cur.text.lstrip()[:1].islower():
        found.append("and starts in lower case")
    return ", ".join(found)
