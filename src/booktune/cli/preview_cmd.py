"""`booktune preview DATA --model M`: see exactly which tokens training learns from, and the mask counts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def preview(
    data: Path = typer.Argument(..., help="A folder made by `booktune prepare`.", show_default=False),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Base model whose tokenizer and chat template to use (default: the default model)."
    ),
    n: int = typer.Option(3, "-n", help="How many examples to print token by token."),
    plain: bool = typer.Option(False, "--plain", help="Plain text for logs: trained spans wrapped in [[ ]]."),
    split: str = typer.Option("train", "--split", help="Which split to read: train or eval."),
) -> None:
    """Print examples as the model is trained on them (green: trained, dim red: masked context, end marker
    visible), then counts over the whole split: examples, tokens, trained tokens, fully masked, longest."""
    from booktune.chat.masking import build_example
    from booktune.chat.preview import mask_summary, render_preview
    from booktune.console import console
    from booktune.dataset.io import load_conversations
    from booktune.model import load_tokenizer

    rows = load_conversations(data, split)
    tokenizer = load_tokenizer(model)
    examples = [build_example(tokenizer, row["messages"], name=str(row.get("id", i))) for i, row in enumerate(rows)]
    for row, example in list(zip(rows, examples))[: max(n, 0)]:
        trained = sum(1 for label in example.labels if label != -100)
        title = f"── {row.get('id', '?')}: {len(example.input_ids)} tokens, {trained} trained ──"
        if plain:
            typer.echo(f"{title}\n{render_preview(tokenizer, example, plain=True)}\n")
        else:
            console.print(title, style="bold", markup=False, highlight=False)
            console.print(render_preview(tokenizer, example), markup=False, highlight=False)
            console.print()
    _print_summary(mask_summary(examples), split, plain)


def _print_summary(summary: dict[str, int], split: str, plain: bool) -> None:
    from booktune.console import console

    share = summary["trained_tokens"] / summary["tokens"] if summary["tokens"] else 0.0
    line = (f"{split}: {summary['examples']} examples, {summary['tokens']:,} tokens, "
            f"{summary['trained_tokens']:,} trained ({share:.0%}), {summary['fully_masked']} fully masked, "
            f"longest {summary['longest']} tokens")
    if plain:
        typer.echo(line)
    else:
        console.print(line, style="bold red" if summary["fully_masked"] else "bold", markup=False, highlight=False)
