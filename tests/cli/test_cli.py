"""The CLI: help text from the config, and bad input as one red line with exit code 1 (no traceback)."""

import pytest
from typer.testing import CliRunner

from booktune.cli import app
from booktune.config import TrainConfig

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.mark.parametrize("command", ["prepare", "train", "chat", "run", "evaluate", "inspect", "preview", "plan", "report",
                                     "notebook", "doctor"])
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_field_docs_are_the_help_text():
    out = invoke("train", "--help").output
    for name in ("learning_rate", "lora_r", "max_seq_length"):
        assert TrainConfig.model_fields[name].description.split("(")[0].strip() in " ".join(out.split())
    assert "--no-4bit" in out


def flags(command: str) -> set[str]:
    """The long options `booktune COMMAND --help` lists."""
    import re

    return set(re.findall(r"(--[a-z0-9][a-z0-9-]*)", invoke(command, "--help").output))


def test_plan_and_train_take_the_same_training_options():
    train, plan = flags("train"), flags("plan")
    assert train - {"--resume", "--no-resume", "--overwrite", "--out"} == plan - {"--gpu-mem"}
    assert {"--gpus", "--backend", "--offload-activations", "--learning-rate"} <= plan


def test_prepare_takes_its_own_options():
    assert {"--chunk-words", "--overlap-words", "--system-prompt", "--password", "--ocr", "--eval-books"} <= flags(
        "prepare")


def test_plan_reads_a_shipped_config_file():
    result = invoke("plan", "--config", "configs/rtx4090-llama-8b.yaml", "--model", "default", "--gpu-mem", "24")
    assert result.exit_code == 0, result.output
    assert "fits" in result.output


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("booktune ")


def test_preview_shows_one_tasks_examples(tmp_path, short_book):
    import booktune
    from booktune.dataset import load_conversations

    booktune.prepare([short_book], tmp_path, model=None, chunk_words=200, overlap_words=20)
    answers = [r for r in load_conversations(tmp_path, "train") if r["task"] == "answer"]
    result = invoke("preview", tmp_path, "--task", "answer", "--plain", "-n", "1")
    assert result.exit_code == 0, result.output
    assert "(answer)" in result.output and "(continue)" not in result.output
    assert f"train (answer): {len(answers)} examples" in result.output
    bad = invoke("preview", tmp_path, "--task", "summarise")
    assert bad.exit_code == 1 and "--task 'summarise'" in bad.output
