"""Stylometry on texts small enough to check by hand."""

from __future__ import annotations

import pytest

from booktune.evaluation.voice import (
    burrows_delta,
    mattr,
    most_frequent_words,
    profile,
    sentence_lengths,
    tokenize_words,
    voice_report,
)


def test_words_are_lower_cased_and_keep_inner_apostrophes():
    assert tokenize_words("Don't STOP -- the end, 42 times.") == ["don't", "stop", "the", "end", "times"]


def test_sentence_lengths_split_at_terminal_punctuation():
    assert sentence_lengths("One two. Three four five! Six? Seven eight") == [2, 3, 1, 2]
    assert sentence_lengths('He said "go." Then left.') == [3, 2]


def test_profile_rates_are_per_thousand_words():
    p = profile("The cat sat; the dog ran, and a bird sang. Then it rained!")  # 13 words: sentences of 10 and 3
    assert p.words == 13
    assert p.function_words["the"] == pytest.approx(1000 * 2 / 13)
    assert p.function_words["and"] == pytest.approx(1000 / 13)
    assert p.punctuation["semicolon"] == pytest.approx(1000 / 13)
    assert p.punctuation["comma"] == pytest.approx(1000 / 13)
    assert p.punctuation["exclamation"] == pytest.approx(1000 / 13)
    assert [p.sentence_mean, p.sentence_median] == [6.5, 6.5]
    assert p.type_token_ratio == pytest.approx(12 / 13)  # 'the' twice
    assert p.hapax_ratio == pytest.approx(11 / 12)


def test_mattr_averages_the_type_token_ratio_over_moving_windows():
    assert mattr(["a", "b", "a", "b"], window=2) == 1.0
    assert mattr(["a", "a", "a", "b"], window=2) == pytest.approx((1 + 1 + 2) / 3 / 2)
    assert mattr(["a", "a"], window=100) == 0.5  # shorter than the window: plain TTR


def test_most_frequent_words_break_ties_alphabetically():
    assert most_frequent_words(["b a", "c b"], 2) == ["b", "a"]


def test_burrows_delta_by_hand():
    reference = ["a a b", "a b b"]  # rates of a: 2/3 and 1/3 (mean 1/2, sd 1/6); of b the mirror image
    # z-scores: doc 1 (a +1, b -1), doc 2 (a -1, b +1): each word differs by 2, so Delta = 2
    assert burrows_delta("a a b", "a b b", reference, n_words=2) == pytest.approx(2.0)
    assert burrows_delta("a a b", "a a b", reference, n_words=2) == 0.0
    assert burrows_delta("a b", "a a b", reference, n_words=2) == pytest.approx(1.0)  # rates 1/2 vs 2/3: z 0 vs 1
    with pytest.raises(ValueError):
        burrows_delta("a", "b", ["a b"])


def test_voice_report_puts_a_copy_of_the_author_closer_than_a_stranger():
    author = ["The pond was still, and the woods were deep; I went there to live deliberately.",
              "I have travelled a good deal in Concord, and the pond is my neighbour."]
    stranger = ["Sense-data are known by acquaintance: knowledge of truths is another matter entirely.",
                "Philosophy, if it cannot answer so many questions, can at least ask them!"]
    r = voice_report(author, stranger, author, n_words=30)
    assert r["delta_tuned"] == 0.0 < r["delta_base"]
    assert r["reference_documents"] == 6
    assert r["profiles"]["author"]["words"] == len(" ".join(author).split())
