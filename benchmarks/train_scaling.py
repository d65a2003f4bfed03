"""Multi-GPU scaling of booktune's training: DDP speed-up on the 8B shape, FSDP-QLoRA on a model too big for one card.

Runs on any machine with 2+ CUDA GPUs (no Hub: random models of real shapes are built locally by bench_models.py).
Each measurement is one `torch.distributed.run` of this file as a worker, so DDP/FSDP run exactly as under
`booktune train --gpus N`: the worker builds its trainer with the recipe's own `build_trainer` (backend, scale-out,
packing, balance) on seed-shaped rows (550-1100 tokens, masked prompt).

    python benchmarks/train_scaling.py --models /tmp/bench-models --out scaling.jsonl          # both parts
    python benchmarks/train_scaling.py --part ddp --gpus 1 2                                  # DDP only
    python benchmarks/train_scaling.py --part fsdp --cap-gib 24                                # FSDP only
    python benchmarks/train_scaling.py --part ddp --runs hf-liger hf-liger-bal --prewarm       # rows dealt by tokens

DDP: llama-8b, QLoRA r16, per-GPU batch 4 x 2048 packed, on 1 and on 2 GPUs: non-padding tok/s over all ranks,
speed-up, per-GPU peak allocated/reserved, and booktune plan's per-GPU prediction.
FSDP: every process capped at --cap-gib with torch.cuda.set_per_process_memory_fraction (two 4090s stand-in); the
shape is the largest of FSDP_SHAPES that plan says one capped card cannot train and two can; it is trained on two
capped cards, then tried on one at --single-batch (default 1, the least memory a run can take; on 2 x H100 the 32B
shape fit one capped card at batch 1 and ran out of memory at batch 4, the batch two cards trained).
A random 32B checkpoint is ~65 GB of bf16 on disk.
Set NCCL_NVLS_ENABLE=0 etc. in the environment as the machine needs; they are passed on to every process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if (HERE.parent / "src" / "booktune").is_dir():
    sys.path.insert(0, str(HERE.parent / "src"))
for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(key, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from train_throughput import Counting  # noqa: E402  (same token counter as the 1-GPU benchmark)

GIB = 2**30
# Real shapes with Llama layers (Qwen2.5's q/k/v biases left out): 32B and 72B dims.
FSDP_SHAPES = {
    "qwen2.5-32b": dict(kind="llama", hidden_size=5120, num_hidden_layers=64, intermediate_size=27648,
                        num_attention_heads=40, num_key_value_heads=8, vocab_size=152064, tie_word_embeddings=False,
                        max_position_embeddings=32768, rope_theta=1000000.0),
    "qwen2.5-72b": dict(kind="llama", hidden_size=8192, num_hidden_layers=80, intermediate_size=29568,
                        num_attention_heads=64, num_key_value_heads=8, vocab_size=152064, tie_word_embeddings=False,
                        max_position_embeddings=32768, rope_theta=1000000.0),
}


def settings(spec: dict) -> object:
    """The TrainConfig a worker trains with: booktune's defaults, the benchmark's shape, batch and steps."""
    from booktune.config import TrainConfig

    return TrainConfig(model=spec["model_dir"], backend=spec["backend"], distributed=spec["strategy"],
                       batch_size=spec["batch"], max_seq_length=spec["seq"], global_batch_size=spec.get("global_batch"),
                       lora_r=spec["lora_r"], lora_alpha=2 * spec["lora_r"], learning_rate=spec.get("lr", 2e-4),
                       max_steps=spec["warmup"] + spec["steps"], logging_steps=1 if spec.get("log_losses") else 1000,
                       save_steps=100000, eval_steps=0, seed=42, dtype="bf16", liger="on" if spec.get("liger") else
                       "off", offload_activations=spec.get("offload"), balance_tokens=bool(spec.get("balance")))


def plan_gib(spec: dict, gpus: int, strategy: str, part: str = "total") -> float:
    """booktune plan's per-GPU prediction: 'total' (what the card must hold) or 'allocated' (peak allocated)."""
    from bench_models import build_config

    from booktune.training.backends import REGISTRY
    from booktune.training.memory import Shape, predict
    from booktune.training.memory_split import per_gpu

    train = settings(spec).model_copy(update={"offload_activations": spec.get("offload", True)})
    single = predict(Shape.from_config(build_config(spec["shape"])), train, REGISTRY[spec["backend"]])
    return getattr(per_gpu(single, gpus, strategy), part) / GIB


