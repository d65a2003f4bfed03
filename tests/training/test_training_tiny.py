"""End to end on a tiny random model (seconds): run(), the RUN folder's contents, resume after a kill."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

import booktune

TINY = {"max_steps": 4, "save_steps": 2, "logging_steps": 1, "learning_rate": 5e-3, "max_seq_length": 1024}


def test_run_writes_a_self_describing_run(tmp_path, short_book, tiny_model_dir):
    result = booktune.run([short_book], tmp_path, model=str(tiny_model_dir), samples=1, eval_steps=0.75,
                          max_new_tokens=5, answer_tokens=5, chunk_words=120, overlap_words=20, format="none", **TINY)
    run = tmp_path / "run"
    adapter = run / "adapter"
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "chat_template.jinja",
                 "booktune.json"):
        assert (adapter / name).is_file(), name
    meta = json.loads((run / "booktune.json").read_text())
    assert meta["booktune_version"] == booktune.__version__
    assert meta["config"]["train"]["max_steps"] == 4
    assert meta["base_model"] == str(tiny_model_dir)
    assert meta["tokens"]["tokens_lost"] == 0
    assert (run / "loss.png").stat().st_size > 1000
    assert list((run / "logs").glob("events.out.tfevents.*"))
    assert result.before["tokens"] == result.after["tokens"] > 0
    assert result.after["loss"] < result.before["loss"]  # lr 5e-3 on a random model: the loss must move down
    assert len(result.samples) == 1
    # a fraction of the run's 4 steps, 0.75: every 3. Scored by the trainer on that grid only: run scores the
    # finished adapter itself, once
    assert [e["step"] for e in meta["log_history"] if "eval_loss" in e] == [3]
    answer_before, answer_after = result.before["answer"], result.after["answer"]
    assert answer_before["tokens"] == answer_after["tokens"] > 0 and answer_after["loss"] < answer_before["loss"]
    held = [r for r in booktune.dataset.load_conversations(tmp_path / "data", "eval") if r["task"] == "answer"]
    assert result.answers["questions"] == len(result.answers["samples"]) == min(len(held), 16)
    assert set(result.answers["attribution"]) == {"base", "tuned", "author"}
    assert result.answers["attribution_authors"][1] == "John Stuart Mill (distractor)"  # one book: a distractor
    assert meta_answers(run) == result.answers
    assert "Answers to held-out questions" in (run / "report.html").read_text()
    for ckpt in (run / "checkpoints").glob("checkpoint-*"):
        assert (ckpt / "booktune.json").is_file() and (ckpt / "tokenizer.json").is_file()


def meta_answers(run: Path) -> dict:
    return json.loads((run / "booktune.json").read_text())["answers"]


def test_chat_reloads_the_run_without_the_original_command(tmp_path, tiny_data_dir, tiny_model_dir):
    from booktune.config import ChatConfig
    from booktune.dataset import load_conversations
    from booktune.inference.session import opening

    booktune.train(tiny_data_dir, tmp_path, model=str(tiny_model_dir), **TINY)
    reply = booktune.chat(tmp_path, "Hello", max_new_tokens=4, temperature=0)
    assert isinstance(reply, str)
    # `booktune train` (not only `booktune run`) records the prompts it trained with, and chat starts from them.
    meta = json.loads((tmp_path / "booktune.json").read_text())
    first = load_conversations(tiny_data_dir)[0]
    assert meta["system_prompt"] == first["messages"][0]["content"]
    assert meta["user_prompt"] == f"Continue this passage from {first['title']} by {first['author']}:\n\n{{lead_in}}"
    assert opening(meta, ChatConfig()) == [{"role": "system", "content": first["messages"][0]["content"]}]
    assert opening(meta, ChatConfig(system_prompt="")) == []  # an explicit empty prompt means none



def test_a_default_model_run_loads_with_plain_peft_on_another_machine(tmp_path, tiny_data_dir, tiny_model_dir,
                                                                      monkeypatch):
    """A run on the default model names its Hub id as the adapter's base, not this machine's cache folder: a copy of
    the run folder loads with plain PeftModel.from_pretrained under another HOME, where that folder does not exist.
    The tiny model stands in for the default model's cached copy here and for the Hub's model there."""
    import shutil
    import warnings

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    import booktune.model
    from booktune.model import DEFAULT_MODEL_NAME

    cached = tmp_path / "home" / ".cache" / "booktune" / "models" / "SmolLM2-135M-Instruct"
    shutil.copytree(tiny_model_dir, cached)
    monkeypatch.setattr(booktune.model, "_default_model_dir", lambda: cached)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        booktune.train(tiny_data_dir, tmp_path / "run", model="default", max_steps=1, warmup_ratio=0.0,
                       learning_rate=5e-3, eval_steps=0, max_seq_length=512)
    assert not [w for w in caught if DEFAULT_MODEL_NAME in str(w.message)]  # saving never looks the Hub id up
    moved = shutil.copytree(tmp_path / "run", tmp_path / "elsewhere" / "run") / "adapter"
    shutil.rmtree(tmp_path / "home")
    monkeypatch.setenv("HOME", str(tmp_path / "other-home"))
    for path in moved.iterdir():
        if path.suffix in (".json", ".md", ".jinja"):
            assert str(cached) not in path.read_text(), f"{path.name} names this machine's cache folder"
    assert json.loads((moved / "adapter_config.json").read_text())["base_model_name_or_path"] == DEFAULT_MODEL_NAME
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(moved))
    saved = load_file(moved / "adapter_model.safetensors")
    key = next(k for k in saved if "lora_B" in k)
    assert saved[key].abs().sum() > 0
    assert torch.equal(dict(model.named_parameters())[key.replace(".weight", ".default.weight")], saved[key])
    # booktune itself recorded 'default', and resolves it to the copy on the machine it runs on
    monkeypatch.setattr(booktune.model, "_default_model_dir", lambda: tiny_model_dir)
    assert isinstance(booktune.chat(moved.parent, "Hello", max_new_tokens=3, temperature=0), str)


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import booktune
    from booktune.training import callbacks

    original = callbacks.DescribeCheckpoint.on_save

    def on_save(self, args, state, control, **kw):
        original(self, args, state, control, **kw)
        if state.global_step == int(sys.argv[4]):
            os.kill(os.getpid(), signal.SIGKILL)  # a hard kill right after a complete checkpoint

    callbacks.DescribeCheckpoint.on_save = on_save
    booktune.train(sys.argv[1], sys.argv[2], model=sys.argv[3], max_steps=6, save_steps=2, logging_steps=1,
                   learning_rate=5e-3)
""")


