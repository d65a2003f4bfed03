"""The answer task: questions by the keywords and file writers, examples whose answer is the passage verbatim and
the only trained text, and a held-out split that keeps its questions to itself."""

import json

import pytest

import booktune
from booktune.config import PrepareConfig
from booktune.dataset import load_conversations
from booktune.dataset.questions import Context, write_questions
from booktune.dataset.questions.file import QuestionsFileError
from booktune.dataset.questions.keywords import _TOKEN, ONE_PHRASE, TWO_PHRASES, key_phrases, keyword_questions
from booktune.template import IGNORE, build_example


@pytest.fixture(scope="module")
def walden_passages(short_book):
    words = short_book.read_text(encoding="utf-8").split()
    return [" ".join(words[i:i + 150]) for i in range(0, 4500, 150)]


@pytest.fixture(scope="module")
def answer_data(tmp_path_factory, short_book, default_tokenizer):
    out = tmp_path_factory.mktemp("answer-data")
    booktune.prepare([short_book], out, model=None, chunk_words=120, overlap_words=20)
    return out


def form_of(question):
    """The question form a keywords question was made from, as its text before and after the phrases."""
    for form in (*ONE_PHRASE, *TWO_PHRASES):
        head, _, rest = form.partition("{a}")
        if question.startswith(head) and question.endswith(rest.rpartition("}")[2] or "?"):
            return form
    return None


def test_keyword_questions_ask_about_the_passages_own_words_in_varied_forms(walden_passages):
    questions = keyword_questions(walden_passages)
    assert len(questions) == len(walden_passages) and all(questions)
    assert keyword_questions(walden_passages) == questions  # the same text writes the same questions
    for passage, question in zip(walden_passages, questions):
        form = form_of(question)
        assert form is not None, question
        head, tail = form.split("{a}")[0], form.split("{a}")[1]
        topic = question[len(head):len(question) - len(tail.split("{b}")[-1])]
        for phrase in topic.replace(", and about ", " and ").split(" and "):
            assert phrase.lower() in passage.lower(), (phrase, question)
    assert len({form_of(q) for q in questions}) >= 4


def test_a_word_counts_in_every_case_it_is_written_in():
    """'knowledge' four times and 'Knowledge' once to start a sentence is five uses: more than the river's three."""
    text = ("We seek the knowledge we lack, the knowledge of old, the knowledge of the river, the knowledge that "
            "stays. The river bends and the river runs. Knowledge is a gift.")
    from collections import Counter

    assert key_phrases(_TOKEN.findall(text), Counter(), 1, {"knowledge", "river", "gift"}, n=1) == ["knowledge"]


def test_answer_examples_answer_with_the_passage_verbatim(answer_data):
    rows = load_conversations(answer_data, "train")
    by_id = {r["id"]: r for r in rows if r["task"] == "continue"}
    answers = [r for r in rows if r["task"] == "answer"]
    assert answers and len(by_id) == len(answers)  # keywords writes one question per passage
    for row in answers:
        system, user, assistant = row["messages"]
        assert user["content"] == row["question"] and row["question"].endswith("?")
        assert assistant["content"] == by_id[row["passage_id"]]["passage"] == row["passage"]
        assert system["content"] == by_id[row["passage_id"]]["messages"][0]["content"]
    stats = json.loads((answer_data / "stats.json").read_text())
    q = stats["questions"]
    assert (q["writer"], q["written"], q["kept"], q["dropped"]) == ("keywords", q["kept"], len(answers) + q[
        "examples"]["eval"], 0)
    assert q["examples"]["train"] == len(answers) and stats["tasks"] == ["continue", "answer"]


def test_only_the_passage_is_trained_in_an_answer_example(answer_data, default_tokenizer):
    row = next(r for r in load_conversations(answer_data, "train") if r["task"] == "answer")
    ex = build_example(default_tokenizer, row["messages"], name=row["id"])
    trained = default_tokenizer.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE])
    assert trained.removesuffix("<|im_end|>").strip() == row["passage"]
    masked = default_tokenizer.decode([t for t, lab in zip(ex.input_ids, ex.labels) if lab == IGNORE])
    assert row["question"] in masked and row["question"] not in trained


