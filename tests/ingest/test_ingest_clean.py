"""Cleaning functions: unit cases and hypothesis properties."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from booktune.ingest.clean import HyphenEvidence, join_lines, normalize_chars, normalize_paragraphs

# ligature characters are left out: "\ufb01 nd" -> "find" is the one intended merge of two tokens
WORD = st.text(alphabet=st.characters(categories=("Ll", "Lu"), exclude_characters="\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06"),
               min_size=1, max_size=12)
PROSE_WORD = st.one_of(WORD, st.sampled_from(["“Yes,”", "philosophy—", "self-evident", "café", "λόγος", "1912", "it’s"]))


def test_ligatures_expand_and_spurious_space_goes():
    assert normalize_chars("the \ufb01 nd of a \ufb02 ower, a\ufb03 x") == "the find of a flower, affix"
    assert normalize_chars("o\ufb00 the staff") == "off the staff"  # ff ends real words: space kept


def test_invisible_and_control_characters_removed_printed_ones_kept():
    raw = "co\u00adop\u200bera\u2060tion\x07\x00 \u201cquoted\u201d \u2014 caf\u00e9 \u03bb\u03cc\u03b3\u03bf\u03c2\ufeff"
    assert normalize_chars(raw) == "cooperation \u201cquoted\u201d \u2014 caf\u00e9 \u03bb\u03cc\u03b3\u03bf\u03c2"
    assert normalize_chars("a\u00a0b\u2009c\r\nd\te") == "a b c\nd\te"
    assert normalize_chars("private \ue000 use \U0001f600 emoji") == "private  use \U0001f600 emoji"


def test_paragraphs_one_per_line_blank_between():
    assert normalize_paragraphs(["  One  two\nthree ", "", "\n", "Four"]) == "One two three\n\nFour"


def test_hyphen_joiner_uses_the_books_evidence():
    ev = HyphenEvidence(["a self-evident truth", "an example here", "sense-data and sense-data"])
    joins: list[tuple[str, str]] = []
    out = join_lines(["this exam-", "ple is self-", "evident, as sense-", "data are; philoso-", "phy—", "for ever"], ev, joins)
    assert out == "this example is self-evident, as sense-data are; philosophy—for ever"
    assert joins[0] == ("exam-|ple", "example") and joins[1] == ("self-|evident", "self-evident")


def test_a_hyphen_char_used_only_at_line_ends_always_joins():
    # WeasyPrint style: U+2010 only at breaks, so a line-end '-' is a real compound
    lines = [f"word{i} con\u2010" if i % 2 == 0 else "tinued here" for i in range(8)]
    ev = HyphenEvidence(lines + ["a well-known fact"])
    assert join_lines(["con\u2010", "tinued and nettle-", "tree"], ev) == "continued and nettle-tree"
    assert join_lines(["soft\u00ad", "ware"], ev) == "software"


def test_how_the_book_builds_compounds_decides_when_the_word_is_not_printed_whole():
    # neither 'everywhere' nor 'every-where' is printed, but 'somewhere' closes 'where' on: join;
    # 'slave-driver' and 'slave-holder' hyphenate 'slave': keep 'slave-trade'
    lines = ["every man went somewhere", "where some go", "a slave, the slave-driver and slave-holder", "trade"]
    ev = HyphenEvidence(lines)
    assert join_lines(["went every-", "where"], ev) == "went everywhere"
    assert join_lines(["the slave-", "trade"], ev) == "the slave-trade"
    # without 'somewhere': both halves are words of the book, nothing else to go by: a compound
    assert join_lines(["went every-", "where"], HyphenEvidence(["every man went", "where some go"])) \
        == "went every-where"
    # 'ment' is no word of the book: a syllable break, whatever 'state-prison' says of 'state'
    ev = HyphenEvidence(["the state-prison of the state"] + lines)
    assert join_lines(["this state-", "ment is", "ex-", "tended"], ev) == "this statement is extended"


def test_a_line_that_opens_with_a_dash_closes_it_when_the_book_does():
    closed = HyphenEvidence(["this—that and here—there", "one—two"])
    spaced = HyphenEvidence(["this — that and here — there", "one — two"])
    assert join_lines(["might be", "—something else"], closed) == "might be—something else"
    assert join_lines(["might be", "—something else"], spaced) == "might be —something else"
    assert join_lines(["behind them:", "— Most men"], closed) == "behind them:— Most men"
    assert join_lines(["the town of", "——— was"], closed) == "the town of ——— was"  # a blank, not a dash


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_normalize_chars_total_idempotent_and_printable(text):
    once = normalize_chars(text)
    assert normalize_chars(once) == once
    assert all(c in "\n\t" or unicodedata.category(c)[0] != "C" for c in once)
    assert not any("\ufb00" <= c <= "\ufb06" for c in once)


@given(st.lists(st.text(), max_size=6))
@settings(max_examples=200, deadline=None)
def test_normalize_paragraphs_total_and_idempotent(paras):
    out = normalize_paragraphs(paras)
    assert normalize_paragraphs(out.split("\n\n")) == out
    assert "\n\n\n" not in out and out == out.strip()


@given(st.lists(st.lists(PROSE_WORD, min_size=1, max_size=8), min_size=1, max_size=8))
@settings(max_examples=200, deadline=None)
def test_word_order_preserved(lines_of_words):
    lines = [" ".join(ws) for ws in lines_of_words]
    words = [w for ws in lines_of_words for w in ws]
    assert normalize_chars(" ".join(lines)).split() == [normalize_chars(w) for w in words]
    joined = join_lines(lines)
    # no line ends in a hyphen here, so joining only glues a line-end em dash to the next word
    assert joined.replace("—", "— ").split() == " ".join(lines).replace("—", "— ").split()
    assert normalize_paragraphs([joined]).split() == joined.split()


@given(st.lists(st.lists(PROSE_WORD, min_size=1, max_size=10), min_size=1, max_size=5))
@settings(max_examples=100, deadline=None)
def test_clean_prose_is_a_fixed_point(paras):
    text = normalize_paragraphs(normalize_chars(" ".join(ws)) for ws in paras)
    assert normalize_paragraphs(normalize_chars(p) for p in text.split("\n\n")) == text
    assert join_lines([text.replace("\n\n", " ")]) == text.replace("\n\n", " ")