def adapter_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "adapter" / "adapter_model.safetensors")


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, tiny_data_dir, tiny_model_dir):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    booktune.train(tiny_data_dir, whole, model=str(tiny_model_dir), max_steps=6, save_steps=2, logging_steps=1,
                   learning_rate=5e-3)
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tiny_data_dir), str(killed), str(tiny_model_dir), "4"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (killed / "adapter").exists()  # nothing that looks finished
    booktune.train(tiny_data_dir, killed, model=str(tiny_model_dir), max_steps=6, save_steps=2, logging_steps=1,
                   learning_rate=5e-3, resume=True)
    a, b = adapter_weights(whole), adapter_weights(killed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)


def test_cli_chat_is_interactive_and_streams(tmp_path, tiny_data_dir, tiny_model_dir):
    from typer.testing import CliRunner

    from booktune.cli import app

    booktune.train(tiny_data_dir, tmp_path, model=str(tiny_model_dir), max_steps=1)
    result = CliRunner().invoke(app, ["chat", str(tmp_path), "--max-new-tokens", "3", "--temperature", "0"],
                                input="Hello there\n/reset\nAgain\n/exit\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("model>") == 2  # two replies; /reset and /exit are commands, not messages


def test_report_to_none_keeps_the_loss_plot_and_the_rate_is_by_size(tmp_path, tiny_data_dir, tiny_model_dir, capsys):
    booktune.train(tiny_data_dir, tmp_path, model=str(tiny_model_dir), max_steps=2, logging_steps=1, eval_steps=0,
                   report_to="none")
    assert not list(tmp_path.glob("logs/**/events.out.tfevents.*"))  # no TensorBoard
    assert (tmp_path / "loss.png").stat().st_size > 1000
    meta = json.loads((tmp_path / "booktune.json").read_text())
    # resolved once and recorded: a tiny model, under 1B, on data that trains each passage twice
    assert meta["config"]["train"]["learning_rate"] == 1.4e-3
    assert "learning rate: 0.0014 (by model size: 0.00B parameters, under 1B, passages trained as" in (
        capsys.readouterr().out)


def test_evaluate_measures_a_run_that_train_made(tmp_path, tiny_data_dir, tiny_model_dir):
    booktune.train(tiny_data_dir, tmp_path, model=str(tiny_model_dir), eval_steps=3, **TINY)
    trained = json.loads((tmp_path / "booktune.json").read_text())["log_history"]
    assert [e["step"] for e in trained if "eval_loss" in e] == [3, 4]  # train alone also scores its last step
    result = booktune.evaluate(tmp_path, samples=1, voice_prompts=1, answer_questions=1, max_new_tokens=3, answer_tokens=3,
                              eval_batch_size=8)
    assert result.data_dir == tiny_data_dir and len(result.samples) == 1  # the DATA the run trained on
    assert result.before["tokens"] == result.after["tokens"] > 0
    assert result.after["loss"] < result.before["loss"]  # lr 5e-3 on a random model: the loss must move down
    meta = json.loads((tmp_path / "booktune.json").read_text())
    assert meta["heldout"] == {"before": result.before, "after": result.after}
    assert meta["answers"]["questions"] == 1 and result.before["answer"]["tokens"] > 0
    assert "seconds" not in meta  # a run's "whole run" time is booktune run's alone
    assert (tmp_path / "report.html").is_file()


def test_the_learning_rate_decays_as_the_config_says(tmp_path, tiny_data_dir, tiny_model_dir):
    from booktune.config import TrainConfig
    from booktune.devices import Precision
    from booktune.training.recipe import sft_args

    cpu = Precision("cpu", None, False, False)
    t = TrainConfig(report_to="none", learning_rate=1e-3)
    assert sft_args(tmp_path, cpu, t, grad_accum=1).lr_scheduler_type == "linear"  # the default, as TRL's
    for name, expected in (("cosine", "cosine"), ("constant", "constant_with_warmup")):
        t = t.model_copy(update={"lr_scheduler": name})
        assert sft_args(tmp_path, cpu, t, grad_accum=1).lr_scheduler_type == expected
    booktune.train(tiny_data_dir, tmp_path / "run", model=str(tiny_model_dir), max_steps=5, logging_steps=1,
                   eval_steps=0, warmup_ratio=0.0, learning_rate=1e-3, report_to="none")
    meta = json.loads((tmp_path / "run" / "booktune.json").read_text())
    rates = [round(e["learning_rate"], 9) for e in meta["log_history"] if "learning_rate" in e]
    assert rates == [1e-3, 8e-4, 6e-4, 4e-4, 2e-4]  # linear to zero
