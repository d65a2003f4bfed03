"""Footnotes: reference marks in the prose and note texts at the foot of the page.

A reference mark is a short run of digits or note symbols set as a superscript
(PyMuPDF's superscript flag, or a smaller raised span). Notes are looked for at
the foot of each column (any number of columns): in the small type below the
column's last prose-size line, the first line that opens with a mark found in
the page's prose, or with a mark and set apart (rule or gap) in small type,
starts the notes; small type above it (a block quote) stays prose. A note
carried over from the previous column or page has no mark: it is taken when it
sits under a separator rule, or in small type set apart by a gap and
mid-sentence (lower-case start, or the open note lacks its final punctuation).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from booktune.ingest.pdf.layout import SUPERSCRIPT, Line, Span, Stats

_MARK = re.compile(r"[\d*∗†‡§¶‖|#]{1,3}|[a-z]")
# '3. Text', '* Text', or the mark glued to a capital as word processors set it ('3In order')
_LEADING_MARK = re.compile(r"^\s*(\d{1,3}|[*∗†‡§¶‖|]{1,3})(?:[.)]?\s+(?=\S)|(?=[A-Z“‘\"(]))")
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
    keep: list[Span] = []
    spans = line.spans
    for i, span in enumerate(spans):
        if i > 0 and _is_mark(span, line):  # a mark follows the word it annotates
            line.markers.append(span.text.strip())
            after = spans[i + 1] if i + 1 < len(spans) else None
            if after and after.x0 - span.x1 > 0.15 * line.size and not after.text[:1].isspace() \
                    and not keep[-1].text[-1:].isspace():  # the word gap was set as space, not as a character
                keep.append(Span(" ", span.size, 0, span.x1, after.x0, line.base))
        else:
            keep.append(span)
    if line.markers:
        line.spans = keep
        line.text = "".join(s.text for s in keep)
    if not line.text.isascii() and _UNICODE_SUP.search(line.text):
        line.markers.extend(_UNICODE_SUP.findall(line.text))
        line.text = _UNICODE_SUP.sub("", line.text)


RuleCheck = Callable[[int, float, float, float], bool]  # (page, y, x0, x1): a rule just above y?
_TERMINAL = tuple(".!?:;\u201d\u2019\")]")
_SUP_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


def _leading_mark(line: Line) -> str | None:
    """The mark a note line opens with: a smaller first span ('3' + 'In daily...') or '3.' / '*' then a space."""
    first = next((s for s in line.spans if s.text.strip()), None)
    if first is None:
        return None
    t = first.text.strip()
    if _MARK.fullmatch(t.rstrip(".)")) and not t.isalpha() and first.size < 0.85 * line.size:
        return t.rstrip(".)")
    m = _LEADING_MARK.match(line.text)
    return m.group(1) if m else None


def _page_marks(lines: list[Line]) -> set[str]:
    """Reference marks in the page's kept lines (not the mark a line opens with)."""
    marks: set[str] = set()
    for ln in lines:
        if ln.reason is None:
            marks.update(s.text.strip() for s in ln.spans[1:] if _is_mark(s, ln))
            if not ln.text.isascii():
                marks.update(m.translate(_SUP_DIGITS) for m in _UNICODE_SUP.findall(ln.text))
    return marks


def _columns(lines: list[Line]) -> list[list[Line]]:
    """Kept lines per column (spanning lines as their own group), each top to bottom as read."""
    groups: dict[int, list[Line]] = {}
    for ln in lines:
        if ln.reason is None:
            groups.setdefault(ln.col, []).append(ln)
    return [g for _, g in sorted(groups.items())]


def _foot_start(col: list[Line], stats: Stats) -> int:
    """Index where the small type at the column's foot begins (len(col) when there is none)."""
    k = len(col)
    while k > 0 and col[k - 1].size <= 0.9 * stats.body_size:
        k -= 1
    return k


def _gap_above(above: Line | None, ln: Line, stats: Stats) -> bool:
    """More space above `ln` than the leading of its neighbours' sizes gives."""
    if above is None:
        return False
    ratio = stats.pitch / stats.body_size
    return ln.base - above.base > 1.3 * ratio * (above.size + ln.size) / 2


