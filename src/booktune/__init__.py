"""booktune: a shelf of books in, a LoRA adapter that writes in the author's voice out.

The Python API mirrors the CLI, which is a thin layer over it (booktune/api.py):

    import booktune
    data = booktune.prepare(["examples/books"], out="data")
    run = booktune.train("data", out="runs/demo")
    booktune.chat("runs/demo", prompt="Continue: The sun rose over the pond")
    booktune.run(["examples/books"])          # all of the above, with held-out loss before/after
    booktune.export("runs/demo", format="gguf")  # one GGUF + Ollama Modelfile in runs/demo/export/gguf

Heavy libraries (torch, transformers, trl) load only when a stage that needs them runs.
"""

from booktune.version import __version__

API = ("prepare", "train", "run", "evaluate", "chat", "export", "plan", "report", "preview", "inspect", "notebook",
       "doctor")
__all__ = ["__version__", *API]


def __getattr__(name: str):
    # Lazy, so `import booktune` (and `booktune --help`) stays fast and torch-free. No stage package shares a name
    # with an API function, so importing a stage never shadows one.
    if name in API:
        from booktune import api

        return getattr(api, name)
    raise AttributeError(f"module 'booktune' has no attribute {name!r}")