def build_trainer(spec: dict, counter_box: list) -> tuple:
    """booktune's trainer, made by the recipe's build_trainer on benchmark rows instead of a DATA folder."""
    from booktune.devices import pick_device, world
    from booktune.training.backends import resolve
    from booktune.training.scaleout import early_strategy

    t = settings(spec)
    backend, _ = resolve(t.backend, pick_device(None), early_strategy(t.distributed))  # first: Unsloth's patches
    from bench_models import make_pattern_rows, make_rows
    from transformers import AutoConfig, AutoTokenizer

    from booktune.training.recipe import build_trainer as recipe_trainer

    tok = AutoTokenizer.from_pretrained(spec["model_dir"])
    # The same rows whatever the process count when a global batch is set (the equality check).
    per_step = spec.get("global_batch") or spec["batch"] * world().size
    n = (spec["warmup"] + spec["steps"] + 2) * per_step * 4
    rows = (make_pattern_rows if spec.get("data") == "pattern" else make_rows)(
        n, AutoConfig.from_pretrained(spec["model_dir"]).vocab_size, lo=550, hi=1100, seed=1)
    setup = recipe_trainer(t.model_copy(update={"backend": backend.name}), Path(f"/tmp/bench-scaling/{spec['name']}"),
                           rows, [], tok, backend=backend)
    counter = Counting(setup.trainer.data_collator)
    setup.trainer.data_collator = counter  # read when the dataloader is built, at train()
    counter_box.append(counter)
    print("; ".join(n for n in setup.notes if n), flush=True)
    return setup.trainer, setup.scale, backend.name


def timer(spec: dict):
    import torch
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        marks: list[float] = []
        events: list = []

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == spec["warmup"]:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                self.marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kw):
            if state.global_step > spec["warmup"]:  # events, not synchronize: the CPU may run ahead as usual
                self.events.append(torch.cuda.Event(enable_timing=True))
                self.events[-1].record()
            if state.global_step == spec["warmup"] + spec["steps"]:
                torch.cuda.synchronize()
                self.marks.append(time.perf_counter())

        def step_seconds(self) -> list[float]:
            return [round(a.elapsed_time(b) / 1e3, 3) for a, b in zip(self.events, self.events[1:])]

    return Timer()


def save_lora(spec: dict, named: dict, processes: int) -> str | None:
    """Rank 0 writes the LoRA tensors (fp32) for --part equal; the path, or None on other ranks."""
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    from safetensors.torch import save_file

    path = str(Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / f"{spec['name']}-{processes}gpu.safetensors")
    save_file({n: t.float().cpu().contiguous() for n, t in named.items()}, path)
    return path


