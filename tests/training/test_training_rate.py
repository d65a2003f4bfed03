"""The learning rate when none is set: by the model's size, from its config alone, printed in the plans."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from booktune.cli import app
from booktune.config import TrainConfig, build_config
from booktune.training.rate import LARGE_RATE, SMALL_RATE, rate_for, with_learning_rate
from tests.training.test_training_scaleout import LLAMA_8B


@pytest.fixture
def llama_8b_dir(tmp_path):
    from transformers import LlamaConfig

    LlamaConfig(**LLAMA_8B).save_pretrained(tmp_path)  # the shape alone: no weights are read
    return tmp_path


def test_the_rate_follows_the_size():
    assert rate_for(134_515_008)[0] == SMALL_RATE == 1e-3  # the default model: docs/quality.md's measured rate
    assert rate_for(999_999_999)[0] == 1e-3
    assert rate_for(1_000_000_000)[0] == rate_for(8_030_261_248)[0] == LARGE_RATE == 2e-4


def test_the_default_model_keeps_the_demos_rate():
    train, why = with_learning_rate(TrainConfig())
    assert train.learning_rate == 1e-3 and "0.13B parameters" in why and "docs/quality.md" in why


def test_an_8b_model_gets_the_peers_rate_and_a_set_rate_stands(llama_8b_dir):
    train, why = with_learning_rate(TrainConfig(model=str(llama_8b_dir)))
    assert train.learning_rate == 2e-4 and "8.03B parameters" in why
    assert with_learning_rate(TrainConfig(model=str(llama_8b_dir), learning_rate=5e-5)) == (
        TrainConfig(model=str(llama_8b_dir), learning_rate=5e-5), "set")


def test_the_shipped_8b_config_follows_the_rule():
    assert build_config("configs/rtx4090-llama-8b.yaml").train.learning_rate is None


def test_plan_prints_the_rate_and_where_it_comes_from(llama_8b_dir):
    runner = CliRunner()
    out = runner.invoke(app, ["plan", "--model", str(llama_8b_dir), "--gpu-mem", "24"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "learning rate: 0.0002 (by model size: 8.03B parameters, 1B or more" in out.output
    out = runner.invoke(app, ["plan", "--model", "default", "--learning-rate", "3e-4"], env={"COLUMNS": "200"})
    assert "learning rate: 0.0003 (set)" in out.output
