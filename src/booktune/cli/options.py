"""Command-line options made from the config's fields, so each field's description is its --help text.

A command declares its own arguments and `**overrides`; `config_options("train", ...)` adds one option per config
field (default None = not given), which the API merges over the config file.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from booktune.config import SECTIONS

ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="TOML, YAML or JSON config file; flags override it.")
]
Books = Annotated[list[Path], typer.Argument(help="Book files or folders (.pdf, .epub, .txt, .md).")]
Overwrite = Annotated[bool, typer.Option(
    "--overwrite", help="Write into an output folder that holds files booktune did not write (they are kept), and "
                        "start over where an earlier run left checkpoints.")]

# Flags that read better than the field name.
FLAG_NAMES = {"load_in_4bit": ("--4bit/--no-4bit",), "model": ("--model", "-m"), "format": ("--format", "--export")}


def option_type(annotation: Any) -> tuple[Any, str]:
    """The typer type for a field annotation, and a note on allowed values for the help text."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return option_type(args[0])
    if origin is Literal:
        return str, f" One of: {', '.join(map(str, typing.get_args(annotation)))}."
    if origin is list:
        return list[args[0]], " Repeat the option for several."
    return annotation, ""


def field_parameter(name: str, field: Any, panel: str) -> inspect.Parameter:
    kind, note = option_type(field.annotation)
    default = field.default_factory() if field.default_factory else field.default
    shown = "" if default is None else f" (default: {default})"
    decls = list(FLAG_NAMES.get(name, ()))
    option = typer.Option(*decls, help=f"{field.description}{note}{shown}", show_default=False, rich_help_panel=panel)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[kind], option])


def config_options(*sections: str, only: dict[str, tuple[str, ...]] | None = None) -> Callable:
    """Add the fields of `sections` (or, per section in `only`, just the named fields) as options."""

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn, eval_str=True)
        params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        names = sorted(sections) if not only else list(sections)
        for section in names:
            fields = SECTIONS[section].model_fields
            wanted = (only or {}).get(section, tuple(fields))
            params += [field_parameter(n, fields[n], f"{section} options") for n in wanted]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate
