"""Backend choice on a machine without a GPU, and the LoRA settings each backend receives."""

from __future__ import annotations

import sys

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from booktune.train.backends import BackendError, LoraSettings, hf_lora_config, resolve_backend, unsloth_targets

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only choices")


def test_auto_is_hf_without_a_gpu_and_never_imports_unsloth():
    assert resolve_backend("auto") == "hf"
    assert resolve_backend("hf") == "hf"
    assert "unsloth" not in sys.modules


def test_unsloth_without_a_gpu_is_a_one_line_error():
    with pytest.raises(BackendError, match="train.backend: 'unsloth' needs a CUDA GPU"):
        resolve_backend("unsloth")
    with pytest.raises(BackendError, match="'fast' is not one of auto, unsloth, hf"):
        resolve_backend("fast")
    assert "unsloth" not in sys.modules


def test_cli_reports_the_backend_error_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from booktune.cli import app

    (tmp_path / "data").mkdir()
    result = CliRunner().invoke(app, ["train", str(tmp_path / "data"), "--backend", "unsloth", "-o", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "needs a CUDA GPU" in result.output


def test_run_settles_the_backend_before_reading_books(tmp_path):
    """`booktune run` resolves (and imports) the backend first: Unsloth must come before transformers, and a
    backend this machine cannot run fails before any extraction."""
    from typer.testing import CliRunner

    from booktune.cli import app

    books = tmp_path / "books"
    books.mkdir()
    (books / "a.txt").write_text("Some words. " * 400)
    result = CliRunner().invoke(app, ["run", str(books), "--backend", "unsloth", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "needs a CUDA GPU" in result.output
    assert not (tmp_path / "out" / "data").exists()  # nothing was prepared


def test_lora_targets_for_each_backend():
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config)
    assert unsloth_targets(model, ["all-linear"]) == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                      "down_proj"]
    assert unsloth_targets(model, ["q_proj", "v_proj"]) == ["q_proj", "v_proj"]
    lora = hf_lora_config(LoraSettings(8, 16, 0.0, ["all-linear"]))
    assert lora.r == 8 and lora.lora_alpha == 16 and lora.target_modules == "all-linear"
    assert set(hf_lora_config(LoraSettings(8, 16, 0.0, ["q_proj"])).target_modules) == {"q_proj"}



def test_liger_runs_only_where_it_can():
    from booktune.train.backends import BackendError, use_liger

    assert use_liger("auto", "hf", "cpu") is False  # Triton kernels: CUDA only
    assert use_liger("auto", "unsloth", "cuda:0") is False  # Unsloth brings its own kernels
    assert use_liger("off", "hf", "cuda:0") is False
    with pytest.raises(BackendError, match="config field train.liger: 'on' cannot run here: it needs a CUDA GPU"):
        use_liger("on", "hf", "cpu")
    with pytest.raises(BackendError, match="hf backend only"):
        use_liger("on", "unsloth", "cuda:0")


def test_unsloth_checkpointing_offloads_only_when_asked():
    from booktune.train.backends import unsloth_checkpointing

    assert unsloth_checkpointing(True, offload=True) == "unsloth"  # layer inputs wait in CPU memory
    assert unsloth_checkpointing(True, offload=False) is True  # kept on the GPU
    assert unsloth_checkpointing(False, offload=True) is False



def test_a_second_unsloth_import_does_not_warn_about_order(monkeypatch, capsys):
    """`booktune run` imports Unsloth before preparing the books, and train_adapter asks again later, when
    transformers is loaded: that later call must not claim transformers came first. (Unsloth itself cannot be
    imported without a GPU, so an already-imported module stands in for it.)"""
    import sys
    import types

    import transformers  # noqa: F401  (loaded, as it is by then)

    from booktune.train import backends

    already = types.ModuleType("unsloth")
    monkeypatch.setitem(sys.modules, "unsloth", already)
    monkeypatch.setattr(backends, "_warned", set())
    assert backends.import_unsloth() is already
    assert "imported before Unsloth" not in capsys.readouterr().out
