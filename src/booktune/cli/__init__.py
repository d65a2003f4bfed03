"""The `booktune` command: a thin typer layer over booktune's Python API, one file per command."""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from booktune.errors import BooktuneError
from booktune.version import __version__

COMMANDS = ("prepare", "train", "run", "evaluate", "chat", "export", "inspect", "preview", "plan", "report",
            "notebook", "doctor")

app = typer.Typer(
    name="booktune",
    help="Turn a shelf of books into a LoRA adapter that writes in their author's voice.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def friendly(fn: Callable) -> Callable:
    """Print user errors (bad book, bad config, missing folder...) as one red line and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BooktuneError as e:
            from rich.text import Text

            from booktune.console import console

            # Text, not markup: messages quote file names and book text, which may hold brackets.
            console.print(Text.assemble(("error: ", "bold red"), str(e)), highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"booktune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")]
    = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of any bug in booktune itself.")] = False,
) -> None:
    """Turn a shelf of books into a LoRA adapter that writes in their author's voice."""
    if debug:
        os.environ["BOOKTUNE_DEBUG"] = "1"  # read in every process, book readers included


for _name in COMMANDS:  # each cli/<name>.py defines the function of the same name
    _module = importlib.import_module(f"booktune.cli.{_name}")
    app.command(_name)(friendly(getattr(_module, _name)))


def main() -> None:
    app(prog_name="booktune")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
