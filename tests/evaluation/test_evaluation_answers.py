"""The answer measures on real text, as a run on the two sample books sees them: answers in the asked author's prose
come out closer to them and are attributed to them, where the other author's prose is not."""

import pytest

from booktune.evaluation.answers import answer_measures, training_passages
from booktune.evaluation.attribution import passages_of
from booktune.inference.generate import Reply

THOREAU, RUSSELL = "Henry David Thoreau", "Bertrand Russell"


@pytest.fixture(scope="module")
def texts(shared_dir):
    def read(slug):
        return passages_of((shared_dir / "corpus" / f"{slug}.truth.txt").read_text(encoding="utf-8"), 200)

    return read("thoreau_walden"), read("russell_problems-of-philosophy")


def test_the_authors_own_prose_beats_another_authors(texts):
    walden, russell = texts
    train = [{"id": f"w-{i}", "passage_id": f"w-{i}", "author": THOREAU, "passage": p, "task": "continue"}
             for i, p in enumerate(walden[:180])]
    train += [{"id": f"r-{i}", "passage_id": f"r-{i}", "author": RUSSELL, "passage": p, "task": "continue"}
              for i, p in enumerate(russell[:150])]
    train += [{**r, "id": r["id"] + "-q1", "task": "answer"} for r in train[:20]]  # a passage counted once
    questions = [{"id": f"q{i}", "author": THOREAU, "passage": p} for i, p in enumerate(walden[184:194])]
    base = [Reply(p, ended=i % 2 == 0) for i, p in enumerate(russell[160:170])]  # the other author's prose
    tuned = [Reply(p, ended=True) for p in walden[194:204]]  # the author's, not the passages asked for
    m = answer_measures(questions, base, tuned, train)
    assert {a: len(p) for a, p in training_passages(train).items()} == {THOREAU: 180, RUSSELL: 150}
    assert m["questions"] == 10
    assert m["delta"]["tuned"] < m["delta"]["base"] and m["delta"]["author"] < m["delta"]["base"]
    assert m["attribution"]["tuned"] >= 0.9 and m["attribution"]["author"] >= 0.9
    assert m["attribution"]["base"] <= 0.1
    assert m["attribution_chance"] == 0.5 and m["attribution_authors"] == [THOREAU, RUSSELL]  # no distractor
    assert m["ended"] == {"base": 0.5, "tuned": 1.0}
    assert 190 <= m["words"]["author"] <= 215 and m["words"]["base"] > 150


def test_questions_to_an_author_with_no_training_text_are_not_measured():
    """An author held out whole (--eval-books) has no profile to compare answers with: nothing is generated."""
    from booktune.config import EvalConfig
    from booktune.evaluation.heldout import answers

    held = [{"id": "b-00001-q1", "task": "answer", "author": "Held Out", "question": "Why?", "passage": "So.",
             "messages": []}]
    train = [{"id": "a-00000", "passage_id": "a-00000", "task": "continue", "author": THOREAU, "passage": "Text."}]
    assert answers(None, None, held, train, EvalConfig(), seed=0) == {}


def test_answers_get_room_for_the_authors_length(default_tokenizer):
    """By default an answer may run as long as the longest author's passage it is compared with, and a tenth more."""
    from booktune.evaluation.answers import answer_limit

    tok = default_tokenizer
    passages = ["word " * 40, "Longer passage, " * 100, "short"]
    longest = len(tok(passages[1], add_special_tokens=False)["input_ids"])
    assert longest > 200
    assert answer_limit(tok, [{"passage": p} for p in passages]) == -(-longest * 11 // 10)


def test_every_held_out_question_is_answered_unless_fewer_are_asked_for(tiny_run_dir, tiny_data_dir):
    """By default base and tuned answer each held-out question; answer_questions N answers N; 0 answers none."""
    from booktune.config import EvalConfig
    from booktune.dataset import load_conversations
    from booktune.evaluation.heldout import answers
    from booktune.inference.session import load_run_model

    model, tokenizer, _ = load_run_model(tiny_run_dir, device="cpu")
    held, train = load_conversations(tiny_data_dir, "eval"), load_conversations(tiny_data_dir, "train")
    asked = [r for r in held if r.get("task") == "answer"]
    assert len(asked) >= 3
    fast = {"samples": 0, "voice_prompts": 1, "answer_tokens": 2}
    every = answers(model, tokenizer, held, train, EvalConfig(**fast), seed=0)
    assert every["questions"] == len(asked) and {s["id"] for s in every["samples"]} == {r["id"] for r in asked}
    assert answers(model, tokenizer, held, train, EvalConfig(**fast, answer_questions=2), seed=0)["questions"] == 2
    assert answers(model, tokenizer, held, train, EvalConfig(**fast, answer_questions=0), seed=0) == {}
