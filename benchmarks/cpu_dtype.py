"""How fast this CPU multiplies the default model's matrices in float32 and in bf16.

booktune trains on a CPU in bf16 where the CPU has bf16 matrix instructions (AVX-512 or AMX, through oneDNN) and in
float32 elsewhere (`devices.pick_dtype`). This times `torch.nn.functional.linear` on every projection shape of the
model (--model, the default model by default: its config.json alone is read) for a row of --tokens tokens, each
dtype in turn, --rounds times, and adds the shapes up as a forward pass over the row takes them (each layer's
projections, the LM head once). Prints one JSON object: the CPU, whether oneDNN reports bf16 instructions, and per
dtype the seconds of one forward pass's projections (the fastest round) and its GFLOP/s; writes it to --out.

    python benchmarks/cpu_dtype.py
    python benchmarks/cpu_dtype.py --tokens 1024 --dtypes fp32
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if (HERE.parent / "src" / "booktune").is_dir():  # a checkout; an installed booktune works too
    sys.path.insert(0, str(HERE.parent / "src"))

def shapes(config) -> list[tuple[int, int, int]]:
    """(in, out, count) of every projection one forward pass multiplies by: q, k, v, o, gate, up, down per layer,
    and the LM head."""
    h, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    kv = config.num_key_value_heads * head_dim
    q = config.num_attention_heads * head_dim
    return [(h, q, layers), (h, kv, 2 * layers), (q, h, layers), (h, inter, 2 * layers), (inter, h, layers),
            (h, config.vocab_size, 1)]


def cpu_name() -> str:
    """The model name, with family and model numbers: a virtual machine may name only the vendor's line."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines()[:30] if info.exists() else []  # the first core's block
    fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}
    if "model name" not in fields:
        return platform.processor()
    return f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"


def forward_seconds(torch, dims, tokens: int, dtype) -> float:
    """One forward pass's projections: each shape timed once (after a warm-up), times its count."""
    total = 0.0
    for d_in, d_out, count in dims:
        x = torch.randn(tokens, d_in, dtype=dtype)
        w = torch.randn(d_out, d_in, dtype=dtype)
        torch.nn.functional.linear(x, w)
        start = time.perf_counter()
        torch.nn.functional.linear(x, w)
        total += (time.perf_counter() - start) * count
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="a model whose config.json gives the shapes")
    ap.add_argument("--tokens", type=int, default=256, help="rows of each product (tokens of the row)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dtypes", nargs="+", choices=["bf16", "fp32"], default=["fp32", "bf16"])
    ap.add_argument("--out", type=Path, default=Path("cpu_dtype.json"))
    a = ap.parse_args()
    import torch
    from transformers import AutoConfig

    from booktune.devices import cpu_bf16, pick_dtype
    from booktune.model import resolve_model

    dims = shapes(AutoConfig.from_pretrained(resolve_model(a.model).path))
    flop = sum(2 * a.tokens * d_in * d_out * count for d_in, d_out, count in dims)
    result = {"cpu": cpu_name(), "threads": torch.get_num_threads(),
              "capability": torch.backends.cpu.get_cpu_capability(),
              "onednn_bf16": cpu_bf16(), "tokens": a.tokens, "gflop": round(flop / 1e9, 2)}
    for name in a.dtypes:
        best = min(forward_seconds(torch, dims, a.tokens, pick_dtype(name, "cpu")) for _ in range(a.rounds))
        result[name] = {"seconds": round(best, 3), "gflop_per_s": round(flop / best / 1e9, 1)}
    print(json.dumps(result))
    a.out.write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
