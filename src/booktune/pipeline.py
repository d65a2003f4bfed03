"""`booktune run`: held-out loss before, training, held-out loss after, samples, and a summary of every file."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.panel import Panel
from rich.table import Table

from booktune.config import Config, dump_config
from booktune.console import console


@dataclass
class RunResult:
    data_dir: Path
    run_dir: Path
    before: dict[str, Any]
    after: dict[str, Any]
    samples: list[Any] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


def run_pipeline(prepared: Any, run_dir: Path, cfg: Config, *, resume: bool = False) -> RunResult:
    from booktune.dataset import load_conversations, load_stats
    from booktune.dataset.tokenize import tokenize_records
    from booktune.evaluate.sample import sample_continuations
    from booktune.model import load_model, load_tokenizer
    from booktune.train.artifacts import update_run_file
    from booktune.train.eval_device import eval_placement, load_eval_base, with_adapter
    from booktune.train.recipe import choose_precision, train_adapter

    started = time.perf_counter()
    t, e = cfg.train, cfg.eval
    data_dir = prepared.out
    held = load_conversations(data_dir, "eval")
    if not held:
        console.print("[yellow]no held-out passages (books too short or eval_fraction 0): skipping held-out loss")
    tokenizer = load_tokenizer(t.model, trust_remote_code=t.trust_remote_code)
    prompts = load_stats(data_dir)["prompts"]
    held_rows = tokenize_records(tokenizer, held, max_seq_length=t.max_seq_length, truncation=t.truncation,
                                 **prompts)[0] if held else []
    prec = choose_precision(t.device, t.dtype, t.load_in_4bit, t.gradient_checkpointing)
    eval_device, eval_4bit = eval_placement(e.eval_device, prec.device, prec.load_in_4bit)  # --eval-device
    separate = eval_device != prec.device
    with console.status(f"loading {t.model}"):
        base = load_eval_base(t, eval_device, eval_4bit) if separate else load_model(
            t.model, device=prec.device, dtype=prec.dtype, load_in_4bit=prec.load_in_4bit,
            trust_remote_code=t.trust_remote_code)
    before = _loss(base, held_rows, tokenizer, e.eval_batch_size, "held-out loss (base)")
    result = train_adapter(data_dir, run_dir, resume=resume, base_model=None if separate else base,
                           tokenizer=tokenizer, config=dump_config(cfg),
                           **{**t.model_dump(), "load_in_4bit": prec.load_in_4bit})
    tuned = with_adapter(base, result.adapter_dir) if separate else result.model
    after = _loss(tuned, held_rows, tokenizer, e.eval_batch_size, "held-out loss (tuned)")
    samples = sample_continuations(tuned, tokenizer, held, n=e.samples, max_new_tokens=e.max_new_tokens,
                                   temperature=e.temperature, top_p=e.top_p, seed=t.seed)
    system = held[0]["messages"][0]["content"] if held else None
    update_run_file(run_dir, heldout={"before": before, "after": after}, system_prompt=system,
                    samples=[s.__dict__ for s in samples], seconds=round(time.perf_counter() - started, 1))
    files = {"cleaned text": str(data_dir / "text"), "conversations": str(data_dir / "train.jsonl"),
             "HF dataset": str(data_dir / "dataset"), "stats": str(data_dir / "stats.json"),
             "adapter": str(result.adapter_dir), "loss plot": str(run_dir / "loss.png"),
             "TensorBoard logs": str(run_dir / "logs"), "run metadata": str(run_dir / "booktune.json")}
    out = RunResult(data_dir, run_dir, before, after, samples, files)
    print_summary(out, time.perf_counter() - started)
    return out


def _loss(model: Any, rows: list[dict], tokenizer: Any, batch_size: int, label: str) -> dict[str, Any]:
    from booktune.evaluate.loss import heldout_loss

    if not rows:
        return {}
    result = heldout_loss(model, rows, pad_id=tokenizer.pad_token_id, batch_size=batch_size, label=label).as_dict()
    console.print(f"{label}: {result['loss']:.4f} (perplexity {result['perplexity']:.2f}, {result['tokens']:,} tokens)")
    return result


def print_summary(result: RunResult, seconds: float) -> None:
    for i, s in enumerate(result.samples, 1):
        body = f"[dim]…{s.lead_in[-300:]}[/]\n\n[bold]model:[/] {s.generated}\n\n[bold]author:[/] {s.reference[:600]}…"
        console.print(Panel(body, title=f"sample {i}: {s.id}", expand=False))
    table = Table(title="booktune run", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    b, a = result.before, result.after
    if b and a:
        change = 100 * (a["perplexity"] / b["perplexity"] - 1)
        table.add_row("held-out loss", f"{b['loss']:.4f} -> {a['loss']:.4f}")
        table.add_row("perplexity", f"{b['perplexity']:.2f} -> {a['perplexity']:.2f} ({change:+.1f}%)")
    for name, path in result.files.items():
        table.add_row(name, path)
    table.add_row("time", f"{seconds / 60:.1f} min")
    console.print(table)
