"""A CPU training step of the default model, two ways: with and without PEFT's float32 cast of every LoRA input,
with packed examples kept apart by a block-diagonal mask against booktune's per-example attention, or with the loss
over the whole row's logits against TRL's fused head.

Builds the demo's trainer with the recipe's own `build_trainer` (the default model, bf16 autocast, LoRA r16 on all
linear layers, packed rows with per-example isolation) on a prepared DATA folder, then times forward + backward
of its first --batches packed steps under the autocast the Trainer runs them in, switching between the variants
every step so that both meet the same load on a shared host. Prints one JSON row per variant (min and median
seconds a step, the median of its steps' ratios to the same steps of the first variant, losses of the first pass)
and writes them to --out.

    booktune prepare examples/books --out /tmp/demo-data        # or the demo's own outputs/demo/data
    python benchmarks/cpu_step.py --data /tmp/demo-data --rounds 8 --profile 12
    python benchmarks/cpu_step.py --data /tmp/demo-data --compare attention --rounds 8
    python benchmarks/cpu_step.py --data /tmp/demo-data --compare head --rounds 8

Variants, by --compare:
  casts      peft-casts: PEFT as it is, each LoRA input cast to float32 and autocast casting it back to bf16;
             as-is: booktune's trainer, LoRA inputs left in bf16 (training/trainer.py, `lora_inputs_as_is`)
  attention  block-mask: one SDPA call per layer over the row, examples kept apart by a block-diagonal mask
             (transformers' sdpa, built from the position ids); varlen: booktune's attention, SDPA on each
             example's slice alone (training/varlen.py, what the hf backend trains with). Both with LoRA inputs
             as is, on the same packed rows.
  head       logits: transformers' loss (the logits of every position, a float32 log-softmax over the
             vocabulary); fused: TRL's fused LM head, labelled positions only, through booktune's plain-PyTorch
             kernel where PyTorch has no Triton (training/headloss.py, what the trainer runs). Both with LoRA
             inputs as is and booktune's attention.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if (HERE.parent / "src" / "booktune").is_dir():  # a checkout; an installed booktune works too
    sys.path.insert(0, str(HERE.parent / "src"))

VARIANTS = {"casts": ("peft-casts", "as-is"), "attention": ("block-mask", "varlen"), "head": ("logits", "fused")}
ATTENTION = {"block-mask": "sdpa", "varlen": "booktune_varlen"}  # attention implementation of each variant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("outputs/demo/data"), help="a folder made by booktune prepare")
    ap.add_argument("--batches", type=int, default=3, help="packed steps timed in each round")
    ap.add_argument("--rounds", type=int, default=6, help="passes over the variants")
    ap.add_argument("--compare", choices=sorted(VARIANTS), default="casts", help="the two variants timed")
    ap.add_argument("--out", type=Path, default=Path("cpu_step.jsonl"))
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="first print the N costliest operators of one pass over the steps (torch.profiler, CPU)")
    a = ap.parse_args()
    import torch

    trainer = build(a.data)
    batches = [b for _, b in zip(range(a.batches), trainer.get_train_dataloader())]
    if a.profile:
        profile(trainer, batches, a.profile)
    first, _ = VARIANTS[a.compare]
    times = {v: [] for v in VARIANTS[a.compare]}
    losses = {variant: [] for variant in times}
    trainer.model.train()
    for round_ in range(a.rounds):
        for batch in batches:
            for variant in times:  # alternate per step: a shared host's load falls on both alike
                started = time.perf_counter()
                loss = fwd_bwd(trainer, batch, as_is=variant != "peft-casts", attention=ATTENTION.get(variant),
                               logits=variant == "logits")
                times[variant].append(time.perf_counter() - started)
                if round_ == 0:
                    losses[variant].append(round(loss, 6))
    rows = [{"variant": v, "min_s": round(min(t), 3), "median_s": round(statistics.median(t), 3), "steps": len(t),
             "tokens_a_step": [int(b["input_ids"].numel()) for b in batches], "losses": losses[v],
             "threads": torch.get_num_threads()} for v, t in times.items()]
    for row, t in zip(rows, times.values()):  # each step against the other variant's same step, run just before it
        row["paired_ratio_median"] = round(statistics.median(x / y for x, y in zip(t, times[first])), 3)
        print(json.dumps(row))
    a.out.write_text("".join(json.dumps(r) + "\n" for r in rows))


def build(data: Path):
    from booktune.config import TrainConfig
    from booktune.dataset.rows import train_rows
    from booktune.model import load_tokenizer
    from booktune.training.backends import resolve
    from booktune.training.recipe import build_trainer

    t = TrainConfig(max_steps=1, eval_steps=0, report_to="none", device="cpu")
    tokenizer = load_tokenizer(t.model)
    rows = train_rows(data, tokenizer, max_seq_length=t.max_seq_length, truncation=t.truncation)[0]
    return build_trainer(t, Path("/tmp/booktune-cpu-step"), rows, [], tokenizer,
                         backend=resolve(t.backend, "cpu", "auto")[0]).trainer


def profile(trainer, batches: list[dict], top: int) -> None:
    """Operators by their own CPU time over one pass of PEFT as it is (what the Trainer ran before as-is)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    fwd_bwd(trainer, batches[0], as_is=False)  # warm-up, outside the trace
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            fwd_bwd(trainer, batch, as_is=False)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))


def fwd_bwd(trainer, batch: dict, *, as_is: bool, attention: str | None = None, logits: bool = False) -> float:
    """One step's forward and backward, under the bf16 autocast the Trainer (accelerate) wraps the model in;
    `attention` switches the model's attention implementation first; `logits` takes transformers' loss over the
    full logits rather than the trainer's own."""
    import torch
    from peft.helpers import disable_input_dtype_casting
    from transformers import Trainer

    if attention:
        trainer.model.get_base_model().set_attn_implementation(attention)
    trainer.model.zero_grad(set_to_none=True)
    with disable_input_dtype_casting(trainer.model, active=as_is), torch.autocast("cpu", dtype=torch.bfloat16):
        compute = Trainer.compute_loss if logits else type(trainer).compute_loss
        loss = compute(trainer, trainer.model, dict(batch))
        loss.backward()
    return loss.item()


if __name__ == "__main__":
    main()
