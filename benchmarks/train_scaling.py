"""Multi-GPU scaling of booktune's training: DDP speed-up on the 8B shape, FSDP-QLoRA on a model too big for one card.

Runs on any machine with 2+ CUDA GPUs (no Hub: random models of real shapes are built locally by bench_models.py).
Each measurement is one `torch.distributed.run` of this file as a worker, so DDP/FSDP run exactly as under
`booktune train --gpus N`: the worker builds the trainer from booktune's own pieces (backend, packing, sft_args and
train/distributed.py's DDP/FSDP settings) on seed-shaped rows (550-1100 tokens, masked prompt).

    python benchmarks/train_scaling.py --models /tmp/bench-models --out scaling.jsonl          # both parts
    python benchmarks/train_scaling.py --part ddp --gpus 1 2                                  # DDP only
    python benchmarks/train_scaling.py --part fsdp --cap-gib 24                                # FSDP only

DDP: llama-8b, QLoRA r16, per-GPU batch 4 x 2048 packed, on 1 and on 2 GPUs: non-padding tok/s over all ranks,
speed-up, per-GPU peak allocated/reserved, and booktune plan's per-GPU prediction.
FSDP: every process capped at --cap-gib with torch.cuda.set_per_process_memory_fraction (two 4090s stand-in); the
shape is the largest of FSDP_SHAPES that plan says one capped card cannot train and two can; it is trained on two
capped cards, then tried on one at --single-batch (default 1, the least memory a run can take; on 2 x H100 the 32B
shape fit one capped card at batch 1 and ran out of memory at batch 4, the batch two cards trained). A random 32B checkpoint is ~65 GB of bf16 on disk.
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


def plan_gib(spec: dict, gpus: int, strategy: str, part: str = "total") -> float:
    """booktune plan's per-GPU prediction: 'total' (what the card must hold) or 'allocated' (peak allocated)."""
    from bench_models import build_config

    from booktune.plan import Settings, Shape, predict
    from booktune.plan_distributed import per_gpu

    single = predict(Shape.from_config(build_config(spec["shape"])),
                     Settings(spec["batch"], spec["seq"], backend=spec["backend"], lora_r=spec["lora_r"]))
    return getattr(per_gpu(single, gpus, strategy), part) / GIB


def build_trainer(spec: dict, counter_box: list) -> tuple:
    """booktune's recipe, minus the DATA folder: backend, packing, DDP/FSDP settings, TRL's SFTTrainer."""
    from booktune.train.backends import LoraSettings, load_for_training, resolve_backend
    from booktune.train.distributed import backend_for, early_strategy, scale_out

    backend = resolve_backend(backend_for(spec["backend"], early_strategy(spec["strategy"]))[0], "cuda")
    from dataclasses import replace

    import torch
    from bench_models import make_rows
    from datasets import Dataset
    from transformers import AutoTokenizer

    from booktune.model import pick_device
    from booktune.train.packing import choose_batching, training_batches
    from booktune.train.recipe import Precision, sft_args
    from booktune.train.trainer import sft_trainer_class

    prec = Precision(pick_device(None), torch.bfloat16, True, True)
    plan_fields = {"model": spec["model_dir"], "batch_size": spec["batch"], "max_seq_length": spec["seq"],
                   "lora_r": spec["lora_r"], "load_in_4bit": True, "gradient_checkpointing": True, "backend": backend}
    scale = scale_out(spec["strategy"], device=prec.device, settings=plan_fields, global_batch_size=None,
                      batch_size=spec["batch"], grad_accum=1, backend=backend)
    tok = AutoTokenizer.from_pretrained(spec["model_dir"])
    lora = LoraSettings(spec["lora_r"], 2 * spec["lora_r"], 0.0, ["all-linear"], 42)
    model, peft_config = load_for_training(backend, spec["model_dir"],
                                           replace(prec, device=scale.load_device(prec.device)), lora,
                                           max_seq_length=spec["seq"], packing=True)
    model.config.use_cache = False
    batching = choose_batching(backend, model, True)
    n = (spec["warmup"] + spec["steps"] + 2) * spec["batch"] * 4 * scale.processes
    data, collate = training_batches(make_rows(n, model.config.vocab_size, lo=550, hi=1100, seed=1), batching,
                                     max_len=spec["seq"], pad_token_id=tok.pad_token_id)
    counter = Counting(collate)
    counter_box.append(counter)
    args = sft_args(Path(f"/tmp/bench-scaling/{spec['name']}"), prec, epochs=1,
                    max_steps=spec["warmup"] + spec["steps"], learning_rate=2e-4, warmup_ratio=0.03,
                    batch_size=spec["batch"], grad_accum=1, logging_steps=1000, save_steps=100000, save_total_limit=1,
                    seed=42, max_seq_length=spec["seq"],
                    extra=scale.trainer_args(True) | {"train_sampling_strategy": batching.sampling})
    return sft_trainer_class()(model=model, args=args, train_dataset=Dataset.from_list(data), processing_class=tok,
                               data_collator=counter, peft_config=peft_config,
                               callbacks=scale.callbacks()), scale, backend


