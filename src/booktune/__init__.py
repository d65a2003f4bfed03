"""booktune: a shelf of books in, a LoRA adapter that writes in the author's voice out.

The Python API mirrors the CLI, which is a thin layer over it:

    import booktune
    data = booktune.prepare(["examples/books"], out="data")
    run = booktune.train("data", out="runs/demo")
    booktune.chat("runs/demo", prompt="Continue: The sun rose over the pond")
    booktune.run(["examples/books"])          # all of the above, with held-out loss before/after

Heavy libraries (torch, transformers, trl) load only when a stage that needs them runs.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "prepare", "train", "chat", "run"]


def __getattr__(name: str):
    # Lazy, so `import booktune` (and `booktune --help`) stays fast and torch-free.
    import importlib

    if name in ("prepare", "run"):
        return getattr(importlib.import_module("booktune.api"), name)
    if name in ("train", "chat"):  # callable stage packages (see callable_module.py)
        return importlib.import_module(f"booktune.{name}")
    raise AttributeError(f"module 'booktune' has no attribute {name!r}")