def worker(spec: dict) -> None:
    """One rank under torch.distributed.run: cap memory, train, gather tokens and peaks, rank 0 prints RESULT."""
    import torch
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    if spec.get("cap_gib"):
        total = torch.cuda.get_device_properties(local).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, spec["cap_gib"] * GIB / total), local)
    box: list = []
    trainer, scale, backend = build_trainer(spec, box)
    clock = timer(spec)
    trainer.add_callback(clock)
    if spec.get("profile"):  # each rank's GPU kernels over the timed steps, NCCL apart (profile_step.py)
        from argparse import Namespace

        from profile_step import profiler_callback

        out = Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / f"{spec['name']}-{scale.processes}gpu-rank{local}.txt"
        trainer.add_callback(profiler_callback(Namespace(warmup=spec["warmup"], steps=spec["steps"], out=out)))
    trainer.train()
    w, accum = spec["warmup"] * scale.grad_accum, scale.grad_accum
    named = {n: p.detach() for n, p in trainer.model.named_parameters() if "lora_" in n}
    lora = [] if scale.strategy == "fsdp" else [t.float() for t in named.values()]  # FSDP: DTensor shards
    adapter = save_lora(spec, named, scale.processes) if spec.get("save_adapter") else None
    mine = torch.tensor([sum(box[0].tokens[w:w + spec["steps"] * accum]),  # batches of the timed steps
                         torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved(),
                         sum(float(t.sum()) for t in lora), sum(float(t.abs().sum()) for t in lora)],
                        dtype=torch.float64, device="cuda")
    per_batch = torch.tensor(box[0].tokens[w:w + spec["steps"] * accum], dtype=torch.float64, device="cuda")
    rows = [torch.zeros_like(mine) for _ in range(scale.processes)]
    batches = [torch.zeros_like(per_batch) for _ in range(scale.processes)]
    if dist.is_initialized():
        dist.all_gather(rows, mine)
        dist.all_gather(batches, per_batch)
    else:
        rows, batches = [mine], [per_batch]
    if int(os.environ.get("RANK", "0")) == 0:
        planned = {"backend": backend, "offload": scale.offload_activations}
        seconds = clock.marks[-1] - clock.marks[0]
        tokens = sum(float(r[0]) for r in rows)
        print("RESULT " + json.dumps({
            "name": spec["name"], "shape": spec["shape"], "gpus": scale.processes, "strategy": scale.strategy,
            "backend": backend, "device": torch.cuda.get_device_name(local), "cap_gib": spec.get("cap_gib"),
            "batch_per_gpu": spec["batch"], "seq": spec["seq"], "tokens_per_s": round(tokens / seconds),
            "s_per_step": round(seconds / spec["steps"], 3),
            "tokens_per_rank": [int(r[0]) for r in rows], "adapter": adapter, "grad_accum": scale.grad_accum,
            "step_s": clock.step_seconds(),  # from the 2nd timed step on
            "batch_tokens": [[int(x) for x in b.tolist()] for b in batches],  # per rank, each timed micro-batch
            "lora_checksums": [[float(r[3]), float(r[4])] for r in rows],  # equal on every rank under DDP
            "losses": [round(e["loss"], 5) for e in trainer.state.log_history if "loss" in e],
            "peak_alloc_gib": [round(float(r[1]) / GIB, 2) for r in rows],
            "peak_reserved_gib": [round(float(r[2]) / GIB, 2) for r in rows],
            "offload_activations": scale.offload_activations,
            "plan_alloc_gib": round(plan_gib(spec | planned, scale.processes, scale.strategy, "allocated"), 2),
            "plan_total_gib": round(plan_gib(spec | planned, scale.processes, scale.strategy), 2)}),
              flush=True)


def start(spec: dict, gpus: int, first: int = 0) -> tuple:
    """Start the worker on `gpus` processes, on cards first..first+gpus-1."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", __file__,
           "--worker", json.dumps(spec)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(str(first + i) for i in range(gpus)),
           "OMP_NUM_THREADS": "4"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return proc, time.perf_counter()


def finish(started: tuple, spec: dict, gpus: int, timeout: int, tag: str = "") -> dict:
    """Wait for a started launch: its RESULT row, or the error's tail (the whole log goes to BENCH_LOG_DIR)."""
    proc, t0 = started
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"name": spec["name"], "gpus": gpus, "error": f"timed out after {timeout} s"}
    log = Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / f"{spec['name']}-{gpus}gpu{tag}.log"
    log.write_text(out + "\n---- stderr ----\n" + err)
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:]) | {"wall_s": round(time.perf_counter() - t0)}
    oom = "OutOfMemoryError" in err or "CUDA out of memory" in err
    return {"name": spec["name"], "gpus": gpus, "error": "out of memory" if oom else (err or out)[-1500:]}


def launch(spec: dict, gpus: int, timeout: int) -> dict:
    return finish(start(spec, gpus), spec, gpus, timeout)


