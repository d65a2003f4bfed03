"""Bad input on the command line: each is one `error:` line naming the file or field, with exit code 1."""

from __future__ import annotations

from tests.reliability.conftest import cli, one_line_error


def test_missing_path(tmp_path):
    one_line_error(cli("prepare", tmp_path / "nope", "--out", tmp_path / "d"), "nope")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    one_line_error(cli("prepare", tmp_path / "empty", "--out", tmp_path / "d"), "empty")


def test_bad_config_field(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nlora_r = 0\n")
    one_line_error(cli("train", tmp_path, "--config", cfg), "train.lora_r")


def test_bad_flag_value(tmp_path):
    one_line_error(cli("train", tmp_path, "--truncation", "cut"), "train.truncation")


def test_train_on_a_folder_that_was_never_prepared(tmp_path):
    one_line_error(cli("train", tmp_path, "--out", tmp_path / "run"), "stats.json")


def test_chat_on_a_folder_without_a_run(tmp_path):
    one_line_error(cli("chat", tmp_path, "--prompt", "hi"), "no finished run")
