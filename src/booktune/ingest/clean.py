"""Character and paragraph normalisation, and the line-end hyphenation joiner.

Used by every reader (PDF, EPUB, TXT/MD). Pure functions on str: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

LIGATURES = {
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi",
    "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st",
}
# Zero-width and invisible characters that carry no text (ZWSP, ZWNJ, ZWJ, word joiner, BOM...).
_INVISIBLE = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e"
_SPACES = "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_TABLE = {ord(k): v for k, v in LIGATURES.items()}
_TABLE.update({ord(c): None for c in _INVISIBLE})
_TABLE.update({ord(c): " " for c in _SPACES})
_TABLE[0x2028] = "\n"  # line / paragraph separators are real breaks
_TABLE[0x2029] = "\n"
# A ligature glyph with no ToUnicode map is often followed by a spurious space ("ﬁ nd").
# Not for ff: "o\ufb00 the" is a real word end.
_LIG_SPACE = re.compile("([\ufb01-\ufb06]) (?=[a-z\u00df-\u00ff])")
_SOFT_HYPHEN = re.compile(r"\u00ad\s*")
_WS = re.compile(r"\s+")


def _removal_table() -> dict[int, str | None]:
    """Translate table: every control, format, surrogate, private-use and unassigned BMP
    character (categories C*) is dropped, except newline and tab."""
    table: dict[int, str | None] = {}
    for cp in range(0x10000):
        if cp not in (9, 10) and unicodedata.category(chr(cp))[0] == "C":
            table[cp] = None
    table.update(_TABLE)  # ligatures, spaces and separators keep their mapping
    return table


_FULL_TABLE = _removal_table()
_ASTRAL_OTHER = re.compile("[\U00010000-\U0010FFFF]")


def _drop_astral_other(text: str) -> str:
    return _ASTRAL_OTHER.sub(lambda m: "" if unicodedata.category(m.group())[0] == "C" else m.group(), text)


def normalize_chars(text: str) -> str:
    """Expand ligatures, drop control/invisible characters and soft hyphens, NBSP -> space.

    Curly quotes, dashes, accents and Greek are kept as printed. Idempotent.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii():
        return text.translate(_FULL_TABLE)
    text = _LIG_SPACE.sub(r"\1", text)
    if "\u00ad" in text:
        text = _SOFT_HYPHEN.sub("", text)  # a soft hyphen is only ever a break opportunity
    text = text.translate(_FULL_TABLE)
    if _ASTRAL_OTHER.search(text):
        text = _drop_astral_other(text)
    return unicodedata.normalize("NFC", text)


def normalize_paragraph(paragraph: str) -> str:
    """Strip and collapse whitespace runs (newlines included) to one space."""
    return _WS.sub(" ", paragraph).strip()


def normalize_paragraphs(paragraphs: Iterable[str]) -> str:
    """One paragraph per line, a blank line between paragraphs; empty paragraphs dropped."""
    out = (normalize_paragraph(p) for p in paragraphs)
    return "\n\n".join(p for p in out if p)


# --------------------------------------------------------------------------- hyphenation
LINE_HYPHENS = "-\u2010\u2011\u00ad"
_WORD = re.compile(r"[^\W\d_]+(?:['’\-\u2010\u2011][^\W\d_]+)*")
_TAIL = re.compile(r"([^\W\d_]+(?:[\-\u2010\u2011][^\W\d_]+)*)([\-\u2010\u2011\u00ad])\s*$")
_HEAD = re.compile(r"\s*([^\W\d_]+(?:[\-\u2010\u2011][^\W\d_]+)*)")
# Prefixes that form compounds far more often than they end a syllable; used only
# when the book itself offers no evidence either way.
COMPOUND_PREFIXES = frozenset({"self", "well", "ill", "half", "quasi", "non", "all"})
_DASH_END = ("\u2014", "\u2013", "\u2015")
_DASH_START = re.compile(r"[\u2014\u2015](?![\u2014\u2015])")  # one dash ('—but', '— Most'), not a blank '———'


def _line_end_hyphen(line: str) -> re.Match[str] | None:
    """Match (word, hyphen) when the line ends with a letter followed by a hyphen."""
    end = line.rstrip()
    if not end or end[-1] not in LINE_HYPHENS:
        return None
    return _TAIL.search(end[-80:])


def _fold(word: str) -> str:
    return word.translate(_HYPHEN_FOLD).casefold()


_HYPHEN_FOLD = str.maketrans({"\u2010": "-", "\u2011": "-"})


