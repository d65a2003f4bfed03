"""The PEFT adapter alone as a GGUF LoRA, for `llama-server --lora` and Ollama's ADAPTER, laid out as llama.cpp's
convert_lora_to_gguf.py writes it and as its adapter loader (llama_adapter_lora_init_impl) reads it:

- `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`, and the base's `general.architecture`;
- for each adapted matrix `W` of the base GGUF, `W.lora_a` of shape (rank, in) and `W.lora_b` of shape (out, rank),
  so that llama.cpp adds scale * alpha / rank * B @ A with rank = B's width;
- the base's layout changes carried over: a q/k row permutation permutes B's rows (A is untouched), which is
  what LoraTorchTensor.reshape/permute amount to there.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gguf

from booktune.exporting.errors import ExportError
from booktune.exporting.files import atomic_path
from booktune.exporting.gguf_arch import Arch, Hparams, arch_for, load_hparams
from booktune.exporting.gguf_model import relayout


def write_lora_gguf(adapter_dir: str | Path, base_dir: str | Path, out_path: str | Path,
                    *, name: str | None = None) -> Path:
    """Write the adapter in `adapter_dir` (PEFT safetensors) for the base model in `base_dir` to `out_path`,
    atomically. Its tensor names are those of the base model's GGUF, so it loads on top of `write_gguf`'s file."""
    adapter_dir, base_dir, out_path = Path(adapter_dir), Path(base_dir), Path(out_path)
    config = _adapter_config(adapter_dir)
    hp = load_hparams(base_dir)
    arch = arch_for(hp, base_dir / "config.json")
    alpha = float(config["lora_alpha"])
    pairs = _lora_pairs(adapter_dir)
    name_map = gguf.get_tensor_name_map(arch.gguf_arch, hp["num_hidden_layers"])
    with atomic_path(out_path) as tmp:
        w = gguf.GGUFWriter(tmp, arch.name)
        try:
            w.add_type(gguf.GGUFType.ADAPTER)
            w.add_string(gguf.Keys.Adapter.TYPE, "lora")
            w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
            w.add_name(name or adapter_dir.name)
            for base_name, (a, b) in pairs.items():
                target = _gguf_name(base_name, name_map, hp, arch, adapter_dir)
                b = b.float() * (_peft_scale(config, base_name, b.shape[-1]) * b.shape[-1] / alpha)
                b = relayout(base_name, b, hp, arch)
                w.add_tensor(target + ".lora_a", a.float().contiguous().numpy())
                w.add_tensor(target + ".lora_b", b.contiguous().numpy())
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
        finally:
            w.close()
    return out_path


def _adapter_config(adapter_dir: Path) -> dict[str, Any]:
    path = adapter_dir / "adapter_config.json"
    if not path.is_file():
        raise ExportError(f"{adapter_dir}: no adapter_config.json here, so no adapter to export")
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("peft_type", "LORA") != "LORA":
        raise ExportError(f"{path}: peft_type {config.get('peft_type')!r} is not LoRA")
    if config.get("use_dora"):
        raise ExportError(f"{path}: DoRA adapters have no GGUF LoRA form; export the merged model instead")
    if config.get("target_parameters"):
        # convert_lora_to_gguf has no form for LoRA on 3-D expert parameters either (llama.cpp adapts 2-D matrices)
        raise ExportError(f"{path}: LoRA on expert parameters (target_parameters) has no GGUF LoRA form; "
                          "export the merged model instead")
    return config


def _lora_pairs(adapter_dir: Path) -> dict[str, tuple[Any, Any]]:
    """{base weight name: (lora_A, lora_B)} from the adapter's safetensors (convert_lora_to_gguf's get_tensors)."""
    from safetensors.torch import load_file

    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        raise ExportError(f"{path}: missing (booktune exports safetensors adapters)")
    pairs: dict[str, list[Any]] = {}
    for key, tensor in load_file(str(path)).items():
        base = key.replace("base_model.model.", "", 1)
        for part, slot in ((".lora_A.weight", 0), (".lora_B.weight", 1)):
            if base.endswith(part):
                pairs.setdefault(base[: -len(part)] + ".weight", [None, None])[slot] = tensor
                break
        else:
            raise ExportError(f"{path}: tensor {key!r} is not a LoRA A/B matrix (trained embeddings or expert "
                              "parameters have no GGUF LoRA form; export the merged model instead)")
    broken = [n for n, (a, b) in pairs.items() if a is None or b is None]
    if broken:
        raise ExportError(f"{path}: {broken[0]} has only one of its two LoRA matrices")
    return {n: (a, b) for n, (a, b) in pairs.items()}


def _gguf_name(base_name: str, name_map: gguf.TensorNameMap, hp: Hparams, arch: Arch, where: Path) -> str:
    text_name = base_name.replace("language_model.", "")
    if text_name == "lm_head.weight" and (arch.drop_output or hp.get("tie_word_embeddings")):
        # convert_lora_to_gguf refuses this too: llama.cpp's output matrix is token_embd, shared with the input
        raise ExportError(f"{where}: the adapter trains lm_head, which this base ties to its embeddings; "
                          "export the merged model instead")
    target = name_map.get_name(text_name, try_suffixes=(".weight",))
    if target is None:
        raise ExportError(f"{where}: adapted module {text_name!r} has no llama.cpp name in architecture {arch.name}")
    return target


def _peft_scale(config: dict[str, Any], base_name: str, rank: int) -> float:
    """PEFT's scale for this module: alpha / rank, or alpha / sqrt(rank) with rsLoRA, per-module patterns
    included. llama.cpp applies alpha / rank with one alpha, so any other scale is folded into B."""
    from peft.utils.other import get_pattern_key  # PEFT's own matching: a key is a regex ending at a dot boundary

    patterns = config.get("alpha_pattern") or {}
    alpha = patterns.get(get_pattern_key(patterns.keys(), base_name.removesuffix(".weight")), config["lora_alpha"])
    return alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
