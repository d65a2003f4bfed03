from hypothesis import given, settings
from hypothesis import strategies as st

from booktune.dataset.chunk import Words, best_cut, chunk_words


def test_words_keep_paragraph_breaks():
    w = Words.from_text("One two.\n\nThree four five.\nSix.")
    assert w.words == ["One", "two.", "Three", "four", "five.", "Six."]
    assert w.join(0, 6) == "One two.\n\nThree four five.\n\nSix."
    assert w.join(1, 3) == "two.\n\nThree"


def test_cut_prefers_the_nearest_sentence_end():
    text = " ".join(["w"] * 8 + ["end."] + ["w"] * 20)
    w = Words.from_text(text)
    assert best_cut(w, 0, 10, len(w)) == 9  # sentence end at 9 words, 1 from the target of 10
    assert best_cut(w, 0, 20, len(w)) == 20  # no sentence end within the slack: cut at the target word


def test_passages_cover_the_text_once_and_lead_ins_precede_them():
    text = " ".join(f"w{i}." if i % 7 == 6 else f"w{i}" for i in range(1000))
    w = Words.from_text(text)
    chunks = chunk_words(w, 0, len(w), target=100, overlap=20)
    assert chunks[0].start == 0 and chunks[-1].end == len(w)
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:]))
    assert chunks[0].lead_in == ""
    for c in chunks[1:]:
        assert c.lead_in.split() == w.words[c.start - 20 : c.start]
        assert c.passage.split()[0] == w.words[c.start]


def test_lead_in_never_reaches_below_the_floor():
    w = Words.from_text(" ".join(f"w{i}." for i in range(300)))
    chunks = chunk_words(w, 100, 300, target=50, overlap=30, lead_floor=90)
    assert chunks[0].lead_in.split() == w.words[90:100]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="abc .!?\n", min_size=1, max_size=12), min_size=1, max_size=300),
       st.integers(5, 60), st.integers(0, 4))
def test_chunking_preserves_every_word_in_order(pieces, target, overlap):
    w = Words.from_text(" ".join(pieces))
    if not len(w):
        return
    chunks = chunk_words(w, 0, len(w), target=target, overlap=overlap)
    words = [x for c in chunks for x in c.passage.split()]
    assert words == w.words
