"""The held-out split leaks no training text: chapters, --eval-books, and the 8-word rule on the real sample books."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from booktune.dataset.build import book_rows
from booktune.dataset.chunk import Words
from booktune.dataset.split import chapter_word_starts, pick_chapter, split_book

N = 8
PROMPTS = {"system_prompt": "You are {author}.", "user_prompt": "Continue {title}:\n\n{lead_in}"}


def grams(words: list[str], n: int = N) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


@pytest.fixture(scope="module")
def books(books_dir):
    from booktune.ingest import load_book

    return [load_book(p) for p in sorted(books_dir.glob("*.pdf"))]


def shared_runs(rows) -> tuple[set[tuple[str, ...]], list[tuple[str, ...]]]:
    """8-word runs of the training text (lead-ins and passages), and the eval passages' runs found among them."""
    train = {g for r in rows.train for g in grams((r["lead_in"] + " " + r["passage"]).split())}
    shared = [g for r in rows.eval for g in grams(r["passage"].split()) if g in train]
    return train, shared


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_real_books_share_no_eight_word_run_unless_the_author_repeats_himself(books, fraction):
    for book in books:
        rows = book_rows(book, Path(book.path).stem, chunk_words=200, overlap_words=50, eval_fraction=fraction,
                         **PROMPTS)
        assert rows.train and rows.eval
        source = Counter(grams(book.text.split()))
        _, shared = shared_runs(rows)
        leaked = [g for g in shared if source[g] < 2]  # a run the source has once cannot be in both splits
        assert not leaked, (book.path, leaked[:3])
        assert len(shared) <= 10, (book.path, len(shared))  # repeats exist, but are rare


def test_real_books_are_split_at_a_chapter_heading_with_a_gap(books):
    for book in books:
        assert book.chapters, book.path  # both sample PDFs have detected chapters
        rows = book_rows(book, "b", chunk_words=200, overlap_words=50, eval_fraction=0.1, **PROMPTS)
        assert rows.split_by == "chapters"
        assert rows.gap_words >= 200
        titles = [c.title for c in book.chapters]
        first_eval = rows.eval[0]["passage"]
        assert any(first_eval.startswith(t.split()[0]) for t in titles), first_eval[:80]


def test_a_held_out_book_goes_to_eval_whole(books):
    book = books[0]
    rows = book_rows(book, "b", chunk_words=200, overlap_words=50, eval_fraction=0.1, hold_out=True, **PROMPTS)
    assert rows.train == [] and rows.split_by == "whole book"
    assert sum(len(r["passage"].split()) for r in rows.eval) == len(book.text.split())


def test_eval_books_names_a_book_by_file_name_or_stem_and_rejects_unknown_names(tmp_path, books_dir):
    import booktune
    from booktune.dataset.prepare import PrepareError

    result = booktune.prepare(books_dir, tmp_path / "a", eval_books=["thoreau_walden"], model=None)
    per_book = {b["slug"]: b for b in result.stats["books"]}
    assert per_book["thoreau_walden"]["train"] == 0 and per_book["thoreau_walden"]["eval"] > 0
    assert per_book["russell_problems-of-philosophy"]["train"] > 0
    with pytest.raises(PrepareError, match="eval_books.*'nope.pdf'"):
        booktune.prepare(books_dir, tmp_path / "b", eval_books=["nope.pdf"], model=None)


def synthetic(n_paragraphs: int = 60, words_per: int = 50) -> tuple[str, Words]:
    paras = [" ".join(f"p{p}w{i}" + ("." if i % 10 == 9 else "") for i in range(words_per))
             for p in range(n_paragraphs)]
    text = "\n\n".join(paras)
    return text, Words.from_text(text)


def test_chapter_offsets_map_to_word_indices():
    text, _ = synthetic()
    offsets = [text.index("p10w0"), text.index("p50w0")]
    assert chapter_word_starts(text, offsets) == [500, 2500]


def test_the_chapter_nearest_the_asked_share_is_held_out_and_far_ones_are_not():
    text, words = synthetic()  # 3,000 words
    s = split_book(words, eval_fraction=0.1, target=100, overlap=20, chapter_starts=[500, 2600])
    assert s.by == "chapters" and s.eval[0].start == 2600 and s.train[-1].end <= 2500
    assert s.gap_words >= 100
    far = split_book(words, eval_fraction=0.1, target=100, overlap=20, chapter_starts=[500, 1500])
    assert far.by == "paragraphs"  # holding out half the book is not what 0.1 asked for


def test_held_out_lead_ins_never_quote_training_text():
    _, words = synthetic()
    s = split_book(words, eval_fraction=0.1, target=100, overlap=20, chapter_starts=[2600])
    train_words = {w for c in s.train for w in (c.lead_in + " " + c.passage).split()}
    assert not train_words & set(s.eval[0].lead_in.split())
    assert pick_chapter([2600], 3000, 300, 100) == 2600 and pick_chapter([2990], 3000, 300, 100) is None