def concurrent(spec: dict, cards: int, timeout: int) -> list[dict]:
    """One independent 1-GPU run on each of `cards` cards at once: what sharing the host costs without DDP."""
    started = [start(spec, 1, first=i) for i in range(cards)]
    return [finish(s, spec | {"name": spec["name"] + "-alone-on-card"}, 1, timeout, tag=f"-card{i}") | {"card": i}
            for i, s in enumerate(started)]


def compare(one: dict, many: dict) -> dict:
    """Loss curves and LoRA weights of a 1-process run against an N-process run with the same global batch."""
    from safetensors.torch import load_file

    if "error" in one or "error" in many:
        return {"name": one["name"], "error": "a run failed"}
    a, b = (load_file(r["adapter"]) for r in (one, many))
    diff = sum(float((a[k] - b[k]).float().norm() ** 2) for k in a) ** 0.5
    norm = sum(float(a[k].float().norm() ** 2) for k in a) ** 0.5
    moved = sum(float(a[k].float().norm() ** 2) for k in a if "lora_B" in k) ** 0.5  # B starts at zero
    losses = [abs(x - y) for x, y in zip(one["losses"], many["losses"])]
    return {"name": one["name"], "backend": one["backend"], "gpus": [one["gpus"], many["gpus"]],
            "losses_1": one["losses"], "losses_n": many["losses"], "max_loss_diff": round(max(losses), 5),
            "adapter_rel_diff": round(diff / norm, 6), "lora_B_norm": round(moved, 4),
            "lora_B_rel_diff": round(sum(float((a[k] - b[k]).float().norm() ** 2) for k in a if "lora_B" in k) ** 0.5
                                     / moved, 6),
            "ranks_agree": len({tuple(c) for c in many["lora_checksums"]}) == 1}


def pick_fsdp_shape(spec: dict, cap: float) -> str | None:
    """The largest FSDP_SHAPES entry that plan says one capped card cannot train and two can."""
    fitting = [name for name in FSDP_SHAPES
               if plan_gib(spec | {"shape": name}, 1, "single") > cap >= plan_gib(spec | {"shape": name}, 2, "fsdp")]
    return fitting[-1] if fitting else None


# auto: booktune's default (Unsloth when installed; activations offloaded on one GPU, kept under DDP where they fit)
RUNS = {"auto": {"backend": "auto"}, "auto-kept": {"backend": "auto", "offload": False},
        "auto-offload": {"backend": "auto", "offload": True},
        "hf": {"backend": "hf"}, "hf-liger": {"backend": "hf", "liger": True}}
RUNS |= {f"{name}-bal": spec | {"balance": True} for name, spec in RUNS.items()}  # rows dealt by token count


def emit(a: argparse.Namespace, row: dict) -> None:
    print(json.dumps(row), flush=True)
    with a.out.open("a") as f:
        f.write(json.dumps(row) + "\n")


def drive(a: argparse.Namespace) -> None:
    import bench_models

    bench_models.SHAPES.update(FSDP_SHAPES)
    base = {"batch": a.batch, "seq": a.seq, "lora_r": 16, "steps": a.steps, "warmup": a.warmup,
            "backend": a.backend, "profile": a.profile}
    if a.part in ("ddp", "both"):
        model_dir = str(bench_models.build_model("llama-8b", a.models))
        runs = a.runs or [a.backend]
        for i, run in enumerate(runs):
            spec = base | RUNS[run] | {"shape": "llama-8b", "strategy": "ddp", "name": f"ddp-llama-8b-{run}",
                                       "model_dir": model_dir}
            if a.prewarm and i == 0:  # the call's first launch fills the compile caches: not a timing
                short = {"name": spec["name"] + "-prewarm", "steps": 2, "warmup": 1, "profile": False}
                emit(a, launch(spec | short, max(a.gpus), a.timeout) | {"prewarm": True})
            for n in a.gpus:
                if n == 1 and run.endswith("-bal") and run.removesuffix("-bal") in runs:
                    continue  # one process deals nothing: its run without -bal is the same
                emit(a, launch(spec, n, a.timeout))
            if a.concurrent:
                for row in concurrent(spec, max(a.gpus), a.timeout):
                    emit(a, row)
    if a.part == "equal":
        drive_equal(a, base)
    if a.part in ("fsdp", "both"):
        fsdp = base | {"backend": "hf", "strategy": "fsdp", "batch": a.fsdp_batch, "cap_gib": a.cap_gib}
        shape = a.fsdp_shape or pick_fsdp_shape(fsdp, a.cap_gib)
        if shape is None:
            emit(a, {"name": "fsdp", "error": f"no shape in {list(FSDP_SHAPES)} fits 2 x {a.cap_gib} GiB"})
            return
        spec = fsdp | {"shape": shape, "name": f"fsdp-{shape}",
                       "model_dir": str(bench_models.build_model(shape, a.models))}
        # Two capped cards first (the run that must work), then one at --single-batch.
        emit(a, launch(spec, 2, a.timeout))
        if a.single_batch:
            emit(a, launch(spec | {"batch": a.single_batch}, 1, a.timeout))


