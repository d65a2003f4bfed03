"""Backend choice on a machine without a GPU, and the LoRA settings each backend receives."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from booktune.training.backends import HF, REGISTRY, UNSLOTH, BackendError, LoraSettings, names, planned, resolve
from booktune.training.backends.unsloth import checkpointing_mode, import_unsloth, unsloth_targets

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only choices")


def test_auto_is_hf_without_a_gpu_and_never_imports_unsloth():
    assert resolve("auto", "cpu") == (HF, "")
    assert resolve("hf", "cpu") == (HF, "")
    assert "unsloth" not in sys.modules


def test_unsloth_without_a_gpu_is_a_one_line_error():
    with pytest.raises(BackendError, match="train.backend: 'unsloth' needs a CUDA GPU"):
        resolve("unsloth", "cpu")
    with pytest.raises(BackendError, match="'fast' is not one of auto, unsloth, hf"):
        resolve("fast", "cpu")
    assert "unsloth" not in sys.modules


def test_the_registry_names_every_backend_once():
    assert names() == ("auto", "unsloth", "hf")
    assert all(name == backend.name for name, backend in REGISTRY.items())
    assert planned("hf") is HF and planned("unsloth") is UNSLOTH
    assert planned("auto") is (UNSLOTH if UNSLOTH.installed() else HF)


def test_fsdp_gives_way_to_a_backend_that_runs_it():
    from booktune.training.backends import for_strategy

    backend, note = for_strategy(UNSLOTH, "fsdp")
    assert backend is HF and "FSDP trains with the hf backend" in note
    assert for_strategy(UNSLOTH, "ddp") == (UNSLOTH, "")
    assert for_strategy(HF, "fsdp") == (HF, "")


def test_cli_reports_the_backend_error_without_a_traceback(tmp_path, tiny_data_dir):
    from typer.testing import CliRunner

    from booktune.cli import app

    result = CliRunner().invoke(app, ["train", str(tiny_data_dir), "--backend", "unsloth", "-o", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "needs a CUDA GPU" in result.output


def test_offloaded_embeddings_on_the_hf_backend_are_refused_in_one_line(tmp_path, tiny_data_dir):
    from typer.testing import CliRunner

    from booktune.cli import app

    result = CliRunner().invoke(app, ["train", str(tiny_data_dir), "--offload-embeddings", "-o", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "config field train.offload_embeddings: the hf backend keeps the embeddings on the GPU" in " ".join(
        result.output.split())


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
    prec = types.SimpleNamespace(on_gpu=False)
    _, lora = HF.add_lora(model, LoraSettings(8, 16, 0.0, ["all-linear"]), prec, packing=True)
    assert model.config._attn_implementation == "booktune_varlen"  # packed rows attend per example on a CPU too
    batching = HF.batching(model, packing=True)  # no cu_seqlens kernel on a CPU: rows stay rows, as before
    assert (batching.mode, batching.flatten, batching.why) == ("packed", False, "booktune_varlen, SDPA per example")
    assert lora.r == 8 and lora.lora_alpha == 16 and lora.target_modules == "all-linear"
    _, lora = HF.add_lora(model, LoraSettings(8, 16, 0.0, ["q_proj"]), prec, packing=True)
    assert set(lora.target_modules) == {"q_proj"}



def test_liger_runs_only_where_it_can():
    assert HF.kernels("auto", "cpu") is False  # Triton kernels: CUDA only
    assert UNSLOTH.kernels("auto", "cuda:0") is False  # Unsloth brings its own kernels
    assert HF.kernels("off", "cuda:0") is False
    with pytest.raises(BackendError, match="config field train.liger: 'on' cannot run here: it needs a CUDA GPU"):
        HF.kernels("on", "cpu")
    with pytest.raises(BackendError, match="applies to the hf backend, not unsloth"):
        UNSLOTH.kernels("on", "cuda:0")


def test_unsloth_checkpointing_offloads_only_when_asked():
    assert checkpointing_mode(True, offload=True) == "unsloth"  # layer inputs wait in CPU memory
    assert checkpointing_mode(True, offload=False) is True  # kept on the GPU
    assert checkpointing_mode(False, offload=True) is False



def test_a_second_unsloth_import_does_not_warn_about_order(monkeypatch, capsys):
    """`booktune run` imports Unsloth before preparing the books, and train_adapter asks again later, when
    transformers is loaded: that later call must not claim transformers came first. (Unsloth itself cannot be
    imported without a GPU, so an already-imported module stands in for it.)"""
    import transformers  # noqa: F401  (loaded, as it is by then)

    already = types.ModuleType("unsloth")
    monkeypatch.setitem(sys.modules, "unsloth", already)
    assert import_unsloth() is already
    assert "imported before Unsloth" not in capsys.readouterr().out


def stand_in_dispatch(monkeypatch, own_kernel):
    """Unsloth's attention_dispatch module as the lending code reads it (Unsloth itself cannot load without a GPU)."""
    dispatch = types.SimpleNamespace(_TORCH_VARLEN_ATTN=own_kernel, _LEAN_VARLEN=own_kernel is not None)
    utils = types.SimpleNamespace(attention_dispatch=dispatch)
    monkeypatch.setitem(sys.modules, "unsloth", types.SimpleNamespace(utils=utils))
    monkeypatch.setitem(sys.modules, "unsloth.utils", utils)
    monkeypatch.setitem(sys.modules, "unsloth.utils.attention_dispatch", dispatch)
    return dispatch


