"""Held-out perplexity of the demo's default run with one change: NEFTune noise, a second tiling of the training text
shifted by some words (twice the passages, each word trained twice in other company), PEFT's PiSSA initialisation (the
adapter starts from each weight's principal singular vectors), another learning rate, seed or learning-rate schedule
(transformers' scheduler names, with their arguments as JSON), other LoRA targets or rank, the continuation task alone
(the answer examples dropped from the training split), each passage trained once (`--tasks alternate`: every other
passage as its continuation, the rest as their answers), a passage's two examples in separate steps (`--apart`), or
the tasks one after the other (`--order answers-first` or `continuations-first`). Both held-out figures are printed,
base and tuned: the continuations' and the answers'. Not part of the package.

    booktune run examples/books --out outputs/demo            # once: the prepared data and the base perplexity
    python dev/quality_variants.py --out /tmp/q/control
    python dev/quality_variants.py --out /tmp/q/neft5 --neftune 5
    python dev/quality_variants.py --out /tmp/q/retile175 --retile 175
    python dev/quality_variants.py --out /tmp/q/pissa --init pissa_niter_4 --lr 2e-4
    python dev/quality_variants.py --out /tmp/q/lr7e-4 --lr 7e-4 --seed 43 --device cuda
    python dev/quality_variants.py --out /tmp/q/continue --tasks continue
    python dev/quality_variants.py --out /tmp/q/apart --apart --lr 5e-4 --scheduler cosine
    python dev/quality_variants.py --out /tmp/q/answers1st --order answers-first --lr 5e-4 --scheduler cosine
    python dev/quality_variants.py --out /tmp/q/linear --lr 5e-4 --scheduler linear
    python dev/quality_variants.py --out /tmp/q/minlr --lr 5e-4 --scheduler cosine_with_min_lr \
        --scheduler-kwargs '{"min_lr_rate": 0.1}'
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def add_shifted_tiling(data: Path, offset: int, target: int = 350, overlap: int = 50) -> int:
    """Append a second tiling of each book's training passages, starting `offset` words in; how many were added."""
    from booktune.dataset.chunk import Words, chunk_words
    from booktune.dataset.format import make_record

    prompts = json.loads((data / "stats.json").read_text())["prompts"]
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines() if line.strip()]
    extra = []
    for book in sorted({r["book"] for r in rows}):
        mine = [r for r in rows if r["book"] == book]  # in order: a contiguous tiling of the training section
        words = Words.from_text("\n\n".join(r["passage"] for r in mine))
        for i, c in enumerate(chunk_words(words, offset, len(words), target=target, overlap=overlap, lead_floor=0)):
            extra.append(make_record(book=book, index=10000 + i, title=mine[0]["title"], author=mine[0]["author"],
                                     lead_in=c.lead_in, passage=c.passage, **prompts))
    (data / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows + extra))
    return len(extra)


def continuations_only(data: Path) -> int:
    """Drop the answer examples from the training split (the held-out split keeps them, to be scored); how many.
    stats.json keeps prepare's counts: nothing here reads them, since the learning rate is always given (--lr)."""
    path = data / "train.jsonl"
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in rows if json.loads(line).get("task", "continue") == "continue"]
    path.write_text("".join(line + "\n" for line in kept))
    return len(rows) - len(kept)


def one_task_each(data: Path) -> int:
    """Train each passage once: every other passage of a book as its continuation, the rest as its answer (the
    held-out split keeps both, to be scored); how many examples were dropped."""
    path = data / "train.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    order: dict[str, list[str]] = {}
    for r in rows:
        ids = order.setdefault(r["book"], [])
        if r["passage_id"] not in ids:
            ids.append(r["passage_id"])
    task = {pid: ("continue", "answer")[i % 2] for ids in order.values() for i, pid in enumerate(ids)}
    kept = [r for r in rows if r.get("task", "continue") == task[r["passage_id"]]]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    return len(rows) - len(kept)


def with_neftune(alpha: float) -> None:
    """Make the recipe's TrainingArguments carry neftune_noise_alpha (transformers adds the noise while training)."""
    import booktune.training.recipe as recipe

    original = recipe.sft_args

    def sft_args(*args, extra=None, **kwargs):
        return original(*args, extra=(extra or {}) | {"neftune_noise_alpha": alpha}, **kwargs)

    recipe.sft_args = sft_args


def with_scheduler(name: str, kwargs: dict) -> None:
    """Make the recipe's TrainingArguments use the learning-rate schedule `name` (the recipe's is cosine)."""
    import booktune.training.recipe as recipe

    original = recipe.sft_args

    def sft_args(*args, **kw):
        out = original(*args, **kw)
        out.lr_scheduler_type, out.lr_scheduler_kwargs = name, kwargs
        return out

    recipe.sft_args = sft_args


def with_lora_init(init: str) -> None:
    """Make the recipe's LoraConfig start the adapter with PEFT's `init_lora_weights=init` (e.g. 'pissa_niter_4')."""
    from booktune.training.backends.hf import HfBackend

    original = HfBackend.add_lora

    def add_lora(self, model, lora, prec, *, packing):
        model, config = original(self, model, lora, prec, packing=packing)
        config.init_lora_weights = init
        return model, config

    HfBackend.add_lora = add_lora


