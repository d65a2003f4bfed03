"""Where a slow training step's time goes, step by step: GPU kernel time, idle gaps, host stacks and allocator events.

Runs one of train_throughput.py's runs (booktune's default, or Unsloth's unisolated packing) on the 8B shape and,
for every step from the first, records:
- wall time (the GPU synchronized at both ends);
- GPU kernel time and the longest idle gap between kernels (torch.profiler, CUDA activity only; a marker kernel
  launched at each step's start splits the timeline into steps);
- what the main Python thread was doing (its stack sampled every 5 ms by a second thread);
- the changes in the CUDA caching allocator's, the pinned host allocator's and torch.compile's counters.

It prints one line a step and, for the slowest timed step against the median one, the host stacks and kernels that
differ. The profiler and the sampler cost some speed, so its step times are for comparing steps, not for reporting
throughput (train_throughput.py does that).

    python3 benchmarks/step_trace.py --run booktune --warmup 3 --steps 12 --out trace.json
    python3 benchmarks/step_trace.py --shape gpt-oss-20b --batch 2 --lora-r 8 --warmup 4 --steps 16
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
MARKER = "spin_kernel"  # torch.cuda._sleep's kernel: launched only at step starts


class StackSampler(threading.Thread):
    """Samples the main thread's innermost frames every `every` seconds, tagged with the current step."""

    def __init__(self, every: float = 0.005, depth: int = 8):
        super().__init__(daemon=True)
        self.every, self.depth, self.step, self.running = every, depth, -1, True
        self.samples: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
        self.main = threading.main_thread().ident

    def run(self) -> None:
        while self.running:
            frame = sys._current_frames().get(self.main)
            if frame is not None and self.step >= 0:
                stack = traceback.extract_stack(frame)[-self.depth:]
                key = " < ".join(f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in reversed(stack))
                self.samples[self.step][key] += 1
            time.sleep(self.every)


def flat_stats() -> dict[str, float]:
    """The device and host allocators' counters, and torch.compile's, flattened to name -> number."""
    import torch

    out = {f"cuda.{k}": v for k, v in torch.cuda.memory_stats().items() if isinstance(v, (int, float))}
    try:
        for k, v in torch.cuda.host_memory_stats().items():
            if isinstance(v, (int, float)):
                out[f"host.{k}"] = v
    except (AttributeError, RuntimeError):
        pass
    try:
        from torch._dynamo.utils import counters
        for group, values in counters.items():
            out |= {f"dynamo.{group}.{k}": v for k, v in values.items()}
    except ImportError:
        pass
    return out


def tracer_callback(sampler: StackSampler):
    import torch
    from transformers import TrainerCallback

    class Trace(TrainerCallback):
        def __init__(self):
            self.walls, self.stats, self.begin = [], [], 0.0

        def on_step_begin(self, args, state, control, **kw):
            torch.cuda.synchronize()
            torch.cuda._sleep(1000)  # the marker kernel that opens this step on the GPU timeline
            sampler.step = state.global_step
            self.before = flat_stats()
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            torch.cuda.synchronize()
            self.walls.append(time.perf_counter() - self.begin)
            after = flat_stats()
            self.stats.append({k: after[k] - self.before.get(k, 0) for k in after if after[k] != self.before.get(k, 0)})
            sampler.step = -1

    return Trace()


def kernels_by_step(prof) -> list[list[tuple[str, float, float]]]:
    """(name, start µs, duration µs) of the GPU kernels, cut into steps at the marker kernels."""
    from torch.autograd import DeviceType

    kernels = sorted(((e.name, e.time_range.start, e.time_range.end - e.time_range.start)
                      for e in prof.events() if e.device_type == DeviceType.CUDA), key=lambda k: k[1])
    steps: list[list] = []
    for k in kernels:
        if MARKER in k[0]:
            steps.append([])
        elif steps:
            steps[-1].append(k)
    return steps


def gaps(kernels: list[tuple[str, float, float]], top: int = 3) -> list[tuple[float, str, str]]:
    """The longest idle stretches between consecutive kernels: (ms, kernel before, kernel after)."""
    found = [((b[1] - (a[1] + a[2])) / 1e3, a[0][:60], b[0][:60]) for a, b in zip(kernels, kernels[1:])]
    return sorted(found, reverse=True)[:top]


def peak_owners(snapshot: dict, top: int = 16) -> dict:
    """Replays the allocator's trace to the moment the most memory was allocated and groups what was live then by
    the innermost Python frame outside torch that asked for it: (GiB, frame, blocks)."""
    live: dict[int, tuple[int, str]] = {}
    total = peak = 0
    at_peak: dict[int, tuple[int, str]] = {}
    for ev in snapshot["device_traces"][0]:
        if ev["action"] == "alloc":
            frames = [f for f in ev.get("frames", []) if "/torch/" not in f["filename"]]
            key = " < ".join(f"{Path(f['filename']).name}:{f['line']}:{f['name']}" for f in frames[:3]) or "(torch)"
            live[ev["addr"]] = (ev["size"], key)
            total += ev["size"]
            if total > peak:
                peak, at_peak = total, dict(live)
        elif ev["action"] == "free_completed" and ev["addr"] in live:
            total -= live.pop(ev["addr"])[0]
    groups: dict[str, list] = collections.defaultdict(lambda: [0, 0])
    for size, key in at_peak.values():
        groups[key][0] += size
        groups[key][1] += 1
    ranked = sorted(groups.items(), key=lambda kv: -kv[1][0])[:top]
    return {"peak_gib": round(peak / 2**30, 3),
            "owners": [(round(v[0] / 2**30, 3), k, v[1]) for k, v in ranked]}


