"""`booktune preview DATA --model M`: see exactly which tokens training learns from, and the mask counts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from booktune.cli.options import ConfigOpt, config_options


@config_options("train", only={"train": ("model", "trust_remote_code")})
def preview(
    data: Annotated[Path, typer.Argument(help="A folder made by `booktune prepare`.", show_default=False)],
    n: Annotated[int, typer.Option("-n", help="How many examples to print token by token.")] = 3,
    plain: Annotated[bool, typer.Option("--plain", help="Plain text for logs: trained spans wrapped in [[ ]].")]
    = False,
    split: Annotated[str, typer.Option("--split", help="Which split to read: train or eval.")] = "train",
    task: Annotated[str, typer.Option("--task", help="Which task's examples: continue, answer or all.")] = "all",
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Show which tokens training learns from, and the mask counts.

    Examples as the model is trained on them (green: trained, dim red: masked context, end marker visible), then
    counts over the whole split: examples, tokens, trained tokens, fully masked, longest."""
    from booktune import api
    from booktune.console import console
    from booktune.template import mask_summary, render_preview

    tokenizer, rows, examples = api.preview(data, split=split, task=task, config=config, **overrides)
    for row, example in list(zip(rows, examples))[: max(n, 0)]:
        trained = sum(1 for label in example.labels if label != -100)
        title = (f"── {row.get('id', '?')} ({row.get('task', 'continue')}): {len(example.input_ids)} tokens, "
                 f"{trained} trained ──")
        if plain:
            typer.echo(f"{title}\n{render_preview(tokenizer, example, plain=True)}\n")
        else:
            console.print(title, style="bold", markup=False, highlight=False)
            console.print(render_preview(tokenizer, example), markup=False, highlight=False)
            console.print()
    _print_summary(mask_summary(examples), split if task == "all" else f"{split} ({task})", plain)


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
