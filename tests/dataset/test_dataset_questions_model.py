"""The model question writer on a tiny random model: it writes and scores through the model, caches both in DATA so
that a second prepare loads no model, curates at min_score, names a model that cannot load or does not fit, and
halves a batch that runs out of GPU memory."""

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


def out_of_memory(*args, **kwargs):
    """What loading a model larger than the GPU raises."""
    import torch

    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


@pytest.mark.parametrize("case", ["missing", "too large for the GPU"])
def test_a_writer_that_cannot_load_is_named_or_falls_back_when_allowed(case, tmp_path, short_book, tiny_model_dir,
                                                                        monkeypatch):
    import booktune.model

    if case == "missing":
        writer, needle = str(tmp_path / "no-such-model"), r"^question model .*no-such-model: "
    else:  # its tokenizer loads; its weights do not fit
        monkeypatch.setattr(booktune.model, "load_model", out_of_memory)
        writer, needle = str(tiny_model_dir), r"^question model .+: its weights do not fit in the memory of"
    with pytest.raises(QuestionModelError, match=needle) as err:
        booktune.prepare([short_book], tmp_path / "a", model=None, question_writer="model", question_model=writer,
                         **BOOK)
    assert "\n" not in str(err.value)
    stats = booktune.prepare([short_book], tmp_path / "b", model=None, question_writer="model,keywords",
                             question_model=writer, **BOOK).stats["questions"]
    assert stats["writer"] == "keywords" and stats["kept"] > 0


def test_a_batch_out_of_gpu_memory_is_written_again_in_halves(tiny_model_dir, monkeypatch):
    import torch

    import booktune.inference.generate as generate
    from booktune.dataset.questions import Context
    from booktune.dataset.questions.model import load_writer, write

    model, tokenizer = load_writer(Context(str(tiny_model_dir)))
    texts = [f"Passage {i}: the pond in winter, and what the ice told of the depth of the water." for i in range(11)]
    whole = write(model, tokenizer, texts)
    real, sizes = generate.generate_replies, []

    def limited(model, tokenizer, prompts, **kwargs):  # a GPU that holds at most 3 passages at a time
        sizes.append(len(prompts))
        if len(prompts) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(model, tokenizer, prompts, **kwargs)

    monkeypatch.setattr(generate, "generate_replies", limited)
    assert write(model, tokenizer, texts) == whole
    assert sizes == [11, 5, 2, 2, 2, 2, 2, 1]  # 32 passages asked for (all 11 here), then halves until 2 fit
    monkeypatch.setattr(generate, "generate_replies", lambda *a, **k: (_ for _ in ()).throw(torch.OutOfMemoryError()))
    with pytest.raises(QuestionModelError, match="one passage at a time does not fit"):
        write(model, tokenizer, texts)


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
