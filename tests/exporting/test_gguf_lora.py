"""write_lora_gguf: the adapter as llama.cpp's adapter loader (llama_adapter_lora_init_impl) reads it."""

from __future__ import annotations

import json
import shutil

import gguf
import numpy as np
import pytest

from booktune.exporting.errors import ExportError
from booktune.exporting.gguf_lora import write_lora_gguf
from booktune.exporting.gguf_model import write_gguf
from booktune.exporting.merge import merge_adapter

ADAPTED = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def kv(reader, key):
    return reader.fields[key].contents()


def values(reader) -> dict[str, np.ndarray]:
    return {t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32) for t in reader.tensors}


@pytest.fixture(scope="module")
def llama(tiny):
    return tiny("llama", fitted=False, small_vocab=True)


def test_lora_gguf_loads_where_llama_cpp_expects(llama, tmp_path):
    base = gguf.GGUFReader(write_gguf(llama.base, tmp_path / "base.gguf", quant="f16"))
    reader = gguf.GGUFReader(write_lora_gguf(llama.adapter, llama.base, tmp_path / "lora.gguf"))
    assert kv(reader, "general.type") == "adapter" and kv(reader, "adapter.type") == "lora"
    assert kv(reader, "adapter.lora.alpha") == 8.0
    assert kv(reader, "general.architecture") == kv(base, "general.architecture") == "llama"
    ne = {t.name: [int(n) for n in t.shape] for t in reader.tensors}  # ggml order: ne[0] is the row length
    model = {t.name: [int(n) for n in t.shape] for t in base.tensors}
    targets = {n.removesuffix(".lora_a") for n in ne if n.endswith(".lora_a")}
    assert targets == {f"blk.{i}.{m}.weight" for i in range(2) for m in ADAPTED}
    assert set(ne) == {f"{n}.lora_{ab}" for n in targets for ab in "ab"}
    for name in targets:
        a, b, w = ne[name + ".lora_a"], ne[name + ".lora_b"], model[name]
        # the three checks llama_adapter_lora_init_impl makes before it accepts a pair
        assert w[0] == a[0] and w[1] == b[1] and a[1] == b[0] == 4
    assert {t.tensor_type for t in reader.tensors} == {gguf.GGMLQuantizationType.F32}


def test_base_plus_lora_is_the_merged_model(llama, tmp_path):
    """W + alpha / rank * B @ A, computed on the GGUF tensors as llama.cpp does, gives the merged GGUF's weights,
    q and k included (their B rows carry the base's row permutation)."""
    merged = merge_adapter(llama.base, llama.adapter, tmp_path / "merged", dtype="fp32")
    base = values(gguf.GGUFReader(write_gguf(llama.base, tmp_path / "base.gguf", quant="f16")))
    want = values(gguf.GGUFReader(write_gguf(merged, tmp_path / "merged.gguf", quant="f16")))
    lora = values(gguf.GGUFReader(write_lora_gguf(llama.adapter, llama.base, tmp_path / "lora.gguf")))
    for layer in range(2):
        for module in ADAPTED:
            name = f"blk.{layer}.{module}.weight"
            a, b = lora[name + ".lora_a"], lora[name + ".lora_b"]
            delta = 8.0 / b.shape[1] * b @ a
            assert np.abs(delta).max() > 1e-3  # the adapter matters here
            np.testing.assert_allclose(base[name] + delta, want[name], atol=2e-3, err_msg=name)


def test_other_peft_scales_are_folded_into_b(llama, tmp_path):
    """llama.cpp scales by alpha / rank with one alpha; rsLoRA (alpha / sqrt(rank)) and per-module alphas are
    folded into B so the product is PEFT's."""
    variant = tmp_path / "variant"
    shutil.copytree(llama.adapter, variant)
    config = json.loads((variant / "adapter_config.json").read_text())
    # PEFT's pattern keys: a module name's tail, or a regex over the tail (here layer 0's k_proj only)
    config.update(use_rslora=True, alpha_pattern={"v_proj": 16, r"layers\.0\.self_attn\.k_p\w+": 24})
    (variant / "adapter_config.json").write_text(json.dumps(config))
    plain = values(gguf.GGUFReader(write_lora_gguf(llama.adapter, llama.base, tmp_path / "plain.gguf")))
    folded = values(gguf.GGUFReader(write_lora_gguf(variant, llama.base, tmp_path / "folded.gguf")))
    np.testing.assert_allclose(folded["blk.0.attn_q.weight.lora_b"], plain["blk.0.attn_q.weight.lora_b"] * 2,
                               rtol=1e-6)  # sqrt(4) = 2
    np.testing.assert_allclose(folded["blk.0.attn_v.weight.lora_b"], plain["blk.0.attn_v.weight.lora_b"] * 4,
                               rtol=1e-6)  # alpha 16 instead of 8, times sqrt(4)
    np.testing.assert_allclose(folded["blk.0.attn_k.weight.lora_b"], plain["blk.0.attn_k.weight.lora_b"] * 6,
                               rtol=1e-6)  # alpha 24, times sqrt(4)
    np.testing.assert_allclose(folded["blk.1.attn_k.weight.lora_b"], plain["blk.1.attn_k.weight.lora_b"] * 2,
                               rtol=1e-6)  # the regex names layer 0 alone
    np.testing.assert_array_equal(folded["blk.0.attn_q.weight.lora_a"], plain["blk.0.attn_q.weight.lora_a"])


def test_adapters_without_a_gguf_lora_form_are_refused(llama, tmp_path):
    from safetensors.torch import load_file, save_file

    tied = tmp_path / "tied"
    shutil.copytree(llama.adapter, tied)
    weights = load_file(str(tied / "adapter_model.safetensors"))
    for part in ("A", "B"):  # an adapter that also trained the output matrix (its values do not matter here)
        source = f"base_model.model.model.layers.0.mlp.up_proj.lora_{part}.weight"
        weights[f"base_model.model.lm_head.lora_{part}.weight"] = weights[source].clone()
    save_file(weights, str(tied / "adapter_model.safetensors"))
    dora = tmp_path / "dora"
    shutil.copytree(llama.adapter, dora)
    config = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    experts = tmp_path / "experts"
    shutil.copytree(llama.adapter, experts)
    (experts / "adapter_config.json").write_text(json.dumps({**config, "target_parameters": ["mlp.experts.down_proj"]}))
    for adapter, message in [(tied, "trains lm_head, which this base ties"), (dora, "DoRA adapters"),
                             (experts, "LoRA on expert parameters"), (tmp_path / "none", "no adapter_config.json")]:
        with pytest.raises(ExportError) as err:
            write_lora_gguf(adapter, llama.base, tmp_path / "out.gguf")
        assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out.gguf").exists()