def test_varlen_kernel_is_lent_only_where_unsloth_has_none_and_flash_runs(monkeypatch):
    from booktune.training.backends.unsloth import lend_varlen_kernel
    from booktune.training.varlen import flash_varlen_attn

    monkeypatch.setattr(torch.backends.cuda, "is_flash_attention_available", lambda: True)
    dispatch = stand_in_dispatch(monkeypatch, None)  # torch < 2.12: Unsloth runs SDPA per segment
    assert lend_varlen_kernel() is True
    assert dispatch._TORCH_VARLEN_ATTN is flash_varlen_attn and dispatch._LEAN_VARLEN is False

    def torchs_own(*args, **kwargs):
        raise AssertionError("not called here")

    dispatch = stand_in_dispatch(monkeypatch, torchs_own)  # torch >= 2.12: Unsloth's own choice stands
    assert lend_varlen_kernel() is False and dispatch._TORCH_VARLEN_ATTN is torchs_own

    monkeypatch.setattr(torch.backends.cuda, "is_flash_attention_available", lambda: False)
    dispatch = stand_in_dispatch(monkeypatch, None)  # a build without the flash kernel keeps the segment path
    assert lend_varlen_kernel() is False and dispatch._TORCH_VARLEN_ATTN is None


def stand_in_flex(monkeypatch, original, compiled):
    """unsloth_zoo's flex-attention modules as narrow_flex_masks reads them (they cannot load without a GPU)."""
    from booktune.training.backends import unsloth as backend

    sink = types.SimpleNamespace(reused_compiled_create_block_mask=original)
    utils = types.SimpleNamespace(compiled_create_block_mask=compiled)
    flex = types.SimpleNamespace(attention_sink=sink, utils=utils)
    monkeypatch.setitem(sys.modules, "unsloth_zoo", types.SimpleNamespace(flex_attention=flex))
    monkeypatch.setitem(sys.modules, "unsloth_zoo.flex_attention", flex)
    monkeypatch.setitem(sys.modules, "unsloth_zoo.flex_attention.attention_sink", sink)
    monkeypatch.setitem(sys.modules, "unsloth_zoo.flex_attention.utils", utils)
    monkeypatch.setattr(backend, "_FLEX_EXAMPLES", [])
    return sink


def test_flex_block_masks_keep_to_one_example_and_are_built_once_a_step(monkeypatch):
    """GPT-OSS under Unsloth: while the row is packed, the block mask Unsloth asks for is its own mask_mod narrowed
    to one example, built once a step for every layer and recomputation; otherwise Unsloth's own stands."""
    from booktune.training.backends.unsloth import narrow_flex_masks
    from booktune.training.documents import allowed

    built = []
    sink = stand_in_flex(monkeypatch, lambda mod, b, h, q, kv, device="cuda": "row-wide",
                         lambda mod, b, h, q, kv, device="cuda": built.append(mod) or len(built))
    state = narrow_flex_masks()
    assert narrow_flex_masks() is state  # patched once a process
    block_mask = sink.reused_compiled_create_block_mask

    def causal(b, h, q, kv):
        return kv <= q

    assert block_mask(causal, None, None, 8, 8, device="cpu") == "row-wide"  # nothing packed yet
    positions = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2]])
    state.update(positions)
    first = block_mask(causal, None, None, 8, 8, device="cpu")
    assert [block_mask(causal, None, None, 8, 8, device="cpu") for _ in range(3)] == [first] * 3 and len(built) == 1
    q, kv = torch.arange(8)[:, None], torch.arange(8)[None, :]
    assert torch.equal(built[0](0, 0, q, kv), allowed(positions)[0, 0])
    assert block_mask(causal, None, None, 12, 12, device="cpu") == "row-wide"  # another length: not this row
    state.update(torch.tensor([[0, 1, 2, 3, 4, 5, 0, 1]]))  # the next step
    assert block_mask(causal, None, None, 8, 8, device="cpu") != first and len(built) == 2
    assert bool(built[1](0, 0, torch.tensor(5), torch.tensor(0)))  # same example now
    state.update(torch.tensor([list(range(8))]))  # one example: Unsloth's causal mask is right
    assert block_mask(causal, None, None, 8, 8, device="cpu") == "row-wide"
