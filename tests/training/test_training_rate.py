"""The learning rate when none is set: by the model's size, from its config alone, printed in the plans."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from booktune.cli import app
from booktune.config import TrainConfig, build_config
from booktune.training.rate import (
    LARGE_RATE,
    SMALL_RATE,
    SMALL_RATE_APART,
    SMALL_RATE_ONCE,
    rate_for,
    trains_twice,
    with_learning_rate,
)
from tests.training.test_training_scaleout import LLAMA_8B


@pytest.fixture
def llama_8b_dir(tmp_path):
    from transformers import LlamaConfig

    LlamaConfig(**LLAMA_8B).save_pretrained(tmp_path)  # the shape alone: no weights are read
    return tmp_path


def test_the_rate_follows_the_size_and_under_1b_the_tasks():
    # the default model: docs/quality.md's measured rates, for passages trained twice (continue + answer), in one
    # step or apart, and once
    assert rate_for(134_515_008)[0] == SMALL_RATE == 1.4e-3
    assert rate_for(134_515_008, together=False)[0] == SMALL_RATE_APART == 5e-4
    assert rate_for(134_515_008, twice=False)[0] == rate_for(134_515_008, False, False)[0] == SMALL_RATE_ONCE == 1e-3
    assert rate_for(999_999_999)[0] == 1.4e-3
    assert rate_for(1_000_000_000)[0] == rate_for(8_030_261_248, twice=False)[0] == LARGE_RATE == 2e-4


def test_the_default_model_keeps_the_demos_rate():
    train, why = with_learning_rate(TrainConfig())  # no DATA (as in `booktune plan`): prepare's default tasks
    assert train.learning_rate == 1.4e-3 and "0.13B parameters" in why and "docs/quality.md" in why
    for apart in ({"group_passages": False}, {"packing": False}):  # a passage's two examples in separate steps
        train, why = with_learning_rate(TrainConfig(**apart))
        assert train.learning_rate == 5e-4 and "separate steps" in why


def stats_dir(path, examples: int, answers: int | None):
    stats = {"totals": {"train": examples}}
    if answers is not None:
        stats["questions"] = {"examples": {"train": answers}}
    path.mkdir()
    (path / "stats.json").write_text(json.dumps(stats))
    return path


def test_the_data_says_whether_passages_are_trained_twice(tmp_path):
    assert trains_twice(stats_dir(tmp_path / "both", 406, 203))  # the demo: every passage as an answer too
    assert not trains_twice(stats_dir(tmp_path / "continue", 203, None))  # --tasks continue
    assert not trains_twice(stats_dir(tmp_path / "few", 253, 50))  # curation kept 50 answers of 203 passages
    assert trains_twice(stats_dir(tmp_path / "half", 300, 100))  # 100 answers for 200 passages
    train, why = with_learning_rate(TrainConfig(), data_dir=tmp_path / "continue")
    assert train.learning_rate == 1e-3 and "trained once" in why


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