class _Notes:
    """Note texts in reading order; each page's column feet are matched against the open notes."""

    def __init__(self, stats: Stats, has_rule: RuleCheck) -> None:
        self.stats, self.has_rule = stats, has_rule
        self.texts: list[list[str]] = []
        self.page_of_last, self.size = -1, 0.0  # where the last note was set, and in what size
        self.mark = ""  # the last note's mark

    def _ruled(self, ln: Line) -> bool:
        # from the top of the letters: a raised mark may reach above the rule's height
        return self.has_rule(ln.page, ln.base - 0.7 * ln.size, ln.x0, ln.x1)

    def _evidence(self, col: list[Line], i: int) -> list[str]:
        ln = col[i]
        found = []
        if self._ruled(ln):
            found.append("under a rule")
        elif _gap_above(col[i - 1] if i else None, ln, self.stats):
            found.append("set apart by a gap")
        if ln.size <= 0.85 * self.stats.body_size:
            found.append("small type")
        return found

    def _opener(self, col: list[Line], i: int, first: bool, marks: set[str]) -> str | None:
        mark = _leading_mark(col[i])
        if mark is None:
            return None
        found = self._evidence(col, i)
        if mark in marks:
            found.insert(0, f"mark {mark} in the prose")
        elif "small type" not in found or not (first or len(found) > 1):
            return None
        return f"note {mark}: " + ", ".join(found)

    def _continued(self, col: list[Line], i: int) -> str | None:
        """A note carried over from an earlier column or page: no mark, set apart, mid-sentence or ruled."""
        if not self.texts:
            return None
        ln, found = col[i], self._evidence(col, i)
        mid = ln.text.lstrip()[:1].islower() or not self.texts[-1][-1].rstrip().endswith(_TERMINAL)
        same_size = abs(ln.size - self.size) < 0.3
        if "under a rule" in found or ("small type" in found and len(found) > 1 and mid and same_size):
            if mid:
                found.append("begins mid-sentence")
            return f"continues the note from page {self.page_of_last + 1}: no mark, " + ", ".join(found)
        return None

    def column(self, col: list[Line], page: list[Line]) -> None:
        """Find where the notes start at the foot of one column and mark them."""
        foot = _foot_start(col, self.stats)
        if foot == len(col):
            return
        marks = _page_marks(page)
        # a separator rule inside the small type: the notes begin under it, what is above is prose
        ruled = next((i for i in range(foot, len(col)) if self._ruled(col[i])), foot)
        for i in range(ruled, len(col)):
            why = self._opener(col, i, i == foot, marks) or self._continued(col, i)
            if why:
                self._take(col[i:], why, marks)
                return

    def _opens(self, ln: Line, marks: set[str]) -> str | None:
        """The mark of a line that opens the next note inside a block of notes: a raised or smaller mark,
        one found in the prose, or the number after the last note's ('12 miles' inside a note is neither)."""
        mark = _leading_mark(ln)
        if mark is None:
            return None
        first = next(s for s in ln.spans if s.text.strip())
        follows = mark.isdigit() and self.mark.isdigit() and int(mark) == int(self.mark) + 1
        return mark if first.size < 0.85 * ln.size or mark in marks or follows else None

    def _take(self, lines: list[Line], why: str, marks: set[str]) -> None:
        for k, ln in enumerate(lines):
            ln.reason = "footnote"
            mark = _leading_mark(ln) if k == 0 else self._opens(ln, marks)
            if k == 0:
                ln.why = why
            if mark is not None or not self.texts:
                self.texts.append([_note_text(ln)])
                self.mark = mark or ""
                if k:
                    ln.why = f"note {mark}: follows the notes above"
            else:
                self.texts[-1].append(ln.text.strip())
        self.page_of_last, self.size = lines[-1].page, lines[-1].size


def _note_text(line: Line) -> str:
    spans = line.spans
    first = next((i for i, s in enumerate(spans) if s.text.strip()), 0)
    small = first < len(spans) and spans[first].size < 0.85 * line.size
    if small and _MARK.fullmatch(spans[first].text.strip().rstrip(".)")):
        return "".join(s.text for s in spans[first + 1:]).strip()
    return _LEADING_MARK.sub("", line.text, count=1).strip()


def mark_notes(pages: list[list[Line]], stats: Stats, has_rule: RuleCheck) -> list[list[str]]:
    """Set reason 'footnote' (and `why`) on note lines at the foot of each column; return each note's lines."""
    notes = _Notes(stats, has_rule)
    small = 0.9 * stats.body_size
    for lines in pages:
        if not any(ln.size <= small and ln.reason is None for ln in lines):
            continue  # no small type on the page: no notes (the common case, decided fast)
        for col in _columns(lines):
            notes.column(col, lines)
    return notes.texts