def test_held_out_questions_stay_held_out(answer_data):
    train, held = load_conversations(answer_data, "train"), load_conversations(answer_data, "eval")
    held_passages = {r["passage_id"] for r in held if r["task"] == "continue"}
    assert {r["passage_id"] for r in held if r["task"] == "answer"} == held_passages
    assert not {r["passage_id"] for r in train} & held_passages
    train_text = " ".join(r["passage"] for r in train)
    assert all(r["passage"] not in train_text for r in held)


def test_training_questions_depend_on_training_text_alone(walden_passages):
    records = [{"passage_id": f"p{i}", "passage": p} for i, p in enumerate(walden_passages)]
    train, held, other = records[:20], records[20:25], records[25:]
    p, ctx = PrepareConfig(question_writer="keywords"), Context()
    one, two = write_questions([train, held], p, ctx), write_questions([train, other], p, ctx)
    assert [one.questions[r["passage_id"]] for r in train] == [two.questions[r["passage_id"]] for r in train]


@pytest.mark.parametrize("tasks, kinds", [("continue", {"continue"}), ("answer", {"answer"})])
def test_tasks_choose_the_examples(tmp_path, short_book, tasks, kinds):
    result = booktune.prepare([short_book], tmp_path, model=None, chunk_words=200, overlap_words=20, tasks=tasks)
    rows = load_conversations(tmp_path, "train") + load_conversations(tmp_path, "eval")
    assert {r["task"] for r in rows} == kinds
    assert ("questions" in result.stats) == ("answer" in kinds)


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_file_writer_uses_the_users_questions(tmp_path, short_book):
    questions = write_lines(tmp_path / "q.jsonl", [
        json.dumps({"id": "thoreau_walden-00001", "question": "Why do you speak in the first person?"}),
        "",
        json.dumps({"id": "thoreau_walden-00001", "question": "Whom is this book for?"}),
    ])
    booktune.prepare([short_book], tmp_path / "data", model=None, chunk_words=200, overlap_words=20,
                     question_writer="file", questions_file=str(questions))
    answers = [r for r in load_conversations(tmp_path / "data", "train") if r["task"] == "answer"]
    assert [(r["passage_id"], r["question"]) for r in answers] == [
        ("thoreau_walden-00001", "Why do you speak in the first person?"),
        ("thoreau_walden-00001", "Whom is this book for?")]
    assert answers[0]["id"] != answers[1]["id"]


@pytest.mark.parametrize("line, message", [
    ('{"id": "thoreau_walden-00001", "question": "Fine?"}\n{"id": "nope-00001", "question": "Where?"}',
     r"q.jsonl:2: no passage with id 'nope-00001'"),
    ('{"id": "thoreau_walden-00001", "question": ', r"q.jsonl:1: not valid JSON"),
    ('{"id": "thoreau_walden-00001"}', r"q.jsonl:1: needs a non-empty 'question'"),
    ('["thoreau_walden-00001", "Why?"]', r"q.jsonl:1: expected an object"),
])
def test_a_bad_questions_file_is_one_line_naming_file_and_line(tmp_path, short_book, line, message):
    questions = tmp_path / "q.jsonl"
    questions.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(QuestionsFileError, match=message) as err:
        booktune.prepare([short_book], tmp_path / "data", model=None, chunk_words=200, overlap_words=20,
                         question_writer="file", questions_file=str(questions))
    assert "\n" not in str(err.value)


def test_a_run_records_the_answer_form_only_when_it_trains_answers(answer_data, tmp_path, short_book):
    from booktune.dataset.rows import trained_prompts

    assert trained_prompts(answer_data)["answer_prompt"] == "{question}"
    booktune.prepare([short_book], tmp_path, model=None, chunk_words=200, overlap_words=20, tasks="continue",
                     answer_prompt="As {author}: {question}")
    assert "answer_prompt" not in trained_prompts(tmp_path)


def test_auto_writes_with_a_model_only_on_a_gpu_and_never_with_the_embedded_default():
    from booktune.dataset.questions import chosen_writers

    assert chosen_writers("auto", "default", gpu=True) == "keywords"  # the 135M default writes unusable questions
    assert chosen_writers("auto", None, gpu=True) == "keywords"
    assert chosen_writers("auto", "/models/Qwen2.5-7B-Instruct", gpu=True) == "model,keywords"
    assert chosen_writers("auto", "/models/Qwen2.5-7B-Instruct", gpu=False) == "keywords"
    assert chosen_writers("model", "default", gpu=False) == "model"  # named, never second-guessed
    assert chosen_writers("file", "default", gpu=True) == "file"
    assert PrepareConfig().question_writer == "auto"