def drive_equal(a: argparse.Namespace, base: dict) -> None:
    """Does a backend train the same under DDP? One process with gradient accumulation against N processes, the
    same global batch, seed and rows (learnable ones, so the loss moves): losses per step and the LoRA weights."""
    import bench_models

    model_dir = str(bench_models.build_model(a.equal_shape, a.models))
    n = max(a.gpus)
    for run in a.runs or ["auto", "hf"]:
        spec = base | RUNS[run] | {"shape": a.equal_shape, "strategy": "ddp", "name": f"equal-{a.equal_shape}-{run}",
                                   "model_dir": model_dir, "data": "pattern", "lr": a.equal_lr, "warmup": 0,
                                   "global_batch": a.batch * n, "log_losses": True, "save_adapter": True}
        one, many = launch(spec, 1, a.timeout), launch(spec, n, a.timeout)
        for row in (one, many, compare(one, many)):
            emit(a, row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("ddp", "fsdp", "both", "equal"), default="both",
                    help="equal: 1 process with accumulation against N processes, same global batch")
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 2], help="process counts for the DDP part")
    ap.add_argument("--models", type=Path, default=Path("/tmp/bench-models"))
    ap.add_argument("--out", type=Path, default=Path("train_scaling.jsonl"))
    ap.add_argument("--backend", default="auto", help="DDP part: auto (Unsloth when installed) or hf")
    ap.add_argument("--runs", nargs="+", choices=sorted(RUNS),
                    help="DDP / equal parts: booktune set-ups to run (default: --backend; equal: auto hf)")
    ap.add_argument("--concurrent", action="store_true",
                    help="DDP part: also run one independent 1-GPU training on each card at once")
    ap.add_argument("--equal-shape", default="llama-1b")
    ap.add_argument("--equal-lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=4, help="per-GPU batch, DDP part")
    ap.add_argument("--fsdp-batch", type=int, default=4, help="per-GPU batch, FSDP part")
    ap.add_argument("--single-batch", type=int, default=1,
                    help="batch of the FSDP part's one-card attempt (0: skip it)")
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--cap-gib", type=float, default=24.0)
    ap.add_argument("--fsdp-shape", choices=sorted(FSDP_SHAPES), help="default: picked by plan for --cap-gib")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per launch")
    ap.add_argument("--profile", action="store_true",
                    help="DDP part: torch.profiler over the timed steps, one kernel table per rank in BENCH_LOG_DIR "
                         "(the timings then include the profiler)")
    ap.add_argument("--prewarm", action="store_true",
                    help="DDP part: a short untimed launch first, so no timed run pays the call's compile")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        import bench_models

        bench_models.SHAPES.update(FSDP_SHAPES)
        try:
            worker(json.loads(a.worker))
        except Exception:
            if int(os.environ.get("RANK", "0")) == 0:
                traceback.print_exc()
            raise
        return
    drive(a)


if __name__ == "__main__":
    main()
