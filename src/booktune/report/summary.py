"""The summary `booktune run` prints at its end: the samples, the before/after figures and every file written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from booktune.console import show


def run_files(data_dir: Path, run_dir: Path) -> dict[str, str]:
    """What a finished `booktune run` wrote, by what it is."""
    return {"cleaned text": str(data_dir / "text"), "conversations": str(data_dir / "train.jsonl"),
            "HF dataset": str(data_dir / "dataset"), "stats": str(data_dir / "stats.json"),
            "LLaMA-Factory entry": str(data_dir / "dataset_info.json"),
            "Axolotl datasets": str(data_dir / "axolotl.yaml"),
            "adapter": str(run_dir / "adapter"), "loss plot": str(run_dir / "loss.png"),
            "TensorBoard logs": str(run_dir / "logs"), "run metadata": str(run_dir / "booktune.json"),
            "report": str(run_dir / "report.html")}


def print_summary(samples: list[Any], before: dict[str, Any], after: dict[str, Any], files: dict[str, str],
                  seconds: float, answers: dict[str, Any] | None = None) -> None:
    for i, s in enumerate(samples, 1):
        body = (f"[dim]…{escape(s.lead_in[-300:])}[/]\n\n[bold]base:[/] {escape(s.base)}\n\n"
                f"[bold]tuned:[/] {escape(s.tuned)}\n\n[bold]author:[/] {escape(s.reference[:600])}…")
        show(Panel(body, title=escape(f"sample {i}: {s.id}"), expand=False))
    table = Table(title="booktune run", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    if "loss" in before and "loss" in after:
        change = 100 * (after["perplexity"] / before["perplexity"] - 1)
        table.add_row("held-out loss", f"{before['loss']:.4f} -> {after['loss']:.4f}")
        table.add_row("perplexity", f"{before['perplexity']:.2f} -> {after['perplexity']:.2f} ({change:+.1f}%)")
        table.add_row("bits per byte", f"{before['bits_per_byte']:.3f} -> {after['bits_per_byte']:.3f}")
    b, a = before.get("answer") or {}, after.get("answer") or {}
    if b and a:
        table.add_row("held-out answer loss", f"{b['loss']:.4f} -> {a['loss']:.4f} "
                                              f"({100 * (a['loss'] / b['loss'] - 1):+.1f}%)")
        table.add_row("answer perplexity", f"{b['perplexity']:.2f} -> {a['perplexity']:.2f} "
                                           f"({100 * (a['perplexity'] / b['perplexity'] - 1):+.1f}%)")
    if answers:
        from booktune.evaluation.heldout import answer_lines

        for label, line in zip(("answers: voice", "answers: length", "answers: attribution"), answer_lines(answers)):
            table.add_row(label, escape(line))
    for name, path in files.items():
        table.add_row(escape(name), escape(path))
    table.add_row("time", f"{seconds / 60:.1f} min")
    show(table)
