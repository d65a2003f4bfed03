"""The `booktune` command: a thin typer layer over booktune's Python API."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from booktune import __version__
from booktune.cli.options import config_options

app = typer.Typer(
    name="booktune",
    help="Turn a shelf of books into a LoRA adapter that writes in their author's voice.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="TOML or YAML config file; flags override it.")
]
Books = Annotated[list[Path], typer.Argument(help="Book files or folders (.pdf, .epub, .txt, .md).")]


def friendly(fn: Callable) -> Callable:
    """Print user errors (bad book, bad config, missing folder...) as one red line and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from booktune.errors import user_errors

        try:
            return fn(*args, **kwargs)
        except user_errors() as e:
            from booktune.console import console

            console.print(f"[bold red]error:[/] {e}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def command(name: str | None = None, **kwargs: Any) -> Callable:
    def register(fn: Callable) -> Callable:
        return app.command(name, **kwargs)(friendly(fn))

    return register


@command(name="prepare")
@config_options("prepare", "train", only={"prepare": (), "train": ("model", "trust_remote_code")})
def prepare_cmd(
    books: Books,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the prepared data.")] = Path("data"),
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Extract, clean, chunk and format books into a chat dataset (HF dataset + JSONL + stats)."""
    import booktune

    booktune.prepare(books, out, config=config, **overrides)


@command(name="train")
@config_options("train")
def train_cmd(
    data: Annotated[Path, typer.Argument(help="A folder made by `booktune prepare`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for the adapter.")] = Path("runs/booktune"),
    resume: Annotated[bool, typer.Option(help="Continue from the last complete checkpoint in --out.")] = False,
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Train a LoRA adapter (loss on the answers only) on a prepared data folder."""
    import booktune
    from booktune.train.distributed import end_process_group

    booktune.train(data, out, config=config, resume=resume, **overrides)
    end_process_group()  # a launched rank exits next (the API leaves the group to its caller)


@command(name="chat")
def chat_cmd(
    run: Annotated[Path, typer.Argument(help="A run folder made by `booktune train` or `booktune run`.")],
    prompt: Annotated[Optional[str], typer.Option("--prompt", "-p", help="Print one reply and exit.")] = None,
    system: Annotated[Optional[str], typer.Option(help="System prompt (default: the one the run trained with).")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest reply, in tokens.")] = 300,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0: greedy).")] = 0.8,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling threshold.")] = 0.95,
    device: Annotated[Optional[str], typer.Option(help="Device, e.g. cuda:0 or cpu.")] = None,
) -> None:
    """Talk to a trained run: streams replies interactively, or prints one reply with --prompt."""
    import booktune

    booktune.chat(run, prompt, system_prompt=system, max_new_tokens=max_new_tokens, temperature=temperature,
                  top_p=top_p, device=device)


@command(name="run")
@config_options("prepare", "train", "eval")
def run_cmd(
    books: Books,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for data/ and run/.")] = Path("outputs/booktune"),
    resume: Annotated[bool, typer.Option(help="Continue training from the last complete checkpoint.")] = False,
    config: ConfigOpt = None,
    **overrides: Any,
) -> None:
    """Everything: prepare, held-out loss, train, held-out loss again, sample continuations, summary."""
    import booktune

    booktune.run(books, out, config=config, resume=resume, **overrides)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"booktune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")]
    = False,
) -> None:
    """Turn a shelf of books into a LoRA adapter that writes in their author's voice."""


def _register_stage_commands() -> None:
    """Commands that live beside their stage (one module each, so the stage's owner can change it alone)."""
    from booktune.cli.inspect_cmd import inspect
    from booktune.cli.plan_cmd import plan
    from booktune.cli.preview_cmd import preview
    from booktune.cli.report_cmd import report

    for fn in (inspect, preview, plan, report):
        app.command(fn.__name__)(friendly(fn))


_register_stage_commands()


def main() -> None:
    app(prog_name="booktune")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
