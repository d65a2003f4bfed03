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


def test_run_writes_a_self_describing_run(tmp_path, books_dir, tiny_model_dir):
    result = booktune.run([books_dir / "thoreau_walden.pdf"], tmp_path, model=str(tiny_model_dir), samples=1,
                          max_new_tokens=5, chunk_words=120, overlap_words=20, **TINY)
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
    for ckpt in (run / "checkpoints").glob("checkpoint-*"):
        assert (ckpt / "booktune.json").is_file() and (ckpt / "tokenizer.json").is_file()


def test_chat_reloads_the_run_without_the_original_command(tmp_path, tiny_data_dir, tiny_model_dir):
    booktune.train(tiny_data_dir, tmp_path, model=str(tiny_model_dir), **TINY)
    reply = booktune.chat(tmp_path, "Hello", max_new_tokens=4, temperature=0)
    assert isinstance(reply, str)


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import booktune
    from booktune.train import callbacks

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
