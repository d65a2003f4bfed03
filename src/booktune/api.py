"""booktune's Python API. The CLI is a thin layer over these functions.

Each takes an optional `config` (a path to a TOML/YAML file, or a `Config`) and flat keyword overrides named like the
config fields (`chunk_words=300`, `learning_rate=1e-4`, ...). The config is unpacked here into plain arguments.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

from booktune.config import Config, build_config, dump_config


def prepare(books: Sequence[str | Path] | str | Path, out: str | Path = "data", *,
            config: str | Path | Config | None = None, **overrides: Any):
    """Extract, clean, chunk and format books into a DATA folder. Returns a PrepareResult (out, stats, skipped)."""
    from booktune.dataset import prepare_data

    cfg = build_config(config, overrides)
    p = cfg.prepare
    return prepare_data(
        [books] if isinstance(books, (str, Path)) else list(books), out,
        chunk_words=p.chunk_words, overlap_words=p.overlap_words, eval_fraction=p.eval_fraction,
        eval_books=p.eval_books,
        system_prompt=p.system_prompt, user_prompt=p.user_prompt,
        workers=p.workers, password=p.password, ocr=p.ocr,
        model=cfg.train.model, trust_remote_code=cfg.train.trust_remote_code, config=dump_config(cfg),
    )


def train(data: str | Path, out: str | Path = "runs/booktune", *, config: str | Path | Config | None = None,
          resume: bool = False, **overrides: Any):
    """Train a LoRA adapter on a DATA folder into RUN. Returns a TrainResult."""
    from booktune.train.recipe import train_adapter

    cfg = build_config(config, overrides)
    fresh_start(Path(out), resume)
    from booktune.train.launch import launch_training, wants_launch

    if wants_launch(cfg.train.gpus):  # --gpus N: one process per card, each running this same function
        return launch_training(data, out, cfg, resume=resume)
    return train_adapter(data, out, resume=resume, config=dump_config(cfg), **cfg.train.model_dump())


def fresh_start(run_dir: Path, resume: bool) -> None:
    """Without --resume, a run starts clean: stale checkpoints of an earlier run must not be resumed later."""
    from booktune.train.distributed import is_main_process

    if not resume and is_main_process() and (run_dir / "checkpoints").is_dir():  # once, under a launcher
        shutil.rmtree(run_dir / "checkpoints")


def run(books: Sequence[str | Path] | str | Path, out: str | Path = "outputs/booktune", *,
        config: str | Path | Config | None = None, resume: bool = False, **overrides: Any):
    """prepare -> held-out loss -> train -> held-out loss -> samples -> summary. Returns a RunResult."""
    from booktune.pipeline import run_pipeline

    cfg = build_config(config, overrides)
    if cfg.train.gpus:
        from booktune.train.distributed import DistributedError

        raise DistributedError("config field train.gpus: `booktune run` trains in this process; for several GPUs "
                               "run `booktune prepare`, then `booktune train --gpus N`")
    from booktune.train.backends import resolve_backend

    # Unsloth patches transformers on import, so it must come before `prepare` loads a tokenizer (and a wrong
    # backend for this machine fails here, before any book is read).
    resolve_backend(cfg.train.backend, cfg.train.device)
    books = [books] if isinstance(books, (str, Path)) else list(books)
    out = Path(out)
    fresh_start(out / "run", resume)
    prepared = prepare(books, out / "data", config=cfg)
    return run_pipeline(prepared, out / "run", cfg, resume=resume)
