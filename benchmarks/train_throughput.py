"""QLoRA training throughput and peak memory: plain TRL + PEFT + bitsandbytes, Unsloth, and booktune's default.

Random models of real shapes are built locally (no Hub), data is shaped like booktune's (550-1100-token examples,
a masked prompt, max_seq_length 2048), and each run happens in its own process so that Unsloth's patches and
memory peaks do not leak between runs. One JSON row per run goes to stdout and to --out.

    python benchmarks/train_throughput.py --shapes llama-1b llama-8b --runs plain unsloth booktune booktune-hf \
        --models /tmp/bench-models --out results.jsonl

Runs:
  plain        transformers + PEFT + bitsandbytes as TRL's SFTTrainer sets them up (padded batches, SDPA)
  unsloth      Unsloth as its notebooks set it up (padded batches, use_gradient_checkpointing="unsloth", adamw_8bit)
  booktune     booktune's default: --backend auto (Unsloth when installed) with isolated packing
  booktune-hf  booktune with --backend hf: PEFT + bitsandbytes, packed rows through booktune's varlen attention
  booktune-hf-liger     the same with Liger's kernels (booktune's --liger auto when liger-kernel is installed)
  booktune-kept         booktune's default with --no-offload-activations: Unsloth keeps its checkpoints on the GPU
  booktune-varlen       booktune's default with Unsloth's packed attention held to its varlen call (Unsloth
                        otherwise chooses per row between that and one SDPA call per run of equal-length segments)
  booktune-bucketed     booktune's default with --no-packing: length-bucketed padded batches (GPT-OSS's only choice
                        before booktune masked Unsloth's flex attention to each example)
  booktune-embeddings-offloaded  booktune's default with --offload-embeddings (input embedding in CPU memory)
  booktune-segments     booktune's default without the varlen kernel booktune lends Unsloth on torch < 2.12
                        (Unsloth's own path there: one SDPA call per run of equal-length segments)
  unsloth-concat        Unsloth on rows concatenated to max_seq_length with NO isolation (every token attends across
                        examples): the speed anchor isolated packing is measured against
Numbers: non-padding tokens/s over the timed steps, seconds/step, peak allocated/reserved over the timed steps and
over the load and warm-up steps before them, model FLOPs utilisation = 6 * active params * tokens/s / the GPU's
bf16 matmul peak (measured at start), and load time (model + LoRA ready).
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
if (HERE.parent / "src" / "booktune").is_dir():  # a checkout; an installed booktune works too
    sys.path.insert(0, str(HERE.parent / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
GIB = 2**30


def measure_peak_tflops() -> float:
    """bf16 matmul rate on random 8192^3 products (median of 10 after warm-up)."""
    import torch

    a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * 8192**3 / sorted(times)[5] / 1e12


class Counting:
    """Wraps a collator and records the non-padding tokens of every batch, in order."""

    def __init__(self, collate):
        self.collate, self.tokens, self.widths = collate, [], []

    def __call__(self, rows):
        self.tokens.append(sum(len(r["input_ids"]) for r in rows))
        batch = self.collate(rows)
        self.widths.append(list(batch["input_ids"].shape))
        return batch


def meter_callback(spec: dict, counter: Counting):
    import torch
    from transformers import TrainerCallback

    class Meter(TrainerCallback):
        def __init__(self):
            self.marks: list[float] = []
            self.first_step = None
            self.warmup_peak = (0.0, 0.0)  # allocated, reserved (GiB) over the load and the warm-up steps

        def on_step_begin(self, args, state, control, **kw):
            torch.cuda.synchronize()
            if state.global_step == spec["warmup"]:
                self.warmup_peak = (torch.cuda.max_memory_allocated() / GIB, torch.cuda.max_memory_reserved() / GIB)
                torch.cuda.reset_peak_memory_stats()
                self.marks.append(time.perf_counter())
            if state.global_step == 0:
                self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            torch.cuda.synchronize()
            if state.global_step == 1:
                self.first_step = time.perf_counter() - self.t0
            if state.global_step > spec["warmup"]:
                self.marks.append(time.perf_counter())

    return Meter()


def rows_for(spec: dict, vocab: int) -> list[dict]:
    from bench_models import make_rows

    n = (spec["warmup"] + spec["steps"] + 2) * spec["batch"] * 4
    if spec["data"] == "full":  # every example exactly max_seq_length tokens (the GPT-OSS memory setting)
        return make_rows(n, vocab, lo=spec["seq"], hi=spec["seq"], seed=1)
    return make_rows(n, vocab, lo=550, hi=1100, seed=1)


def sft_config(spec: dict, **extra):
    from trl import SFTConfig

    base = dict(output_dir=f"/tmp/bench-out/{spec['run']}", max_steps=spec["warmup"] + spec["steps"],
                per_device_train_batch_size=spec["batch"], gradient_accumulation_steps=1, learning_rate=2e-4,
                logging_steps=1000, save_strategy="no", report_to=[], bf16=True, gradient_checkpointing=True,
                max_length=spec["seq"], packing=False, dataset_kwargs={"skip_prepare_dataset": True},
                remove_unused_columns=False, disable_tqdm=True, seed=3407)
    return SFTConfig(**(base | extra))


def targets(spec: dict) -> list[str]:
    return spec.get("targets") or ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def run_plain(spec: dict) -> tuple:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    started = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(spec["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(
        spec["model_dir"], dtype=torch.bfloat16, device_map={"": 0},
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16))
    counter = Counting(DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id))
    lora = LoraConfig(r=spec["lora_r"], lora_alpha=2 * spec["lora_r"], lora_dropout=0.0, task_type="CAUSAL_LM",
                      target_modules="all-linear")
    trainer = SFTTrainer(model=model, args=sft_config(spec, optim=spec["optim"]),
                         train_dataset=Dataset.from_list(rows_for(spec, model.config.vocab_size)),
                         processing_class=tok, data_collator=counter, peft_config=lora)
    return trainer, counter, time.perf_counter() - started, "padded"


def unsloth_trainer(spec: dict, concat: bool) -> tuple:
    """Unsloth as its notebooks set it up: padded batches of the rows, or the rows concatenated (no isolation)."""
    import unsloth  # noqa: F401  (first: it patches transformers, TRL and PEFT)
    from datasets import Dataset
    from trl import SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
    from unsloth import FastLanguageModel

    started = time.perf_counter()
    model, tok = FastLanguageModel.from_pretrained(model_name=spec["model_dir"], max_seq_length=spec["seq"],
                                                   load_in_4bit=True, dtype=None, local_files_only=True)
    model = FastLanguageModel.get_peft_model(model, r=spec["lora_r"], lora_alpha=2 * spec["lora_r"], lora_dropout=0,
                                             bias="none", target_modules=targets(spec),
                                             use_gradient_checkpointing="unsloth", random_state=3407)
    counter = Counting(DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id or 0))
    rows = rows_for(spec, model.config.vocab_size)
    rows = concatenated(rows, spec["seq"]) if concat else rows
    trainer = SFTTrainer(model=model, processing_class=tok, data_collator=counter,
                         train_dataset=Dataset.from_list(rows),
                         args=sft_config(spec, optim="adamw_8bit", padding_free=False))
    return trainer, counter, time.perf_counter() - started, (
        "unsloth: rows concatenated, no isolation" if concat else "padded")


def concatenated(rows: list[dict], seq: int) -> list[dict]:
    """Examples joined end to end and cut into rows of exactly `seq` tokens: no isolation, no padding."""
    ids = [t for r in rows for t in r["input_ids"]]
    labels = [t for r in rows for t in r["labels"]]
    return [{"input_ids": ids[i:i + seq], "labels": labels[i:i + seq]} for i in range(0, len(ids) - seq + 1, seq)]


def run_booktune_varlen(spec: dict) -> tuple:
    from unsloth.utils import attention_dispatch  # imports Unsloth first, as the backend would

    attention_dispatch._torch_varlen_beats_segments = lambda *args, **kwargs: True
    trainer, counter, load_s, batches = run_booktune(spec, "auto")
    return trainer, counter, load_s, batches + "; varlen flash forced"


def run_booktune(spec: dict, backend: str, liger: bool = False, device: str = "cuda:0",
                 offload: bool = True, packing: bool = True, offload_embeddings: bool = False) -> tuple:
    """booktune's trainer for `spec` (shape, rows, steps) on `device`, made by the recipe's build_trainer; also
    used by profile_step.py."""
    from booktune.training.backends import resolve

    chosen, _ = resolve(backend, device)  # first: imports Unsloth before transformers when chosen
    from transformers import AutoConfig, AutoTokenizer

    from booktune.config import TrainConfig
    from booktune.training.recipe import build_trainer, setup_lines

    started = time.perf_counter()
    t = TrainConfig(model=spec["model_dir"], backend=chosen.name, device=device, dtype="bf16", load_in_4bit=True,
                    gradient_checkpointing=True, offload_activations=offload, liger="on" if liger else "off",
                    batch_size=spec["batch"], max_seq_length=spec["seq"], lora_r=spec["lora_r"],
                    lora_alpha=2 * spec["lora_r"], learning_rate=2e-4, max_steps=spec["warmup"] + spec["steps"],
                    packing=packing, offload_embeddings=offload_embeddings, save_steps=100000, eval_steps=0, seed=42,
                    target_modules=spec.get("targets") or ["all-linear"])
    tok = AutoTokenizer.from_pretrained(spec["model_dir"])
    rows = rows_for(spec, AutoConfig.from_pretrained(spec["model_dir"]).vocab_size)
    setup = build_trainer(t, Path(f"/tmp/bench-out/{spec['run']}"), rows, [], tok, backend=chosen)
    counter = Counting(setup.trainer.data_collator)
    setup.trainer.data_collator = counter  # read when the dataloader is built, at train()
    return setup.trainer, counter, time.perf_counter() - started, "; ".join(setup_lines(setup))


def run_booktune_segments(spec: dict) -> tuple:
    from unsloth.utils import attention_dispatch

    trainer, counter, load_s, batches = run_booktune(spec, "auto")
    attention_dispatch._TORCH_VARLEN_ATTN = None  # undo lend_varlen_kernel: Unsloth's own choice on this torch
    return trainer, counter, load_s, batches + "; Unsloth's attention without booktune's varlen kernel"


def child(spec: dict) -> dict:
    import torch

    runner = {"plain": run_plain, "unsloth": lambda s: unsloth_trainer(s, concat=False),
              "booktune": lambda s: run_booktune(s, "auto"),
              "booktune-hf": lambda s: run_booktune(s, "hf"),
              "booktune-hf-liger": lambda s: run_booktune(s, "hf", liger=True),
              "booktune-kept": lambda s: run_booktune(s, "auto", offload=False),
              "booktune-bucketed": lambda s: run_booktune(s, "auto", packing=False),
              "booktune-embeddings-offloaded": lambda s: run_booktune(s, "auto", offload_embeddings=True),
              "booktune-varlen": run_booktune_varlen,
              "booktune-segments": run_booktune_segments,
              "unsloth-concat": lambda s: unsloth_trainer(s, concat=True)}[spec["run"]]
    trainer, counter, load_s, batches = runner(spec)
    load_peak = torch.cuda.max_memory_allocated() / GIB
    meter = meter_callback(spec, counter)
    trainer.add_callback(meter)
    trainer.train()
    elapsed = meter.marks[-1] - meter.marks[0]
    tokens = sum(counter.tokens[spec["warmup"]:spec["warmup"] + spec["steps"]])
    tok_s = tokens / elapsed
    steps = [round(b - a, 3) for a, b in zip(meter.marks, meter.marks[1:])]
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return {"shape": spec["shape"], "run": spec["run"], "batches": batches, "batch": spec["batch"],
            "seq": spec["seq"], "lora_r": spec["lora_r"], "trainable": trainable,
            "tokens_per_s": round(tok_s), "s_per_step": round(elapsed / spec["steps"], 3),
            "tokens_per_step": round(tokens / spec["steps"]),
            "step_s": steps, "step_tokens": counter.tokens[spec["warmup"]:spec["warmup"] + spec["steps"]],
            "step_widths": counter.widths[spec["warmup"]:spec["warmup"] + spec["steps"]],
            "dynamo": {k: dict(v) for k, v in dynamo_counters().items() if k in ("stats", "recompiles")},
            # The first process of a call compiles (Unsloth's block regions, Triton autotuning) into the disk caches
            # that later ones reuse, and it can spill into its first timed steps: the median step is the steady rate.
            "tokens_per_s_median_step": round(tokens / spec["steps"] / sorted(steps)[len(steps) // 2]),
            "peak_alloc_gib": round(torch.cuda.max_memory_allocated() / GIB, 2),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / GIB, 2),
            "load_peak_alloc_gib": round(load_peak, 2), "load_s": round(load_s, 1),
            # the first steps (compiles, autotuning, Unsloth's one-off probes) can peak above the timed steps
            "warmup_peak_alloc_gib": round(meter.warmup_peak[0], 2),
            "warmup_peak_reserved_gib": round(meter.warmup_peak[1], 2),
            "first_step_s": round(meter.first_step or 0, 1),
            "losses": [round(e["loss"], 4) for e in trainer.state.log_history if "loss" in e][:3],
            "mfu": round(6 * spec["active_params"] * tok_s / (spec["peak_tflops"] * 1e12), 3)}


def dynamo_counters() -> dict:
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    return counters


def run_child(spec: dict, timeout: int) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"shape": spec["shape"], "run": spec["run"], "error": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"shape": spec["shape"], "run": spec["run"], "error": (proc.stderr or proc.stdout)[-1500:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=["llama-1b", "llama-8b"])
    ap.add_argument("--runs", nargs="+", default=["plain", "unsloth", "booktune", "booktune-hf"])
    ap.add_argument("--models", type=Path, default=Path("/tmp/bench-models"))
    ap.add_argument("--out", type=Path, default=Path("train_throughput.jsonl"))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--gpt-oss-batch", type=int, default=1, help="rows a step for GPT-OSS shapes")
    ap.add_argument("--data", choices=["auto", "seed", "full"], default="auto",
                    help="seed: 550-1100-token examples; full: every example max_seq_length tokens; auto: full for "
                         "GPT-OSS shapes (the memory setting), seed otherwise")
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--targets", type=lambda v: v.split(","), default=None,
                    help="comma-separated LoRA target modules of every run (default: all seven projections; on "
                         "GPT-OSS Unsloth maps the MLP names onto the experts)")
    ap.add_argument("--optim", default="adamw_torch_fused", help="optimizer of the plain run (TRL's default)")
    ap.add_argument("--timeout", type=int, default=400, help="seconds per run")
    ap.add_argument("--prewarm", action="store_true",
                    help="run every run once untimed, on the same rows and steps, before its timed run: Triton "
                         "compiles a kernel again for each new specialization of its integer arguments (a count "
                         "divisible by 16 or not), so only a pass over the same steps fills the disk caches that "
                         "the timed run then reads")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        spec = json.loads(a.child)
        try:
            print("RESULT " + json.dumps(child(spec)), flush=True)
        except Exception:
            print("RESULT " + json.dumps({"shape": spec["shape"], "run": spec["run"],
                                          "error": traceback.format_exc()[-1500:]}), flush=True)
        return
    drive(a)


def drive(a: argparse.Namespace) -> None:
    import torch
    from bench_models import active_params, build_config, build_model

    peak = measure_peak_tflops()
    print(json.dumps({"device": torch.cuda.get_device_name(0), "bf16_matmul_tflops": round(peak),
                      "torch": torch.__version__}), flush=True)
    torch.cuda.empty_cache()
    for shape in a.shapes:
        started = time.perf_counter()
        path = build_model(shape, a.models)
        torch.cuda.empty_cache()
        print(json.dumps({"shape": shape, "built_s": round(time.perf_counter() - started, 1)}), flush=True)
        gpt_oss = shape.startswith("gpt-oss")
        for run in a.runs:
            spec = {"shape": shape, "run": run, "model_dir": str(path), "seq": a.seq, "steps": a.steps,
                    "warmup": a.warmup, "batch": a.gpt_oss_batch if gpt_oss else a.batch,
                    "lora_r": 8 if gpt_oss else a.lora_r, "optim": "adamw_8bit" if gpt_oss else a.optim,
                    "data": a.data if a.data != "auto" else "full" if gpt_oss else "seed",
                    "peak_tflops": peak, "active_params": active_params(build_config(shape)), "targets": a.targets}
            if a.prewarm:
                warm = run_child(spec, a.timeout)
                print(json.dumps({"prewarm": run, "tokens_per_s": warm.get("tokens_per_s"),
                                  "step_s": warm.get("step_s"), "error": warm.get("error")}), flush=True)
            row = run_child(spec, a.timeout)
            print(json.dumps(row), flush=True)
            with a.out.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
