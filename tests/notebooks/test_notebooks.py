"""`booktune notebook`: a self-contained notebook per data source; the sample notebook is one. A written notebook
runs top to bottom headless in tests/test_newcomer_path.py (the suite's one notebook execution)."""

import json
from pathlib import Path

import nbformat
from typer.testing import CliRunner

from booktune.cli import app
from booktune.config import Config
from booktune.ingest import discover
from booktune.notebooks import install_source, notebook_text, spelled_out

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ROOT / "examples" / "books"
NOTEBOOK = ROOT / "notebooks" / "sample_books" / "finetune.ipynb"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})


def cell(nb, cell_id: str):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def test_the_sample_notebook_is_what_booktune_notebook_writes():
    text = notebook_text([BOOKS], NOTEBOOK, spelled_out(Config()), kernel="python3", names=discover([BOOKS]).books)
    assert NOTEBOOK.read_text() == text, "regenerate it: booktune notebook examples/books --out " \
                                         "notebooks/sample_books/finetune.ipynb (after moving the old one away)"


def test_the_notebook_installs_booktune_from_this_checkout_relative_to_itself():
    source = install_source(NOTEBOOK.parent)
    assert source == "../.."
    assert 'name = "booktune"' in (NOTEBOOK.parent / source / "pyproject.toml").read_text()
    install = cell(nbformat.read(NOTEBOOK, as_version=4), "install").source
    assert "import booktune\nexcept ImportError:" in install and repr(source) in install


def test_the_options_given_become_the_config_cell_and_the_kernel_is_named(tmp_path):
    out = tmp_path / "NoteBooks" / "Thoreau" / "finetune.ipynb"
    result = invoke("notebook", BOOKS / "thoreau_walden.pdf", "--out", out, "--kernel", "booktune-env",
                    "--max-steps", 20, "--chunk-words", 200, "--samples", 1)
    assert result.exit_code == 0, result.output
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata.kernelspec.name == "booktune-env"
    config = cell(nb, "config")
    assert "parameters" in config.metadata.tags
    namespace = {}
    exec(config.source, namespace)  # the cell is plain Python
    assert namespace["CONFIG"] == {"prepare": {"chunk_words": 200}, "train": {"model": "default", "max_steps": 20},
                                   "eval": {"samples": 1}, "chat": {}, "export": {}}
    assert (out.parent / Path(namespace["BOOKS"])).resolve() == (BOOKS / "thoreau_walden.pdf").resolve()
    assert [c.id for c in nb.cells if c.cell_type == "code"] == ["install", "config", "prepare", "preview", "plan",
                                                                  "train", "evaluate", "chat", "export"]


def test_a_notebook_booktune_did_not_write_is_never_replaced(tmp_path):
    out = tmp_path / "finetune.ipynb"
    out.write_text("{}")
    refused = invoke("notebook", BOOKS, "--out", out)
    assert refused.exit_code == 1 and "booktune did not write (finetune.ipynb)" in refused.output
    refused = invoke("notebook", BOOKS, "--out", out, "--overwrite")
    assert refused.exit_code == 1 and "in the way, and booktune did not write it" in refused.output
    assert out.read_text() == "{}"
    mine = tmp_path / "mine.ipynb"  # beside the user's file, with --overwrite; then again, as booktune's own
    for _ in range(2):
        assert invoke("notebook", BOOKS, "--out", mine, "--overwrite").exit_code == 0
    assert json.loads(mine.read_text())["cells"] and out.read_text() == "{}"


def test_a_notebook_among_its_books_is_refused(tmp_path):
    books = tmp_path / "Books"
    books.mkdir()
    (books / "walden.pdf").write_bytes((BOOKS / "thoreau_walden.pdf").read_bytes())
    result = invoke("notebook", books, "--out", books / "finetune.ipynb")
    assert result.exit_code == 1 and "beside the books, not among them" in result.output
    assert sorted(p.name for p in books.iterdir()) == ["walden.pdf"]


def test_writing_a_notebook_again_keeps_what_running_it_wrote(tmp_path):
    out = tmp_path / "NoteBooks" / "Thoreau" / "finetune.ipynb"
    assert invoke("notebook", BOOKS / "thoreau_walden.pdf", "--out", out).exit_code == 0
    (out.parent / "finetune_executed.ipynb").write_text("{}")  # what the headless run in its header writes
    (out.parent / "outputs" / "run").mkdir(parents=True)  # what its cells write
    again = invoke("notebook", BOOKS / "thoreau_walden.pdf", "--out", out, "--max-steps", 20)
    assert again.exit_code == 0, again.output
    assert (out.parent / "finetune_executed.ipynb").read_text() == "{}" and (out.parent / "outputs" / "run").is_dir()
