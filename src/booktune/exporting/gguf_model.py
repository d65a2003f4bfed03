"""A merged Hugging Face model folder as one GGUF file, in Python with the gguf package: no llama.cpp checkout and no
compiler (K-quants aside, which take llama.cpp's llama-quantize when it is on PATH).

The file is written in two passes over the checkpoint: the first runs every layout change on shape-only ("meta")
tensors to list each output tensor's name, shape and type for the header; the second loads, converts and writes one
tensor at a time, so memory stays at about one tensor whatever the model's size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from booktune.exporting.errors import ExportError
from booktune.exporting.files import atomic_path, scratch_path
from booktune.exporting.gguf_arch import Arch, Hparams, arch_for, load_hparams, permute, write_common_hparams
from booktune.exporting.gguf_quant import (
    DEFAULT_QUANT,
    K_QUANTS,
    check_quant,
    file_type,
    llama_quantize,
    run_llama_quantize,
    tensor_nbytes,
    tensor_type,
)
from booktune.exporting.gguf_vocab import write_vocab

# TextModel.filter_tensors: parts of multimodal checkpoints that are not the language model
_NOT_TEXT = ("vision_tower.", "multi_modal_projector.", "visual.", "vision_model.", "audio_tower.", "vision.",
             "audio.", "projector.")
_UNUSED = (".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq")


def write_gguf(model_dir: str | Path, out_path: str | Path, *, quant: str = DEFAULT_QUANT,
               stop_ids: Sequence[int] = (), name: str | None = None) -> Path:
    """Write the merged model in `model_dir` (safetensors, config.json, tokenizer) to `out_path` as one GGUF file.

    `quant`: f16, bf16, q8_0 (default) or q4_0, or a K-quant (q4_k_m, ...) made by llama-quantize from an f16
    file. `stop_ids`: the chat template's end-of-turn token ids. `name`: general.name (default: the folder's name).
    The write is atomic: an interrupted export leaves no file at `out_path`."""
    model_dir, out_path = Path(model_dir), Path(out_path)
    quant = check_quant(quant)
    exe = llama_quantize(quant) if quant in K_QUANTS else None
    hp = load_hparams(model_dir)
    arch = arch_for(hp, model_dir / "config.json")
    shards = checkpoint_files(model_dir)
    with atomic_path(out_path) as tmp:
        if exe is None:
            _write(tmp, model_dir, shards, hp, arch, quant, stop_ids, name or model_dir.name)
        else:
            with scratch_path(out_path) as f16:  # the f16 input of llama-quantize is never kept
                _write(f16, model_dir, shards, hp, arch, "f16", stop_ids, name or model_dir.name)
                run_llama_quantize(exe, f16, tmp, quant)
    return out_path


def checkpoint_files(model_dir: Path) -> list[Path]:
    """The safetensors shards of a checkpoint folder (sharded through its index, or one model.safetensors)."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        files = [model_dir / n for n in names]
    else:
        files = [model_dir / "model.safetensors"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ExportError(f"{missing[0]}: missing (a merged model folder holds safetensors weights)")
    return files


def _write(path: Path, model_dir: Path, shards: list[Path], hp: Hparams, arch: Arch, quant: str,
           stop_ids: Sequence[int], name: str) -> None:
    w = gguf.GGUFWriter(path, arch.name)
    try:
        _write_file(w, model_dir, shards, hp, arch, quant, stop_ids, name)
    finally:
        w.close()


def _write_file(w: gguf.GGUFWriter, model_dir: Path, shards: list[Path], hp: Hparams, arch: Arch, quant: str,
                stop_ids: Sequence[int], name: str) -> None:
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(name)
    write_common_hparams(w, hp)
    if arch.hparams is not None:
        arch.hparams(w, hp)
    w.add_file_type(file_type(quant, arch.mxfp4_experts))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    write_vocab(w, model_dir, hp, stop_ids=stop_ids, no_space_prefix=not arch.space_prefix)
    plan = _plan(shards, hp, arch, quant)
    for tname, shape, qtype in plan:
        w.add_tensor_info(tname, shape, np.dtype(np.float32), tensor_nbytes(shape, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for (tname, tensor), (planned, _, qtype) in zip(gguf_tensors(shards, hp, arch), plan, strict=True):
        if tname != planned:
            raise ExportError(f"{model_dir}: tensor order changed between passes ({tname} after the plan's {planned})")
        w.write_tensor_data(_encode(tensor, qtype))


def _plan(shards: list[Path], hp: Hparams, arch: Arch, quant: str) -> list[tuple[str, tuple[int, ...], Any]]:
    """(gguf name, shape, GGML type) of every tensor, from shape-only tensors."""
    shapes = [(n, tuple(t.shape)) for n, t in gguf_tensors(shards, hp, arch, meta=True)]
    names = {n for n, _ in shapes}
    if len(names) != len(shapes):
        raise ExportError(f"{shards[0].parent}: two checkpoint tensors map to one GGUF tensor")
    has_output = "output.weight" in names
    return [(n, s, tensor_type(n, s, quant, mxfp4_experts=arch.mxfp4_experts,
                               is_output=n == "output.weight" or (n == "token_embd.weight" and not has_output)))
            for n, s in shapes]


def gguf_tensors(shards: list[Path], hp: Hparams, arch: Arch, *, meta: bool = False) -> Iterator[tuple[str, Any]]:
    """(gguf name, tensor in llama.cpp's layout) for every tensor llama.cpp loads, extra tensors first."""
    name_map = gguf.get_tensor_name_map(arch.gguf_arch, hp["num_hidden_layers"])
    if arch.extra is not None:
        for key, tensor in arch.extra(hp):
            yield gguf.TENSOR_NAMES[key] + ".weight", tensor
    for hf_name, tensor in _checkpoint_tensors(shards, meta):
        if (hf_name := _text_name(hf_name, hp, arch)) is None:
            continue
        for part_name, part in arch.split(hf_name, tensor) if arch.split else [(hf_name, tensor)]:
            gguf_name = name_map.get_name(part_name, try_suffixes=(".weight", ".bias"))
            if gguf_name is None:
                raise ExportError(f"{shards[0].parent}: tensor {part_name!r} has no llama.cpp name in "
                                  f"architecture {arch.name}")
            yield gguf_name, relayout(part_name, part, hp, arch)


def relayout(hf_name: str, tensor: Any, hp: Hparams, arch: Arch) -> Any:
    """The value changes llama.cpp makes to one HF tensor: the q/k row permutation (LlamaModel.modify_tensors)
    and Gemma's RMSNorm offset (Gemma2Model / Gemma3Model.modify_tensors: HF stores w - 1)."""
    if arch.permute_qk and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
        tensor = permute(tensor, hp["num_attention_heads"], hp["num_attention_heads"])
    elif arch.permute_qk and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
        tensor = permute(tensor, hp["num_attention_heads"], hp.get("num_key_value_heads"))
    if arch.norm_shift and hf_name.endswith("norm.weight"):
        tensor = tensor.float() + arch.norm_shift
    return tensor


def _text_name(name: str, hp: Hparams, arch: Arch) -> str | None:
    """The language model's name for a checkpoint tensor, or None for tensors llama.cpp does not load."""
    if name.endswith(_UNUSED) or any(part in name for part in _NOT_TEXT):
        return None
    name = name.replace("language_model.", "")
    if name == "lm_head.weight" and (arch.drop_output or hp.get("tie_word_embeddings")):
        return None  # llama.cpp reads the output matrix from token_embd when output.weight is absent
    return name


def _checkpoint_tensors(shards: list[Path], meta: bool) -> Iterator[tuple[str, Any]]:
    import torch
    from safetensors import safe_open

    for shard in shards:
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                if meta:
                    yield key, torch.empty(f.get_slice(key).get_shape(), device="meta")
                else:
                    yield key, f.get_tensor(key)


def _encode(tensor: Any, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    import torch

    if tensor.dtype not in (torch.float16, torch.float32):
        tensor = tensor.float()
    data = tensor.contiguous().numpy()
    if qtype != gguf.GGMLQuantizationType.F16 and data.dtype == np.float16:
        data = data.astype(np.float32)
    return gguf.quants.quantize(data, qtype)
