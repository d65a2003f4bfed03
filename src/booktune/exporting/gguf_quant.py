"""Which GGML type each tensor gets, and the K-quants that only llama.cpp's own llama-quantize can make.

booktune quantizes in numpy through the gguf package, which implements F16, BF16, Q8_0, Q4_0 and MXFP4 but not the
K-quants (its Q4_K and Q6_K raise NotImplementedError)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from math import prod
from pathlib import Path

import gguf

from booktune.config import GGUF_QUANTS, K_QUANTS
from booktune.exporting.errors import ExportError

Q = gguf.GGMLQuantizationType
QUANTS = dict(zip(GGUF_QUANTS, (Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0), strict=True))
DEFAULT_QUANT = "q8_0"
_FILE_TYPES = {
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "bf16": gguf.LlamaFileType.MOSTLY_BF16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
}
_EXPERTS = (".ffn_gate_exps.weight", ".ffn_up_exps.weight", ".ffn_down_exps.weight")


def check_quant(quant: str) -> str:
    """The quant name in lower case, or a one-line error listing the names booktune takes."""
    name = str(quant).lower()
    if name not in QUANTS and name not in K_QUANTS:
        raise ExportError(f"quant {quant!r}: unknown (choose from {', '.join([*QUANTS, *K_QUANTS])})")
    return name


def llama_quantize(quant: str) -> str:
    """The llama-quantize binary that makes `quant`, or a one-line error saying it is missing."""
    exe = shutil.which("llama-quantize")
    if exe is None:
        raise ExportError(f"quant {quant!r}: K-quants need llama.cpp's llama-quantize on PATH, and it is not "
                          "there; use q8_0 (or q4_0), which booktune writes itself")
    return exe


def run_llama_quantize(exe: str, src: Path, dst: Path, quant: str) -> None:
    proc = subprocess.run([exe, str(src), str(dst), quant.upper()], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ExportError(f"{exe}: failed to make {quant} from {src.name}: {tail[0]}")


def file_type(quant: str, mxfp4_experts: bool) -> gguf.LlamaFileType:
    if mxfp4_experts and quant in ("q8_0", "q4_0"):
        return gguf.LlamaFileType.MOSTLY_MXFP4_MOE
    return _FILE_TYPES[quant]


def tensor_type(name: str, shape: Sequence[int], quant: str, *, is_output: bool,
                mxfp4_experts: bool) -> gguf.GGMLQuantizationType:
    """ModelBase.prepare_tensors' rules: 1-D tensors, norms, biases and the MoE router stay F32; the rest take
    the file's type, or F16 when a row does not split into whole blocks."""
    if len(shape) <= 1 or name.endswith("_norm.weight") or not name.endswith(".weight") or ".ffn_gate_inp." in name:
        return Q.F32
    qtype = QUANTS[quant]
    if mxfp4_experts and quant in ("q8_0", "q4_0") and name.endswith(_EXPERTS):
        qtype = Q.MXFP4
    elif quant == "q4_0" and is_output:
        # llama_tensor_get_type gives the output matrix more bits than the rest (Q6_K there); Q8_0 is the nearest
        # type booktune can make
        qtype = Q.Q8_0
    if shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0] != 0:
        return Q.F16
    return qtype


def tensor_nbytes(shape: Sequence[int], qtype: gguf.GGMLQuantizationType) -> int:
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    return prod(shape[:-1]) * (shape[-1] // block) * size
