"""The CLI: help text from the config, and bad input as one red line with exit code 1 (no traceback)."""

import pytest
from typer.testing import CliRunner

from booktune.cli import app
from booktune.config import TrainConfig

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.mark.parametrize("command", ["prepare", "train", "chat", "run", "inspect", "preview"])
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_field_docs_are_the_help_text():
    out = invoke("train", "--help").output
    for name in ("learning_rate", "lora_r", "max_seq_length"):
        assert TrainConfig.model_fields[name].description.split("(")[0].strip() in " ".join(out.split())
    assert "--no-4bit" in out


def one_line_error(result, *needles):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error:"), result.output
    for needle in needles:
        assert needle in " ".join(result.output.split()), result.output


def test_missing_path(tmp_path):
    one_line_error(invoke("prepare", tmp_path / "nope", "--out", tmp_path / "d"), "nope")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    one_line_error(invoke("prepare", tmp_path / "empty", "--out", tmp_path / "d"), "empty")


def test_bad_config_field(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nlora_r = 0\n")
    one_line_error(invoke("train", tmp_path, "--config", cfg), "train.lora_r")


def test_bad_flag_value(tmp_path):
    one_line_error(invoke("train", tmp_path, "--truncation", "cut"), "train.truncation")


def test_train_on_a_folder_that_was_never_prepared(tmp_path):
    one_line_error(invoke("train", tmp_path, "--out", tmp_path / "run"), "stats.json")


def test_chat_on_a_folder_without_a_run(tmp_path):
    one_line_error(invoke("chat", tmp_path, "--prompt", "hi"), "no finished run")


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("booktune ")
