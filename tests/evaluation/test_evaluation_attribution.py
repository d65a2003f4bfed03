"""The attribution measure is checked on real text: each sample book's held-out passages (its last tenth, as
`prepare` holds out) are attributed to their own author, against the other book and against the distractor."""

import pytest

from booktune.evaluation.attribution import DISTRACTOR, DISTRACTOR_AUTHOR, fit, passages_of, with_distractor

BOOKS = {"Bertrand Russell": "russell_problems-of-philosophy", "Henry David Thoreau": "thoreau_walden"}


@pytest.fixture(scope="module")
def split(shared_dir):
    """Each author's training passages (the first nine tenths) and held-out passages (the last tenth)."""
    train, held = {}, {}
    for author, slug in BOOKS.items():
        passages = passages_of((shared_dir / "corpus" / f"{slug}.truth.txt").read_text(encoding="utf-8"))
        cut = int(len(passages) * 0.9)
        train[author], held[author] = passages[:cut], passages[cut:]
    return train, held


def test_held_out_passages_are_attributed_to_their_author(split):
    train, held = split
    classifier = fit(train)
    for author, passages in held.items():
        assert len(passages) >= 10
        assert classifier.accuracy(passages, author) >= 0.9, author


def test_burrows_classic_delta_would_miss_russells_last_chapter(split):
    """Why the classifier uses cosine Delta: the mean absolute z-score difference misattributes this chapter."""
    import numpy as np

    train, held = split
    c = fit(train)
    keep = c.sds > 0
    classic = [c.authors[int(np.argmin(np.abs(c.profiles[:, keep] - c.z(t)[keep]).mean(axis=1)))]
               for t in held["Bertrand Russell"]]
    assert classic.count("Bertrand Russell") / len(classic) < 0.9
    assert c.accuracy(held["Bertrand Russell"], "Bertrand Russell") >= 0.9


def test_one_author_is_told_apart_from_the_distractor(split):
    train, held = split
    authors = with_distractor({"Henry David Thoreau": train["Henry David Thoreau"]})
    assert list(authors) == ["Henry David Thoreau", DISTRACTOR_AUTHOR] and len(authors[DISTRACTOR_AUTHOR]) > 50
    classifier = fit(authors)
    assert classifier.accuracy(held["Henry David Thoreau"], "Henry David Thoreau") >= 0.9
    assert classifier.accuracy(held["Bertrand Russell"], "Henry David Thoreau") <= 0.1  # not everything is Thoreau


def test_the_distractor_is_shipped_with_its_source():
    assert len(DISTRACTOR.read_text(encoding="utf-8").split()) > 20_000
    notes = (DISTRACTOR.parent / "README.md").read_text(encoding="utf-8")
    assert "CC0" in notes and "standardebooks/john-stuart-mill_on-liberty" in notes


def test_attribution_needs_two_authors():
    with pytest.raises(ValueError, match="two authors"):
        fit({"A": ["some text here"]})
