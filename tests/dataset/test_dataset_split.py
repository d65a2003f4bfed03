from booktune.dataset.chunk import Words
from booktune.dataset.split import split_book


def book(n_paragraphs=60, words_per=50):
    paras = [" ".join(f"p{p}w{i}" + ("." if i % 10 == 9 else "") for i in range(words_per)) for p in range(n_paragraphs)]
    return Words.from_text("\n\n".join(paras))


def longest_shared_run(a: list[str], b: list[str], n: int = 8) -> bool:
    grams = {tuple(a[i : i + n]) for i in range(len(a) - n + 1)}
    return any(tuple(b[i : i + n]) in grams for i in range(len(b) - n + 1))


def test_eval_is_the_tail_after_a_gap_of_one_passage():
    w = book()
    s = split_book(w, eval_fraction=0.2, target=100, overlap=20)
    assert s.eval and s.train
    assert s.train[-1].end < s.eval[0].start
    assert s.gap_words >= 75  # one passage, give or take the move to a sentence end
    assert s.eval[-1].end == len(w)


def test_no_eval_passage_shares_eight_words_with_training_text():
    w = book()
    s = split_book(w, eval_fraction=0.2, target=100, overlap=20)
    train_words = [x for c in s.train for x in (c.lead_in + " " + c.passage).split()]
    for c in s.eval:
        assert not longest_shared_run(train_words, c.passage.split())


def test_small_books_and_zero_fraction_hold_nothing_out():
    assert split_book(book(3), eval_fraction=0.1, target=100, overlap=20).eval == []
    assert split_book(book(), eval_fraction=0.0, target=100, overlap=20).eval == []