def with_order(order: str, seed: int) -> None:
    """Make the recipe train one task's packed rows before the other's (`order`: 'answers-first' or
    'continuations-first'), each task's rows shuffled, in place of one shuffled mix."""
    import random

    import booktune.training.packing as packing
    import booktune.training.recipe as recipe

    original, sft = packing.training_batches, recipe.sft_args

    def training_batches(rows, batching, *, max_len, pad_token_id, batch_size=1, group=False):
        if not rows or batching.mode != "packed" or "task" not in rows[0]:
            return original(rows, batching, max_len=max_len, pad_token_id=pad_token_id, batch_size=batch_size)
        first = "answer" if order == "answers-first" else "continue"
        out = []
        for want in (True, False):
            half = [r for r in rows if (r["task"] == first) == want]
            packed, collator = original(half, batching, max_len=max_len, pad_token_id=pad_token_id,
                                        batch_size=batch_size)
            random.Random(seed).shuffle(packed)
            out += packed
        return out, collator

    def sft_args(*args, **kw):
        out = sft(*args, **kw)
        out.train_sampling_strategy = "sequential"  # the rows' order is the training order
        return out

    packing.training_batches, recipe.sft_args = training_batches, sft_args


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="outputs/demo/data", help="a prepared DATA folder (the demo's)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--neftune", type=float, default=None, help="NEFTune noise alpha")
    ap.add_argument("--retile", type=int, default=0, help="add a second tiling starting this many words in")
    ap.add_argument("--init", default=None, help="PEFT init_lora_weights, e.g. pissa_niter_4 or olora")
    ap.add_argument("--lr", type=float, default=1.4e-3)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--max-steps", type=int, default=-1, help="stop early (a smoke test)")
    ap.add_argument("--tasks", choices=["continue,answer", "continue", "alternate"], default="continue,answer")
    ap.add_argument("--targets", default=None, help="LoRA target modules, comma-separated (the recipe's: all-linear)")
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--lora-alpha", type=int, default=32)
    ap.add_argument("--apart", action="store_true",
                    help="a passage's examples packed apart, in separate steps (group_passages off)")
    ap.add_argument("--order", choices=["random", "answers-first", "continuations-first"], default="random",
                    help="one task's rows before the other's (each passage's examples apart)")
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (booktune's choice when unset)")
    ap.add_argument("--scheduler", default=None, help="a transformers lr_scheduler_type (the config's: linear)")
    ap.add_argument("--scheduler-kwargs", default="{}", help="its lr_scheduler_kwargs, as JSON")
    a = ap.parse_args()
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    data = out / "data"
    shutil.copytree(a.data, data)
    if a.retile:
        print(f"added {add_shifted_tiling(data, a.retile)} passages shifted by {a.retile} words", flush=True)
    if a.tasks == "continue":
        print(f"dropped {continuations_only(data)} answer examples from the training split", flush=True)
    if a.tasks == "alternate":
        print(f"dropped {one_task_each(data)} examples: each training passage trained once", flush=True)
    if a.neftune:
        with_neftune(a.neftune)
    if a.init:
        with_lora_init(a.init)
    if a.order != "random":
        with_order(a.order, a.seed)
    if a.scheduler:
        with_scheduler(a.scheduler, json.loads(a.scheduler_kwargs))
    import booktune
    from booktune.dataset.rows import heldout_rows
    from booktune.evaluation.heldout import score

    started = time.time()
    # The demo's CPU settings on any device: bf16, no 4-bit base, the hf backend, no checkpointing.
    res = booktune.train(str(data), str(out / "run"), learning_rate=a.lr, epochs=a.epochs, seed=a.seed, eval_steps=0,
                         max_steps=a.max_steps, lora_r=a.lora_r, lora_alpha=a.lora_alpha,
                         group_passages=not a.apart and a.order == "random",
                         **({"target_modules": a.targets.split(",")} if a.targets else {}),
                         device=a.device, backend="hf", load_in_4bit=False, gradient_checkpointing=False,
                         liger="off", report_to="none")
    rows = heldout_rows(data, res.tokenizer, max_seq_length=1024, truncation="split")
    tuned = score(res.model, rows, res.tokenizer, 4, "held-out loss (tuned)")
    with res.model.disable_adapter():
        base = score(res.model, rows, res.tokenizer, 4, "held-out loss (base)")
    figures = {}
    for task, b, t in (("continue", base, tuned), ("answer", base.get("answer", {}), tuned.get("answer", {}))):
        if b:
            figures[task] = {"ppl": [round(b["perplexity"], 3), round(t["perplexity"], 3)],
                             "change": round(t["perplexity"] / b["perplexity"] - 1, 4),
                             "loss": [round(b["loss"], 4), round(t["loss"], 4)],
                             "loss_change": round(t["loss"] / b["loss"] - 1, 4)}
    print("RESULT", json.dumps({"args": vars(a), **figures, "secs": round(time.time() - started)}), flush=True)


if __name__ == "__main__":
    main()
