"""Where an 8B QLoRA training step spends its GPU time: torch.profiler over a few steps of booktune's own trainer.

Builds the random Llama-3.1-8B-shape model (bench_models.py), sets up the run exactly as train_throughput.py's
booktune run does (default backend unless --backend), profiles --steps steps after --warmup, and prints the CUDA
kernels grouped by kind (4-bit dequantization, matmuls, attention, the rest) plus the top kernels.

    python benchmarks/profile_step.py --backend auto --warmup 3 --steps 2 --out profile.txt
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

GROUPS = [("NCCL (DDP all-reduce, waits included)", r"nccl"),
          ("4-bit dequantize (bitsandbytes)", r"dequant|kDequantize"),
          ("attention", r"flash|fmha|attention|attn|sdpa|varlen"),
          ("matmul (GEMM)", r"gemm|sm90|xmma|cutlass|cublas|nvjet|matmul"),
          ("copies / casts", r"copy|cast|to_copy|memcpy|memset"),
          ("norm / activation / rope / loss kernels", r"norm|silu|swiglu|rope|rotary|cross_entropy|softmax|liger")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--liger", action="store_true", help="hf backend: with Liger kernels")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--models", type=Path, default=Path("/tmp/bench-models"))
    ap.add_argument("--out", type=Path, default=Path("profile.txt"))
    a = ap.parse_args()
    import train_throughput as tt
    from bench_models import build_model

    spec = {"shape": "llama-8b", "run": "profile", "model_dir": str(build_model("llama-8b", a.models)), "seq": 2048,
            "steps": a.steps, "warmup": a.warmup, "batch": 4, "lora_r": 16, "data": "seed"}
    trainer = tt.run_booktune(spec, a.backend, liger=a.liger)[0]
    trainer.add_callback(profiler_callback(a))
    trainer.train()


def profiler_callback(a: argparse.Namespace):
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    class Profile(TrainerCallback):
        prof = None

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == a.warmup:
                torch.cuda.synchronize()
                self.prof = profile(activities=[ProfilerActivity.CUDA])
                self.prof.__enter__()

        def on_step_end(self, args, state, control, **kw):
            if self.prof is not None and state.global_step == a.warmup + a.steps:
                torch.cuda.synchronize()
                self.prof.__exit__(None, None, None)
                report(self.prof, a)
                self.prof = None

    return Profile()


def report(prof, a: argparse.Namespace) -> None:
    events = [e for e in prof.key_averages() if e.self_device_time_total > 0]
    total = sum(e.self_device_time_total for e in events)
    grouped = {name: 0.0 for name, _ in GROUPS} | {"other": 0.0}
    for e in events:
        name = next((g for g, pat in GROUPS if re.search(pat, e.key, re.I)), "other")
        grouped[name] += e.self_device_time_total
    lines = [f"GPU kernel time over {a.steps} steps: {total / 1e3:.0f} ms ({total / 1e3 / a.steps:.0f} ms a step)"]
    lines += [f"  {name:<42} {t / 1e3:8.0f} ms  {100 * t / total:5.1f} %" for name, t in grouped.items()]
    lines.append("top kernels:")
    for e in sorted(events, key=lambda e: -e.self_device_time_total)[:25]:
        lines.append(f"  {100 * e.self_device_time_total / total:5.1f} %  {e.count:6d} calls  {e.key[:110]}")
    text = "\n".join(lines)
    print(text, flush=True)
    a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
