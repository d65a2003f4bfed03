"""A newcomer's path, as the README shows it, on the tiny model: one's own book prepared with one's own flags ->
train -> chat with the system prompt the run trained with -> a notebook for the book -> that notebook run headless.

This is the suite's one notebook execution: the sample notebook is what `booktune notebook` writes
(tests/notebooks checks that), so running a freshly written notebook runs the sample's cells too. The book is a
2,000-word excerpt of Walden, so that every step takes seconds on a 2-core CPU."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from typer.testing import CliRunner

from booktune.cli import app

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "tests" / "data" / "books" / "thoreau_walden_economy.md"
SYSTEM = "You are {author}. Write as {author} wrote {title}."
TINY_DATA = ("--chunk-words", 120, "--overlap-words", 20)
TINY_RUN = ("--max-steps", 2, "--eval-steps", 0)


def booktune(*args, stdin: str | None = None) -> str:
    """`booktune ARGS` as typed, in this process (importing torch once per command would cost more than the run)."""
    result = CliRunner().invoke(app, [str(a) for a in args], input=stdin, env={"COLUMNS": "300", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def first_system_prompt(data: Path) -> str:
    return json.loads((data / "train.jsonl").read_text().splitlines()[0])["messages"][0]["content"]


def prepare_train_chat(tmp_path: Path, tiny: tuple) -> None:
    data, run = tmp_path / "data", tmp_path / "runs" / "walden"
    booktune("prepare", BOOK, "--out", data, *tiny, *TINY_DATA, "--system-prompt", SYSTEM)
    assert (data / "dataset_info.json").is_file() and (data / "axolotl.yaml").is_file()
    out = booktune("train", data, "--out", run, *tiny, *TINY_RUN)
    assert "learning rate: 0.0014 (by model size" in out
    # chat starts from the system prompt the run trained with (train recorded it), and says so
    system = first_system_prompt(data)
    assert system == "You are Henry David Thoreau. Write as Henry David Thoreau wrote Walden."
    assert json.loads((run / "booktune.json").read_text())["system_prompt"] == system
    out = booktune("chat", run, "--max-new-tokens", 3, "--temperature", 0, stdin="Hello\n/exit\n")
    assert f"system: {system}" in out and out.count("model>") == 1


def execute(notebook: Path) -> str:
    """Run the notebook in its own folder and kernel, and save the result beside it, as `jupyter nbconvert
    --to notebook --execute --output finetune_executed.ipynb finetune.ipynb` does; returns its text output."""
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name=nb.metadata.kernelspec.name,
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    nbformat.write(nb, notebook.with_name(f"{notebook.stem}_executed.ipynb"))
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")  # rich prints as display data
                   for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.mark.slow
def test_prepare_train_chat_notebook_and_the_notebook_runs(tmp_path, tiny_model_dir):
    tiny = ("--model", tiny_model_dir)
    assert booktune("--version").startswith("booktune ")
    prepare_train_chat(tmp_path, tiny)

    notebook = tmp_path / "NoteBooks" / "Thoreau" / "finetune.ipynb"
    (tmp_path / "chat.toml").write_text("[chat]\nmax_new_tokens = 5\n")  # the notebook's chat cell reads [chat]
    booktune("notebook", BOOK, "--out", notebook, *tiny, *TINY_DATA, *TINY_RUN, "--system-prompt", SYSTEM,
             "--samples", 1, "--voice-prompts", 1, "--answer-questions", 1, "--max-new-tokens", 5, "--kernel", "python3",
             "--config", tmp_path / "chat.toml")
    outputs = execute(notebook)
    assert "before:" in outputs and "after:" in outputs and "learning rate: 0.0014" in outputs
    written = notebook.parent / "outputs"
    meta = json.loads((written / "run" / "booktune.json").read_text())
    assert meta["heldout"]["after"]["loss"] > 0 and meta["system_prompt"] == first_system_prompt(written / "data")
    assert (written / "run" / "adapter" / "adapter_model.safetensors").is_file()
    # written again beside its executed copy and its outputs, all booktune's own
    assert booktune("notebook", BOOK, "--out", notebook, *tiny).startswith("notebook: ")
