"""Counts and token lengths of a prepared dataset, as a dict (stats.json) and a rich table."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table


def percentiles(values: list[int], points: tuple[int, ...] = (50, 90, 99)) -> dict[str, int]:
    """Nearest-rank percentiles plus the max; zeros for an empty list."""
    if not values:
        return {**{f"p{p}": 0 for p in points}, "max": 0}
    ordered = sorted(values)
    out = {f"p{p}": ordered[min(len(ordered) - 1, max(0, -(-p * len(ordered) // 100) - 1))] for p in points}
    out["max"] = ordered[-1]
    return out


def token_lengths(tokenizer: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Tokens per conversation as the model's own chat template renders it for training."""
    from booktune.template.labels import build_example

    return [len(build_example(tokenizer, r["messages"], name=r["id"]).input_ids) for r in rows]


def stats_table(stats: dict[str, Any]) -> Table:
    table = Table(title="Prepared data", show_header=True, header_style="bold")
    table.add_column("book")
    for col in ("pages", "words", "train", "eval"):
        table.add_column(col, justify="right")
    for book in stats["books"]:
        table.add_row(escape(book["slug"]), str(book["pages"] or "-"), f"{book['words']:,}", str(book["train"]),
                      str(book["eval"]))
    t = stats["totals"]
    table.add_row("[bold]total", str(t["pages"]), f"{t['words']:,}", str(t["train"]), str(t["eval"]), end_section=True)
    lengths, q = stats.get("tokens"), stats.get("questions")
    lines = [f"tokens per example ({lengths['model']}): p50 {lengths['p50']}, p90 {lengths['p90']}, "
             f"p99 {lengths['p99']}, max {lengths['max']}"] if lengths else []
    if q:
        lines.append(question_line(q))
    table.caption = escape("\n".join(lines)) if lines else None
    return table


def question_line(q: dict[str, Any]) -> str:
    """The answer task's questions in one line: who wrote them, how many were kept, the examples they made."""
    cached = f", {q['cached']} from the cache" if q.get("cached") else ""
    return (f"questions ({q['writer']}): {q['written']} written{cached}, {q['kept']} kept, {q['dropped']} dropped; "
            f"answer examples: {q['examples']['train']} train, {q['examples']['eval']} eval")
