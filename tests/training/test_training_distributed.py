"""Two training processes (gloo, CPU) against one, on the tiny model: same losses, same adapter, one set of files,
and a two-process run killed after a checkpoint that resumes in two processes and in one.

Each launch starts two Python processes that import torch and transformers (about 20 s each on a 2-core machine),
so the file keeps to four launches."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import booktune

pytestmark = pytest.mark.slow

# Global batch 4 = 1 process x batch 2 x accumulation 2 = 2 processes x batch 2 x accumulation 1.
TRAIN = {"max_steps": 4, "save_steps": 2, "logging_steps": 1, "learning_rate": 5e-3, "batch_size": 2,
         "global_batch_size": 4, "load_in_4bit": False, "dtype": "fp32", "device": "cpu", "max_seq_length": 512}
RUN_FILES = {".booktune-manifest.json", "adapter", "booktune.json", "checkpoints", "launch-config.json", "logs", "loss.png"}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, tiny_data_dir, tiny_model_dir) -> Path:
    run = tmp_path_factory.mktemp("one")
    booktune.train(tiny_data_dir, run, model=str(tiny_model_dir), **TRAIN)
    return run


def losses(run: Path) -> list[tuple[int, float]]:
    history = json.loads((run / "booktune.json").read_text())["log_history"]
    return [(e["step"], e["loss"]) for e in history if "loss" in e]


def assert_same_adapter(a: Path, b: Path) -> None:
    wa, wb = (load_file(r / "adapter" / "adapter_model.safetensors") for r in (a, b))
    assert wa.keys() == wb.keys()
    moved = [k for k in wa if "lora_B" in k]
    assert moved and all(wa[k].abs().max() > 0 for k in moved)  # training changed the adapter
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=1e-6)


def test_two_processes_match_one_and_write_each_file_once(tmp_path, tiny_data_dir, tiny_model_dir, one_process, capfd):
    run = tmp_path / "two"
    booktune.train(tiny_data_dir, run, model=str(tiny_model_dir), gpus=2, **TRAIN)
    printed = capfd.readouterr().out
    assert printed.count("adapter saved to") == 1 and printed.count("optimizer steps: 4 (4 rows per step)") == 1
    assert "torchrun --standalone --nproc_per_node=2 -m booktune train" in printed
    one_line = " ".join(printed.split())  # rich wraps long lines
    assert "2 processes: each step's rows dealt to the ranks by token count (balance_tokens)" in one_line

    assert [s for s, _ in losses(run)] == [1, 2, 3, 4]
    for (_, a), (_, b) in zip(losses(run), losses(one_process)):
        assert a == pytest.approx(b, rel=1e-5)
    assert_same_adapter(run, one_process)

    assert {p.name for p in run.iterdir()} == RUN_FILES  # no stray temp files or second copies
    assert len(list((run / "logs").glob("events.out.tfevents.*"))) == 1  # one TensorBoard writer
    assert sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    ckpt = run / "checkpoints" / "checkpoint-4"
    assert {p.name for p in ckpt.glob("rng_state*")} == {"rng_state_0.pth", "rng_state_1.pth"}
    assert not [p for p in run.rglob(".*") if p.name.endswith(".tmp")]
    adapter = json.loads((run / "adapter" / "booktune.json").read_text())
    assert adapter["config"]["train"]["distributed"] == "ddp"


def test_fsdp_full_shard_matches_one_process_and_saves_the_same_adapter(tmp_path, tiny_data_dir, tiny_model_dir,
                                                                        one_process, capfd):
    run = tmp_path / "fsdp"
    booktune.train(tiny_data_dir, run, model=str(tiny_model_dir), gpus=2, distributed="fsdp", **TRAIN)
    assert "2 processes: FSDP full-shard as asked" in capfd.readouterr().out
    for (_, a), (_, b) in zip(losses(run), losses(one_process)):
        assert a == pytest.approx(b, rel=1e-5)
    assert_same_adapter(run, one_process)  # gathered from the shards into the one-GPU format
    assert json.loads((run / "adapter" / "booktune.json").read_text())["config"]["train"]["distributed"] == "fsdp"


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import booktune
    from booktune.training import callbacks

    original = callbacks.DescribeCheckpoint.on_save

    def on_save(self, args, state, control, **kw):
        original(self, args, state, control, **kw)
        if state.global_step == 2 and state.is_world_process_zero:
            os.kill(os.getpid(), signal.SIGKILL)  # rank 0 dies right after a complete checkpoint

    callbacks.DescribeCheckpoint.on_save = on_save
    booktune.train(sys.argv[1], sys.argv[2], model=sys.argv[3], **eval(sys.argv[4]))
""")


def test_a_killed_two_process_run_resumes_in_two_and_in_one(tmp_path, tiny_data_dir, tiny_model_dir, one_process):
    killed = tmp_path / "killed"
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(tiny_data_dir), str(killed), str(tiny_model_dir), repr(TRAIN)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode != 0 and "Signal 9 (SIGKILL)" in proc.stderr, proc.stderr[-3000:]
    assert not (killed / "adapter").exists()
    assert (killed / "checkpoints" / "checkpoint-2" / "booktune.json").is_file()

    in_one = tmp_path / "in-one"
    shutil.copytree(killed, in_one)
    booktune.train(tiny_data_dir, killed, model=str(tiny_model_dir), gpus=2, resume=True, **TRAIN)
    booktune.train(tiny_data_dir, in_one, model=str(tiny_model_dir), resume=True, **TRAIN)
    for run in (killed, in_one):
        assert [s for s, _ in losses(run)] == [1, 2, 3, 4]
        for (_, a), (_, b) in zip(losses(run), losses(one_process)):
            assert a == pytest.approx(b, rel=1e-5)
        assert_same_adapter(run, one_process)