class HyphenEvidence:
    """Word counts of one book, for deciding line-end hyphens.

    Built from the book's lines: words broken across lines do not count, so the
    evidence is what the book prints whole elsewhere ('example', 'self-evident').
    """

    def __init__(self, lines: list[str]) -> None:
        self.counts: Counter[str] = Counter()
        self.affixes: tuple[Counter[str], ...] | None = None  # built on first need, see _pattern
        ends: Counter[str] = Counter()  # hyphen characters seen at line ends after a letter
        after_break = False
        for line in lines:
            words = _WORD.findall(line.translate(_HYPHEN_FOLD).casefold())
            tail = _line_end_hyphen(line)
            if tail:
                ends[tail.group(2)] += 1
                words = words[:-1]
            if after_break and words:
                words = words[1:]
            after_break = bool(tail)
            self.counts.update(words)
        # a hyphen character that never joins words inside a line only marks breaks
        text = "\n".join(lines)
        self.break_only = {ch for ch, n in ends.items()
                           if n >= 3 and not re.search(f"[^\\W\\d_]{re.escape(ch)}[^\\W\\d_]", text)}
        # dashes set closed ('be—something'): a line that opens with one continues without a space
        spaced = sum(text.count(f" {d} ") for d in "\u2014\u2013\u2015")
        self.closed_dashes = text.count("\u2014") + text.count("\u2015") > 2 * spaced

    def _pattern(self, head: str, tail: str) -> tuple[int, int]:
        """How often the book prints `head` / `tail` as part of a closed word ('how|ever', 'some|where')
        and as part of a hyphenated one ('well-nigh'): how it builds compounds from these halves."""
        if self.affixes is None:
            self.affixes = (Counter(), Counter(), Counter(), Counter())
            closed_heads, closed_tails, hyph_heads, hyph_tails = self.affixes
            for word in list(self.counts):
                if "-" in word:
                    first, *_, end = word.split("-")
                    hyph_heads[first] += 1
                    hyph_tails[end] += 1
                    continue
                for k in range(3, len(word) - 2):
                    if self.counts.get(word[:k]) and self.counts.get(word[k:]):
                        closed_heads[word[:k]] += 1
                        closed_tails[word[k:]] += 1
        closed_heads, closed_tails, hyph_heads, hyph_tails = self.affixes
        return closed_heads[head] + closed_tails[tail], hyph_heads[head] + hyph_tails[tail]

    def keep_hyphen(self, left: str, right: str, hyphen: str) -> bool:
        """True when 'left' + hyphen + 'right' is a real compound, not a broken word."""
        if hyphen == "\u00ad" or hyphen in self.break_only:
            return False
        if self.break_only:  # the book marks breaks with another character: this one is real
            return True
        if not right[:1].isalpha():
            return True
        joined = self.counts[_fold(left + right)]
        hyphenated = self.counts[_fold(left + "-" + right)]
        if joined != hyphenated:
            return hyphenated > joined
        last = _fold(re.split(r"[\-\u2010\u2011]", left)[-1])
        if right[0].isupper() or last in COMPOUND_PREFIXES:
            return True
        if len(last) < 3 or len(right) < 3 or not self.counts[last] or not self.counts[_fold(right)]:
            return False  # a half that is no word of the book: a syllable break ('state-|ment')
        closed, hyphenated = self._pattern(last, _fold(right))
        # else both halves are words of this book on their own: a compound ('space-relations')
        return hyphenated > closed if closed != hyphenated else True


def join_lines(lines: list[str], evidence: HyphenEvidence | None = None,
               joins: list[tuple[str, str]] | None = None) -> str:
    """Join the lines of one paragraph: re-join hyphenated words, close em dashes.

    When `joins` is given, each line-end hyphen decision is appended to it as
    (original 'left-|right', result).
    """
    evidence = evidence or HyphenEvidence(lines)
    parts: list[str] = []  # pieces of the paragraph; the last one is the open line
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if not parts:
            parts.append(line)
            continue
        last = parts[-1]
        tail = _line_end_hyphen(last)
        head = _HEAD.match(line) if tail else None
        if tail and head:
            left, hyphen, right = tail.group(1), tail.group(2), head.group(1)
            keep = evidence.keep_hyphen(left, right, hyphen)
            glue = "-" if keep and hyphen == "\u00ad" else (hyphen if keep else "")
            if joins is not None:
                joins.append((f"{left}{hyphen}|{right}", left + glue + right))
            parts[-1] = last[: len(last.rstrip()) - 1] + glue
        elif last.endswith(_DASH_END) and not last[:-1].endswith(" "):
            pass  # a closed em dash at a line end joins without a space
        elif evidence.closed_dashes and _DASH_START.match(line):
            pass  # so does one at a line start, in a book that closes its dashes
        else:
            parts.append(" ")
        parts.append(line)
    return "".join(parts)
