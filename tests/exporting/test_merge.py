"""merge_adapter: a plain transformers checkpoint whose logits are the PEFT model's."""

from __future__ import annotations

import json

import pytest

from booktune.exporting.errors import ExportError
from booktune.exporting.merge import merge_adapter
from tests.exporting.tiny import walden_ids

ARCHES = ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "gpt_oss"]


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=ids).logits[0]


def _check_merged_logits(t, out):
    from transformers import AutoModelForCausalLM

    ids = walden_ids(t.tokenizer)
    expected = _logits(t.peft, ids)
    with t.peft.disable_adapter():
        base = _logits(t.peft, ids)
    merged = _logits(AutoModelForCausalLM.from_pretrained(str(out)), ids)
    scale = expected.abs().max().item()
    assert (merged - expected).abs().max().item() < 1e-5 * max(scale, 1.0)  # fp32 rounding
    assert (base - expected).abs().max().item() > 1e-2  # the adapter changed the model: the merge is tested


def test_merged_folder_loads_with_plain_transformers(tiny, tmp_path):
    t = tiny("llama", fitted=False)
    out = merge_adapter(t.base, t.adapter, tmp_path / "merged", dtype="fp32", stop_ids=[2, 0])
    _check_merged_logits(t, out)
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja",
            "generation_config.json"} <= names
    assert not list(out.glob("*.bin")) and not list(out.glob("adapter_*"))
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [2, 0]
    assert (out / "chat_template.jinja").read_text() == t.tokenizer.chat_template


def test_merge_casts_after_merging(tiny, tmp_path):
    from safetensors import safe_open

    t = tiny("llama", fitted=False)
    out = merge_adapter(t.base, t.adapter, tmp_path / "bf16", dtype="bf16")
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118
    assert dtypes == {"BF16"}
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"


def test_merge_replaces_the_folder_whole(tiny, tmp_path):
    t = tiny("llama", fitted=False)
    out = tmp_path / "merged"
    out.mkdir()
    (out / "stale.txt").write_text("from an older export")
    merge_adapter(t.base, t.adapter, out, dtype="fp32")
    assert not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["merged"]  # no temp folder left beside it


def test_merge_bad_input_one_line_errors(tiny, tmp_path):
    t = tiny("llama", fitted=False)
    cases = [
        (dict(base_dir=t.base, adapter_dir=t.adapter, dtype="int8"), "dtype 'int8': unknown"),
        (dict(base_dir=t.base, adapter_dir=tmp_path), f"{tmp_path}: no adapter_config.json"),
        (dict(base_dir=tmp_path, adapter_dir=t.adapter), f"{tmp_path}: no config.json"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ExportError) as err:
            merge_adapter(out_dir=tmp_path / "out", **{"dtype": "fp32", **kwargs})
        assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("arch", [a if a in ("llama", "gpt_oss") else pytest.param(a, marks=pytest.mark.heavy)
                                  for a in ARCHES])  # the merge is PEFT's for all but gpt-oss's expert parameters
def test_merged_logits_equal_peft_for_every_architecture(arch, tiny, tmp_path):
    t = tiny(arch, fitted=False)  # equal logits need no margins
    _check_merged_logits(t, merge_adapter(t.base, t.adapter, tmp_path / "merged", dtype="fp32"))
