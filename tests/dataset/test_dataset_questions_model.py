"""The model question writer on a tiny random model: it writes and scores through the model, caches both in DATA so
that a second prepare loads no model, curates at min_score, and names a model that cannot load."""

import json
import shutil

import pytest

import booktune
from booktune.dataset import load_conversations
from booktune.dataset.questions.cache import CACHE_FILE, passage_key
from booktune.dataset.questions.model import QuestionModelError, clean_question, parse_score, writer_key

BOOK = {"chunk_words": 400, "overlap_words": 20}


def passages(data):
    rows = load_conversations(data, "train") + load_conversations(data, "eval")
    return [r for r in rows if r["task"] == "continue"]


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory, tiny_model_dir):
    """A copy of the tiny model that a test may move away."""
    return shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("writer") / "tiny")


def test_questions_are_written_once_and_then_come_from_the_cache(tmp_path, short_book, model_copy):
    settings = {"model": None, "question_writer": "model", "question_model": str(model_copy), "min_score": 1, **BOOK}
    first = booktune.prepare([short_book], tmp_path, **settings).stats["questions"]
    n = len(passages(tmp_path))
    assert (first["writer"], first["written"], first["cached"]) == ("model", n, 0)
    assert first["kept"] + first["dropped"] == n
    lines = [json.loads(x) for x in (tmp_path / CACHE_FILE).read_text().splitlines()]
    assert len(lines) == n and {x["writer"] for x in lines} == {writer_key(str(model_copy))}
    assert {x["passage"] for x in lines} == {passage_key(r["passage"]) for r in passages(tmp_path)}

    moved = model_copy.with_name("elsewhere")
    model_copy.rename(moved)  # a second prepare that loaded the model would fail now
    try:
        second = booktune.prepare([short_book], tmp_path, **settings).stats["questions"]
    finally:
        moved.rename(model_copy)
    assert second == first | {"cached": n}


def test_pairs_under_min_score_train_the_continuation_only(tmp_path, short_book, model_copy):
    settings = {"model": None, "question_writer": "model", "question_model": str(model_copy), **BOOK}
    booktune.prepare([short_book], tmp_path, **settings)  # writes the cache: then known questions and scores in it
    records = passages(tmp_path)
    key = writer_key(str(model_copy))
    cache = [{"passage": passage_key(r["passage"]), "writer": key, "question": f"What does part {i} say?",
              "score": 1 + i % 5} for i, r in enumerate(records)]
    (tmp_path / CACHE_FILE).write_text("".join(json.dumps(x) + "\n" for x in cache))

    stats = booktune.prepare([short_book], tmp_path, min_score=4, **settings).stats["questions"]
    kept = [x for x in cache if x["score"] >= 4]
    assert (stats["written"], stats["kept"], stats["dropped"], stats["cached"]) == (
        len(cache), len(kept), len(cache) - len(kept), len(cache))
    rows = load_conversations(tmp_path, "train") + load_conversations(tmp_path, "eval")
    assert sorted(r["question"] for r in rows if r["task"] == "answer") == sorted(x["question"] for x in kept)
    assert sum(r["task"] == "continue" for r in rows) == len(records)  # every passage still continues


def test_a_model_that_cannot_load_is_named_or_falls_back_when_allowed(tmp_path, short_book):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(QuestionModelError, match=r"^question model .*no-such-model: ") as err:
        booktune.prepare([short_book], tmp_path / "a", model=None, question_writer="model", question_model=missing,
                         **BOOK)
    assert "\n" not in str(err.value)
    stats = booktune.prepare([short_book], tmp_path / "b", model=None, question_writer="model,keywords",
                             question_model=missing, **BOOK).stats["questions"]
    assert stats["writer"] == "keywords" and stats["kept"] > 0


@pytest.mark.parametrize("reply, expected", [("Score: 4", 4), ("score:5.", 5), ("3", 3), ("Score: 9", None),
                                              ("I would give it a 4 out of 5", None), ("", None)])
def test_scores_are_read_from_the_reply(reply, expected):
    assert parse_score(reply) == expected


@pytest.mark.parametrize("reply, expected", [
    ('Question: "Why did you go to the woods?"', "Why did you go to the woods?"),
    ("Sure!\n1. What is the cost of a house?", "What is the cost of a house?"),
    ("The passage is about houses.", ""),
])
def test_the_question_is_taken_from_the_reply(reply, expected):
    assert clean_question(reply) == expected
