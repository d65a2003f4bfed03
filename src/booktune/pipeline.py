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
    from booktune.dataset import load_conversations
    from booktune.evaluate.rows import heldout_rows
    from booktune.model import load_tokenizer
    from booktune.train.backends import load_base
    from booktune.train.eval_device import eval_placement, load_eval_base, with_adapter
    from booktune.train.recipe import choose_precision, train_adapter

    started = time.perf_counter()
    t, e = cfg.train, cfg.eval
    data_dir = prepared.out
    held = load_conversations(data_dir, "eval")
    if not held:
        console.print("[yellow]no held-out passages (books too short or eval_fraction 0): skipping held-out loss")
    tokenizer = load_tokenizer(t.model, trust_remote_code=t.trust_remote_code)
    held_rows = heldout_rows(data_dir, tokenizer, max_seq_length=t.max_seq_length, truncation=t.truncation)
    prec = choose_precision(t.device, t.dtype, t.load_in_4bit, t.gradient_checkpointing)
    eval_device, eval_4bit = eval_placement(e.eval_device, prec.device, prec.load_in_4bit)  # --eval-device
    separate = eval_device != prec.device
    with console.status(f"loading {t.model}"):
        base = load_eval_base(t, eval_device, eval_4bit) if separate else load_base(  # Unsloth or transformers
            t.backend, t.model, prec, max_seq_length=t.max_seq_length, trust_remote_code=t.trust_remote_code)
    before = _loss(base, held_rows, tokenizer, e.eval_batch_size, "held-out loss (base)")
    result = train_adapter(data_dir, run_dir, resume=resume, base_model=None if separate else base,
                           tokenizer=tokenizer, config=dump_config(cfg),
                           **{**t.model_dump(), "load_in_4bit": prec.load_in_4bit})
    tuned = with_adapter(base, result.adapter_dir) if separate else result.model
    after = _loss(tuned, held_rows, tokenizer, e.eval_batch_size, "held-out loss (tuned)")
    samples, voice = _voice(tuned, tokenizer, held, e, seed=t.seed)
    out = RunResult(data_dir, run_dir, before, after, samples, _files(data_dir, run_dir, result.adapter_dir))
    _finish(out, held, voice, time.perf_counter() - started)
    return out


def _voice(model: Any, tokenizer: Any, held: list[dict], e: Any, *, seed: int) -> tuple[list[Any], dict]:
    """Base and tuned continuations of the same held-out prompts, and their voice distance to the author."""
    from booktune.evaluate.compare import compare_continuations
    from booktune.evaluate.voice import voice_report

    n = max(e.samples, e.voice_prompts)
    if not held or n == 0:
        return [], {}
    with console.status(f"continuing {min(n, len(held))} held-out prompts with the base and the tuned model"):
        pairs = compare_continuations(model, tokenizer, held, n=n, max_new_tokens=e.max_new_tokens,
                                      temperature=e.temperature, top_p=e.top_p, seed=seed)
    voice = voice_report([p.reference for p in pairs], [p.base for p in pairs], [p.tuned for p in pairs])
    voice["prompts"] = len(pairs)
    voice["continuations"] = [p.__dict__ for p in pairs]
    console.print(f"voice distance to the author (Burrows' Delta, lower is closer): base {voice['delta_base']:.3f}"
                  f" -> tuned {voice['delta_tuned']:.3f}")
    return pairs[: e.samples], voice


def _files(data_dir: Path, run_dir: Path, adapter_dir: Path) -> dict[str, str]:
    return {"cleaned text": str(data_dir / "text"), "conversations": str(data_dir / "train.jsonl"),
            "HF dataset": str(data_dir / "dataset"), "stats": str(data_dir / "stats.json"),
            "adapter": str(adapter_dir), "loss plot": str(run_dir / "loss.png"),
            "TensorBoard logs": str(run_dir / "logs"), "run metadata": str(run_dir / "booktune.json"),
            "report": str(run_dir / "report.html")}


def _finish(out: RunResult, held: list[dict], voice: dict, seconds: float) -> None:
    """Record the evaluation in RUN/booktune.json, write the report, print the summary."""
    from booktune.report import write_report
    from booktune.train.artifacts import update_run_file

    system = held[0]["messages"][0]["content"] if held else None
    update_run_file(out.run_dir, heldout={"before": out.before, "after": out.after}, system_prompt=system,
                    samples=[s.__dict__ for s in out.samples], voice=voice, seconds=round(seconds, 1))
    html, _ = write_report(out.run_dir, out.data_dir)
    print_summary(out, seconds)
    console.print(f"report: [bold]{html}[/]")


def _loss(model: Any, rows: list[dict], tokenizer: Any, batch_size: int, label: str) -> dict[str, Any]:
    from booktune.evaluate.loss import heldout_loss

    if not rows:
        return {}
    result = heldout_loss(model, rows, pad_id=tokenizer.pad_token_id, batch_size=batch_size, label=label,
                          tokenizer=tokenizer).as_dict()
    console.print(f"{label}: {result['loss']:.4f} (perplexity {result['perplexity']:.2f}, "
                  f"{result['bits_per_byte']:.3f} bits/byte, {result['tokens']:,} tokens)")
    return result


def print_summary(result: RunResult, seconds: float) -> None:
    for i, s in enumerate(result.samples, 1):
        body = (f"[dim]…{s.lead_in[-300:]}[/]\n\n[bold]base:[/] {s.base}\n\n[bold]tuned:[/] {s.tuned}\n\n"
                f"[bold]author:[/] {s.reference[:600]}…")
        console.print(Panel(body, title=f"sample {i}: {s.id}", expand=False))
    table = Table(title="booktune run", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    b, a = result.before, result.after
    if b and a:
        change = 100 * (a["perplexity"] / b["perplexity"] - 1)
        table.add_row("held-out loss", f"{b['loss']:.4f} -> {a['loss']:.4f}")
        table.add_row("perplexity", f"{b['perplexity']:.2f} -> {a['perplexity']:.2f} ({change:+.1f}%)")
        table.add_row("bits per byte", f"{b['bits_per_byte']:.3f} -> {a['bits_per_byte']:.3f}")
    for name, path in result.files.items():
        table.add_row(name, path)
    table.add_row("time", f"{seconds / 60:.1f} min")
    console.print(table)