def report(trace, sampler: StackSampler, steps: list[list], warmup: int) -> dict:
    rows = []
    for i, wall in enumerate(trace.walls):
        ks = steps[i] if i < len(steps) else []
        busy = sum(k[2] for k in ks) / 1e3
        changed = {k: v for k, v in trace.stats[i].items()
                   if any(s in k for s in ("num_alloc_retries", "num_device_alloc", "num_device_free",
                                          "segment.all.allocated", "num_host_alloc", "num_host_free",
                                          "host_alloc_time.total", "dynamo.stats", "dynamo.recompiles",
                                          "num_sync_all_streams", "num_ooms"))}
        rows.append({"step": i, "wall_ms": round(wall * 1e3, 1), "kernel_ms": round(busy, 1),
                     "kernels": len(ks), "gaps_ms": [(round(g, 1), a, b) for g, a, b in gaps(ks)],
                     "changed": changed})
        print(json.dumps(rows[-1]), flush=True)
    timed = list(range(warmup, len(rows)))
    slow = max(timed, key=lambda i: rows[i]["wall_ms"])
    median = sorted(timed, key=lambda i: rows[i]["wall_ms"])[len(timed) // 2]
    out = {"steps": rows, "slowest": slow, "median": median}
    for name, i in (("slowest", slow), ("median", median)):
        samples = sampler.samples.get(i, collections.Counter())
        out[f"{name}_stacks"] = [(n, s) for s, n in samples.most_common(12)]
        by_kernel = collections.Counter()
        for k in steps[i] if i < len(steps) else []:
            by_kernel[k[0][:90]] += k[2] / 1e3
        out[f"{name}_kernels_ms"] = [(k, round(v, 1)) for k, v in by_kernel.most_common(12)]
    for name in ("slowest", "median"):
        print(f"--- {name} step {out[name]}: {rows[out[name]]['wall_ms']} ms wall, {rows[out[name]]['kernel_ms']} ms "
              "kernels", flush=True)
        for n, s in out[f"{name}_stacks"]:
            print(f"  {n:5d} x 5 ms  {s[:230]}")
        for k, v in out[f"{name}_kernels_ms"][:8]:
            print(f"  {v:8.1f} ms  {k}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="booktune", choices=["booktune", "unsloth-concat"])
    ap.add_argument("--shape", default="llama-8b")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch", type=int, default=4, help="rows of --seq tokens a step")
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--targets", type=lambda v: v.split(","), default=None,
                    help="comma-separated LoRA target modules (default: all seven projections)")
    ap.add_argument("--offload-embeddings", action="store_true", help="booktune run: input embedding in CPU memory")
    ap.add_argument("--memory", action="store_true",
                    help="also record every allocation from the model's load on and report what was live at the peak")
    ap.add_argument("--models", type=Path, default=Path("/tmp/bench-models"))
    ap.add_argument("--out", type=Path, default=Path("step_trace.json"))
    a = ap.parse_args()
    import torch
    import train_throughput as tt
    from bench_models import build_model
    from torch.profiler import ProfilerActivity, profile

    model_dir = str(build_model(a.shape, a.models))
    if a.memory:
        torch.cuda.memory._record_memory_history(max_entries=4_000_000, stacks="python")
    spec = {"shape": a.shape, "run": a.run, "model_dir": model_dir, "seq": a.seq,
            "steps": a.steps, "warmup": a.warmup, "batch": a.batch, "lora_r": a.lora_r, "data": "seed",
            "targets": a.targets}
    trainer = (tt.run_booktune(spec, "auto", offload_embeddings=a.offload_embeddings) if a.run == "booktune"
               else tt.unsloth_trainer(spec, concat=True))[0]
    sampler = StackSampler()
    trace = tracer_callback(sampler)
    trainer.add_callback(trace)
    sampler.start()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        trainer.train()
    sampler.running = False
    torch.cuda.synchronize()
    out = report(trace, sampler, kernels_by_step(prof), a.warmup)
    if a.memory:
        out["memory"] = peak_owners(torch.cuda.memory._snapshot())
        torch.cuda.memory._record_memory_history(enabled=None)
        print(f"--- allocated at the peak: {out['memory']['peak_gib']} GiB "
              f"(max_memory_allocated {torch.cuda.max_memory_allocated() / 2**30:.3f} GiB)")
        for gib, key, n in out["memory"]["owners"]:
            print(f"  {gib:7.3f} GiB {n:6d} blocks  {key[:200]}")
    a.out.write_text(json.dumps(out | {"run": a.run, "median_wall_ms": statistics.median(trace.walls)}, indent=1))


if __name__ == "__main__":
    main()
