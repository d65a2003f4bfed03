"""A run killed with SIGKILL at any stage boundary never looks finished: the completion marker goes first and
comes back last. Each case is a real process, killed by a real SIGKILL (BOOKTUNE_KILL_AT names the boundary)."""

from __future__ import annotations

import shutil

import pytest

from tests.reliability.conftest import TINY, booktune_process, cli, one_line_error

PREPARE = ["prepare:marker-removed", "prepare:texts", "prepare:examples"]
TRAIN = ["train:marker-removed", "train:adapter"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, short_book, tiny_model_dir):
    """A DATA folder made by a real process from the short book (so each killed and repeated prepare is quick)."""
    out = tmp_path_factory.mktemp("kills") / "data"
    args = ["prepare", short_book, "--out", out, "--model", tiny_model_dir, "--chunk-words", 120, "--overlap-words", 20]
    assert booktune_process(*args).returncode == 0
    return out, args


@pytest.mark.parametrize("boundary", PREPARE)
def test_a_prepare_killed_over_an_old_one_is_not_taken_for_prepared(tmp_path, prepared, boundary, tiny_model_dir):
    data = tmp_path / "data"
    shutil.copytree(prepared[0], data)
    args = [*prepared[1][:3], data, *prepared[1][4:]]
    proc = booktune_process(*args, kill_at=boundary)
    assert proc.returncode == -9, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not (data / "stats.json").exists()
    one_line_error(cli("train", data, "--out", tmp_path / "run", "--model", tiny_model_dir),
                   "not a prepared data folder")
    rerun = cli(*args)  # the next prepare finishes the folder
    assert rerun.exit_code == 0 and (data / "stats.json").is_file(), rerun.output


@pytest.mark.parametrize("boundary", TRAIN)
def test_a_train_killed_over_a_finished_run_is_not_taken_for_finished(tmp_path, tiny_run_dir, tiny_data_dir,
                                                                       tiny_model_dir, boundary):
    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    proc = booktune_process("train", tiny_data_dir, "--out", run, "--model", tiny_model_dir, "--overwrite", *flags,
                            kill_at=boundary)
    assert proc.returncode == -9, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not (run / "booktune.json").exists()
    one_line_error(cli("chat", run, "--prompt", "hello"), "no finished run here")