def timer(spec: dict):
    import torch
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        marks: list[float] = []

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == spec["warmup"]:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                self.marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kw):
            if state.global_step == spec["warmup"] + spec["steps"]:
                torch.cuda.synchronize()
                self.marks.append(time.perf_counter())

    return Timer()


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
    trainer.train()
    w = spec["warmup"]
    mine = torch.tensor([sum(box[0].tokens[w:w + spec["steps"]]),  # one batch a step (grad_accum 1)
                         torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()], dtype=torch.float64,
                        device="cuda")
    rows = [torch.zeros_like(mine) for _ in range(scale.processes)]
    if dist.is_initialized():
        dist.all_gather(rows, mine)
    else:
        rows = [mine]
    if int(os.environ.get("RANK", "0")) == 0:
        seconds = clock.marks[-1] - clock.marks[0]
        tokens = sum(float(r[0]) for r in rows)
        print("RESULT " + json.dumps({
            "name": spec["name"], "shape": spec["shape"], "gpus": scale.processes, "strategy": scale.strategy,
            "backend": backend, "device": torch.cuda.get_device_name(local), "cap_gib": spec.get("cap_gib"),
            "batch_per_gpu": spec["batch"], "seq": spec["seq"], "tokens_per_s": round(tokens / seconds),
            "s_per_step": round(seconds / spec["steps"], 3),
            "peak_alloc_gib": [round(float(r[1]) / GIB, 2) for r in rows],
            "peak_reserved_gib": [round(float(r[2]) / GIB, 2) for r in rows],
            "plan_alloc_gib": round(plan_gib(spec | {"backend": backend}, scale.processes, scale.strategy,
                                             "allocated"), 2),
            "plan_total_gib": round(plan_gib(spec | {"backend": backend}, scale.processes, scale.strategy), 2)}),
              flush=True)


def launch(spec: dict, gpus: int, timeout: int) -> dict:
    """Run the worker on `gpus` processes; the RESULT row, or the error's tail."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", __file__,
           "--worker", json.dumps(spec)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(gpus)), "OMP_NUM_THREADS": "4"}
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"name": spec["name"], "gpus": gpus, "error": f"timed out after {timeout} s"}
    log = Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / f"{spec['name']}-{gpus}gpu.log"
    log.write_text(proc.stdout + "\n---- stderr ----\n" + proc.stderr)  # the whole story of a failed launch
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:]) | {"wall_s": round(time.perf_counter() - started)}
    tail = (proc.stderr or proc.stdout)[-1500:]
    oom = "OutOfMemoryError" in proc.stderr or "CUDA out of memory" in proc.stderr
    return {"name": spec["name"], "gpus": gpus, "error": "out of memory" if oom else tail}


def pick_fsdp_shape(spec: dict, cap: float) -> str | None:
    """The largest FSDP_SHAPES entry that plan says one capped card cannot train and two can."""
    fitting = [name for name in FSDP_SHAPES
               if plan_gib(spec | {"shape": name}, 1, "single") > cap >= plan_gib(spec | {"shape": name}, 2, "fsdp")]
    return fitting[-1] if fitting else None


def drive(a: argparse.Namespace) -> None:
    import bench_models

    bench_models.SHAPES.update(FSDP_SHAPES)
    base = {"batch": a.batch, "seq": a.seq, "lora_r": 16, "steps": a.steps, "warmup": a.warmup,
            "backend": a.backend}
    results = []
    if a.part in ("ddp", "both"):
        spec = base | {"shape": "llama-8b", "strategy": "ddp", "name": "ddp-llama-8b",
                       "model_dir": str(bench_models.build_model("llama-8b", a.models))}
        results += [launch(spec, n, a.timeout) for n in a.gpus]
    if a.part in ("fsdp", "both"):
        fsdp = base | {"backend": "hf", "strategy": "fsdp", "batch": a.fsdp_batch, "cap_gib": a.cap_gib}
        shape = a.fsdp_shape or pick_fsdp_shape(fsdp, a.cap_gib)
        if shape is None:
            results.append({"name": "fsdp", "error": f"no shape in {list(FSDP_SHAPES)} fits 2 x {a.cap_gib} GiB"})
        else:
            spec = fsdp | {"shape": shape, "name": f"fsdp-{shape}",
                           "model_dir": str(bench_models.build_model(shape, a.models))}
            # Two capped cards first (the run that must work), then one at --single-batch.
            results.append(launch(spec, 2, a.timeout))
            if a.single_batch:
                results.append(launch(spec | {"batch": a.single_batch}, 1, a.timeout))
    with a.out.open("a") as f:
        for row in results:
            print(json.dumps(row), flush=True)
            f.write(json.dumps(row) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("ddp", "fsdp", "both"), default="both")
    ap.add_argument("--gpus", type=int, nargs="+", default=[1, 2], help="process counts for the DDP part")
    ap.add_argument("--models", type=Path, default=Path("/tmp/bench-models"))
    ap.add_argument("--out", type=Path, default=Path("train_scaling.jsonl"))
    ap.add_argument("--backend", default="auto", help="DDP part: auto (Unsloth when installed) or hf")
    ap.add_argument("--batch", type=int, default=4, help="per-GPU batch, DDP part")
    ap.add_argument("--fsdp-batch", type=int, default=4, help="per-GPU batch, FSDP part")
    ap.add_argument("--single-batch", type=int, default=1, help="batch of the FSDP part's one-card attempt (0: skip it)")
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--cap-gib", type=float, default=24.0)
    ap.add_argument("--fsdp-shape", choices=sorted(FSDP_SHAPES), help="default: picked by plan for --cap-gib")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per launch")
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
