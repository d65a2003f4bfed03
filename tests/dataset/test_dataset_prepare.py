"""prepare() on real books: the DATA layout, and a folder that goes on past bad books."""

import json
import shutil

import pytest

import booktune
from booktune.dataset import load_conversations
from booktune.dataset.prepare import PrepareError


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, books_dir):
    out = tmp_path_factory.mktemp("data")
    return booktune.prepare(books_dir, out, chunk_words=350), out


def test_layout_and_stats(prepared):
    result, out = prepared
    assert sorted(p.name for p in (out / "text").iterdir()) == ["russell_problems-of-philosophy.txt",
                                                                 "thoreau_walden.txt"]
    assert (out / "notes" / "russell_problems-of-philosophy.notes.txt").is_file()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["totals"]["books"] == 2 and stats["totals"]["pages"] == 262
    assert stats["totals"]["train"] == len(load_conversations(out, "train"))
    assert stats["totals"]["eval"] == len(load_conversations(out, "eval")) > 0
    from datasets import load_from_disk

    ds = load_from_disk(str(out / "dataset"))
    assert set(ds) == {"train", "eval"} and len(ds["train"]) == stats["totals"]["train"]


def test_conversations_quote_the_lead_in_and_answer_verbatim(prepared):
    _, out = prepared
    rows = load_conversations(out, "train")
    text = (out / "text" / f"{rows[3]['book']}.txt").read_text()
    flat = " ".join(text.split())
    for row in rows[:20]:
        system, user, assistant = row["messages"]
        assert (system["role"], user["role"], assistant["role"]) == ("system", "user", "assistant")
        assert row["author"] in system["content"] and row["title"] in system["content"]
        assert " ".join(assistant["content"].split()) in flat  # verbatim prose
        if row["lead_in"]:
            assert row["lead_in"] in user["content"]
            assert " ".join((row["lead_in"] + " " + row["passage"]).split()) in flat  # lead-in directly precedes


def test_passages_are_about_the_chunk_size_and_never_overlap(prepared):
    _, out = prepared
    rows = [r for r in load_conversations(out, "train") if r["book"] == "thoreau_walden" and r["task"] == "continue"]
    sizes = [len(r["passage"].split()) for r in rows]
    assert 300 <= sorted(sizes)[len(sizes) // 2] <= 400
    joined = " ".join(r["passage"] for r in rows).split()
    assert len(joined) == sum(sizes)  # passages tile the training text, none overlapping another
    for a, b in zip(rows, rows[1:]):
        assert " ".join(b["lead_in"].split()) == " ".join(a["passage"].split()[-50:])


def test_a_folder_goes_on_past_bad_books(tmp_path, books_dir):
    folder = tmp_path / "shelf"
    folder.mkdir()
    shutil.copy(books_dir / "thoreau_walden.pdf", folder)
    (folder / "notes.pdf").write_text("this is not a PDF")
    (folder / "short.txt").write_text("Far too short to make a single passage of prose.\n")
    result = booktune.prepare(folder, tmp_path / "data")
    skipped = dict((p.split("/")[-1], why) for p, why in result.skipped)
    assert set(skipped) == {"notes.pdf", "short.txt"}
    assert "shorter than one passage" in skipped["short.txt"]
    assert result.stats["totals"]["books"] == 1
    assert [s["path"].split("/")[-1] for s in result.stats["skipped"]] == ["notes.pdf", "short.txt"]


def test_nothing_usable_is_one_clear_error(tmp_path):
    (tmp_path / "short.txt").write_text("Too short.\n")
    with pytest.raises(PrepareError, match="short.txt"):
        booktune.prepare(tmp_path, tmp_path / "data")
    assert not (tmp_path / "data" / "stats.json").exists()
