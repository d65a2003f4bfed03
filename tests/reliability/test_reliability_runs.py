"""Runs that go wrong: a diverging loss, a resume that does not fit, remote code nobody asked for, and damaged
run or data files. Each ends in one line naming the step, setting or file, and none looks finished."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import booktune
from tests.reliability.conftest import cli, one_line_error


@pytest.mark.parametrize("value, needle", [("inf", "finite number"), ("1e12", "less than 1"), ("nan", "finite")])
def test_learning_rates_that_can_only_diverge_are_refused(tmp_path, tiny_data_dir, value, needle):
    one_line_error(cli("train", tiny_data_dir, "--out", tmp_path / "run", "--learning-rate", value),
                   "train.learning_rate", needle)
    assert not (tmp_path / "run").exists()


def test_zero_steps_is_refused(tmp_path, tiny_data_dir):
    one_line_error(cli("train", tiny_data_dir, "--out", tmp_path / "run", "--max-steps", 0), "train.max_steps")


def nan_model(tiny_model_dir, tmp_path):
    """The tiny model with one NaN in a base weight: every loss is NaN from the first step."""
    model = tmp_path / "nan-model"
    shutil.copytree(tiny_model_dir, model)
    weights = load_file(model / "model.safetensors")
    key = next(k for k in weights if "mlp.down_proj" in k)
    weights[key][0, 0] = float("nan")
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    return model


def test_a_diverging_run_stops_at_its_step_and_is_never_saved_as_finished(tmp_path, tiny_data_dir, tiny_model_dir):
    result = cli("train", tiny_data_dir, "--out", tmp_path / "run", "--model", nan_model(tiny_model_dir, tmp_path),
                 "--max-steps", 4, "--logging-steps", 1, "--save-steps", 2)
    one_line_error(result, "step 1:", "is nan", "training stopped", "train.learning_rate")
    assert not (tmp_path / "run" / "booktune.json").exists() and not (tmp_path / "run" / "adapter").exists()
    assert not list((tmp_path / "run").glob("checkpoints/checkpoint-*"))  # no checkpoint of NaN weights


def test_resume_counts_the_loss_of_every_step_and_stops_at_the_end(tmp_path, tiny_data_dir, tiny_model_dir):
    run = tmp_path / "run"
    kw = {"model": str(tiny_model_dir), "max_steps": 4, "save_steps": 2, "logging_steps": 1, "learning_rate": 5e-3,
          "eval_steps": 0}
    whole = booktune.train(tiny_data_dir, tmp_path / "whole", **kw)
    booktune.train(tiny_data_dir, run, **kw)
    resumed = booktune.train(tiny_data_dir, run, resume=True, **kw)  # from the finished checkpoint-4
    steps = [e["step"] for e in resumed.log_history if "loss" in e]
    assert steps == [1, 2, 3, 4]  # nothing trained past the end
    meta = json.loads((run / "booktune.json").read_text())
    assert meta["train"]["steps"] == 4
    assert meta["train"]["train_loss"] == pytest.approx(whole.metadata["train"]["train_loss"], rel=1e-3)


def test_resume_with_other_settings_is_one_line(tmp_path, tiny_run_dir, tiny_data_dir, tiny_model_dir):
    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    one_line_error(cli("train", tiny_data_dir, "--out", run, "--model", tiny_model_dir, "--resume", "--lora-r", 4),
                   "train.lora_r 16 -> 4", "--overwrite")
    # The rate and which examples share a step change the steps left: the same one line, naming each.
    one_line_error(cli("train", tiny_data_dir, "--out", run, "--model", tiny_model_dir, "--resume",
                       "--no-group-passages", "--lr-scheduler", "cosine"),
                   "train.lr_scheduler 'linear' -> 'cosine'", "train.group_passages True -> False",
                   "train.learning_rate 0.005 -> 0.0005", "--overwrite")


def test_chat_never_runs_a_models_own_code_because_the_run_folder_says_so(tmp_path, tiny_run_dir):
    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    meta = json.loads((run / "booktune.json").read_text())
    meta["config"]["train"]["trust_remote_code"] = True
    (run / "booktune.json").write_text(json.dumps(meta))
    one_line_error(cli("chat", run, "--prompt", "hi"), "runs its own Python code", "--trust-remote-code")


def test_damaged_run_and_data_files_are_one_line(tmp_path, tiny_run_dir, tiny_data_dir):
    run, data = tmp_path / "run", tmp_path / "data"
    shutil.copytree(tiny_run_dir, run)
    shutil.copytree(tiny_data_dir, data)
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"\x00" * 10)  # truncated
    one_line_error(cli("chat", run, "--prompt", "hi", "--max-new-tokens", 2), "adapter cannot be loaded")
    (run / "adapter" / "adapter_model.safetensors").unlink()
    one_line_error(cli("chat", run, "--prompt", "hi"), "adapter_model.safetensors")
    (run / "booktune.json").write_text("{broken")
    one_line_error(cli("report", run), "booktune.json", "unreadable")
    (data / "stats.json").write_text("{broken")
    one_line_error(cli("train", data, "--out", tmp_path / "r2"), "stats.json", "unreadable")
    one_line_error(cli("chat", run, "--max-new-tokens", 0), "chat.max_new_tokens")


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path, tiny_data_dir):
    config = tmp_path / "c.toml"
    config.write_bytes("[train]\nmodel = 'caf\u00e9'\n".encode("latin-1"))
    one_line_error(cli("train", tiny_data_dir, "--out", tmp_path / "run", "--config", config), "not UTF-8")


def test_pickled_weights_are_refused(tmp_path, tiny_model_dir):
    from booktune.model import ModelError, load_model

    model = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, model)
    weights = load_file(model / "model.safetensors")
    (model / "model.safetensors").unlink()
    torch.save(weights, model / "pytorch_model.bin")
    with pytest.raises(ModelError, match="cannot load the model"):
        load_model(str(model), device="cpu", dtype=torch.float32)
