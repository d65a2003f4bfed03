"""`--out` never costs the user a file booktune did not write, inputs are checked before anything is replaced, and
booktune never reads its own output back as books."""

from __future__ import annotations

import shutil

from tests.reliability.conftest import TINY, cli, one_line_error

WALDEN = "Walden. " + "I went to the woods because I wished to live deliberately, to front only the essential facts. " * 60


def test_prepare_into_a_folder_of_the_users_files_is_refused_and_deletes_nothing(tmp_path, tiny_model_dir):
    lib = tmp_path / "lib"
    (lib / "text").mkdir(parents=True)
    (lib / "text" / "a.txt").write_text(WALDEN)
    (lib / "text" / "b.txt").write_text(WALDEN)
    (lib / "todo.md").write_text("x")
    args = ["prepare", lib / "text" / "a.txt", "--out", lib, "--model", tiny_model_dir, "--chunk-words", 100,
            "--overlap-words", 10]
    one_line_error(cli(*args), "booktune did not write", "--overwrite")
    # --overwrite writes beside the user's files, but the user's text/ is in the way: refused by name, kept whole
    one_line_error(cli(*args, "--overwrite"), "text: in the way")
    assert sorted(p.name for p in (lib / "text").iterdir()) == ["a.txt", "b.txt"]
    assert (lib / "todo.md").read_text() == "x"


def test_overwrite_writes_beside_the_users_files(tmp_path, tiny_model_dir):
    (tmp_path / "book.txt").write_text(WALDEN)
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.md").write_text("mine")
    result = cli("prepare", tmp_path / "book.txt", "--out", out, "--model", tiny_model_dir, "--chunk-words", 100,
                 "--overlap-words", 10, "--overwrite")
    assert result.exit_code == 0, result.output
    assert (out / "stats.json").is_file() and (out / "keep.md").read_text() == "mine"
    again = cli("prepare", tmp_path / "book.txt", "--out", out, "--model", tiny_model_dir, "--chunk-words", 100,
                "--overlap-words", 10, "--overwrite")
    assert again.exit_code == 0 and (out / "keep.md").read_text() == "mine"


def test_a_typo_in_the_data_folder_keeps_the_runs_checkpoints(tmp_path, tiny_run_dir, tiny_data_dir, tiny_model_dir):
    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    one_line_error(cli("train", tmp_path / "NOPE", "--out", run, "--model", tiny_model_dir), "NOPE",
                   "not a prepared data folder")
    # a forgotten --resume: refused, nothing deleted
    one_line_error(cli("train", tiny_data_dir, "--out", run, "--model", tiny_model_dir), "--resume", "--overwrite")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    result = cli("train", tiny_data_dir, "--out", run, "--model", tiny_model_dir, "--overwrite", *flags)
    assert result.exit_code == 0, result.output


def test_its_own_output_inside_the_books_folder_is_never_read_back(tmp_path, tiny_model_dir):
    books = tmp_path / "books"
    books.mkdir()
    (books / "walden.txt").write_text(WALDEN)
    args = ["prepare", books, "--out", books / "data", "--model", tiny_model_dir, "--chunk-words", 100,
            "--overlap-words", 10]
    first = cli(*args)
    assert first.exit_code == 0, first.output
    second = cli(*args)
    assert second.exit_code == 0, second.output
    flat = "".join(second.output.split())  # rich wraps long paths (xdist's tmp paths are long) mid-word
    assert "afolderbooktunewrote" in flat and "books/data" in flat
    stats = (books / "data" / "stats.json").read_text()
    assert '"books": 1' in stats  # walden.txt only, not data/text/walden.txt


def test_books_in_a_symlinked_folder_are_read_and_a_link_loop_is_not(tmp_path):
    from booktune.ingest import find_books

    shelf = tmp_path / "shelf"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "linked.txt").write_text(WALDEN)
    shelf.mkdir()
    (shelf / "own.txt").write_text(WALDEN)
    (shelf / "more").symlink_to(tmp_path / "elsewhere")
    (shelf / "loop").symlink_to(shelf)
    assert [p.name for p in find_books([shelf])] == ["linked.txt", "own.txt"]


def test_an_out_that_is_a_file_is_one_line(tmp_path, tiny_model_dir):
    (tmp_path / "book.txt").write_text(WALDEN)
    (tmp_path / "out").write_text("a file")
    one_line_error(cli("prepare", tmp_path / "book.txt", "--out", tmp_path / "out", "--model", tiny_model_dir),
                   "a file, not a folder")
