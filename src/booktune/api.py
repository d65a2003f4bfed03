"""booktune's Python API. The CLI is a thin layer over these functions, one per command.

Each takes an optional `config` (a path to a TOML/YAML/JSON file, or a `Config`) and flat keyword overrides named
like the config fields of the sections the command reads (`chunk_words=300`, `learning_rate=1e-4`, ...):

    import booktune
    data = booktune.prepare(["examples/books"], out="data")
    run = booktune.train("data", out="runs/demo")
    booktune.chat("runs/demo", prompt="Continue: The sun rose over the pond")
    booktune.run(["examples/books"])          # all of the above, with held-out loss before/after
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from booktune.config import Config, build_config

PathLike = str | Path
ConfigLike = PathLike | Config | dict[str, Any] | None  # a dict: laid out like a config file, by section
# The config sections each command reads; their field names are its flags and keyword overrides.
SECTIONS = {"prepare": ("prepare", "train"), "train": ("train",), "run": ("prepare", "train", "eval", "export"),
            "chat": ("chat",), "plan": ("train",), "preview": ("train",), "inspect": ("prepare",),
            "evaluate": ("eval",), "notebook": ("prepare", "train", "eval", "export"),
            "export": ("export", "chat")}


@dataclass
class RunResult:
    data_dir: Path
    run_dir: Path
    before: dict[str, Any]
    after: dict[str, Any]
    samples: list[Any] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)  # evaluation.heldout.answers: held-out questions answered


def prepare(books: Sequence[PathLike] | PathLike, out: PathLike = "data", *, config: ConfigLike = None,
            overwrite: bool = False, **overrides: Any):
    """Extract, clean, chunk and format books into a DATA folder. Returns a PrepareResult (out, stats, skipped).
    DATA may hold only what booktune wrote there, unless `overwrite`; what it did not write is never touched."""
    from booktune.config import dump_config
    from booktune.dataset import prepare_data

    cfg = build_config(config, overrides, SECTIONS["prepare"])
    return prepare_data(_paths(books), out, cfg.prepare, model=cfg.train.model,
                        trust_remote_code=cfg.train.trust_remote_code, config=dump_config(cfg), overwrite=overwrite)


def train(data: PathLike, out: PathLike = "runs/booktune", *, config: ConfigLike = None, resume: bool = False,
          overwrite: bool = False, **overrides: Any):
    """Train a LoRA adapter on a DATA folder into RUN. Returns a TrainResult. An earlier run's checkpoints in RUN
    are continued with `resume` or discarded with `overwrite`; without either, RUN with checkpoints is refused."""
    from booktune.dataset.io import check_data_dir
    from booktune.runfolder import open_run
    from booktune.training.launch import launch_training, wants_launch
    from booktune.training.recipe import train_adapter

    cfg = build_config(config, overrides, SECTIONS["train"])
    check_data_dir(data)  # every input is checked before RUN is touched
    run = open_run(out, resume=resume, overwrite=overwrite)
    if wants_launch(cfg.train.gpus):  # --gpus N: one process per card, each running this same function
        return launch_training(data, run, cfg, resume=resume, overwrite=overwrite)
    return train_adapter(data, run, cfg, resume=resume)


def run(books: Sequence[PathLike] | PathLike, out: PathLike = "outputs/booktune", *, config: ConfigLike = None,
        resume: bool = False, overwrite: bool = False, **overrides: Any) -> RunResult:
    """prepare -> held-out loss -> train -> held-out loss -> samples -> report -> export (OUT/export; `format`
    'none' skips it) -> summary. Returns a RunResult."""
    from booktune.devices import pick_device
    from booktune.evaluation.basecache import BaseCache
    from booktune.evaluation.heldout import score
    from booktune.evaluation.placement import with_adapter
    from booktune.exporting.export import check_export
    from booktune.ingest import discover
    from booktune.training.backends import resolve
    from booktune.training.recipe import train_adapter
    from booktune.training.scaleout import single_process

    cfg = build_config(config, overrides, SECTIONS["run"])
    t, e = cfg.train, cfg.eval
    single_process(t)
    # The backend before `prepare` loads a tokenizer: Unsloth patches transformers on import (and a backend this
    # machine cannot run fails here, before any book is read).
    backend, _ = resolve(t.backend, pick_device(t.device))
    discover(_paths(books))  # every input is checked before anything is written
    check_export(cfg.export)
    started = time.perf_counter()
    data_dir, run_folder, export_dir = _pipeline_folders(Path(out), resume=resume, overwrite=overwrite)
    prepare(books, data_dir, config=cfg, overwrite=overwrite)

    base, tokenizer, rows, separate = _eval_base(cfg, data_dir, backend)
    cache = BaseCache.from_config(e.cache_base)
    before = score(base, rows, tokenizer, e.eval_batch_size, "held-out loss (base)", cache)
    result = train_adapter(data_dir, run_folder, cfg, resume=resume, base_model=None if separate else base,
                           tokenizer=tokenizer, held_rows=rows, scored_after=True)
    tuned = with_adapter(base, result.adapter_dir) if separate else result.model
    measured = _measure_tuned(tuned, tokenizer, rows, data_dir, e, seed=t.seed, cache=cache)
    del tuned, base, result  # the export reloads the base in full precision: free the training copy first
    return _record(run_folder.path, data_dir, before, *measured, started, whole_run=True, export=(cfg, export_dir),
                   overwrite=overwrite)


def _measure_tuned(tuned: Any, tokenizer: Any, rows: list[dict], data_dir: Path, e: Any, *, seed: int,
                   cache: Any) -> tuple[dict[str, Any], list[Any], dict[str, Any], dict[str, Any]]:
    """What `run` and `evaluate` measure of the tuned model: held-out loss, continuations and their voice, and free
    answers to the held-out questions; each against the base, which the adapter switched off gives (or `cache`,
    the base's replies from an earlier evaluation)."""
    from booktune.dataset import load_conversations
    from booktune.evaluation.heldout import answers, score, voice

    after = score(tuned, rows, tokenizer, e.eval_batch_size, "held-out loss (tuned)")
    held = load_conversations(data_dir, "eval")
    samples, voice_report = voice(tuned, tokenizer, held, e, seed=seed, cache=cache)
    answer_report = answers(tuned, tokenizer, held, load_conversations(data_dir, "train"), e, seed=seed, cache=cache)
    return after, samples, voice_report, answer_report


def _record(run_dir: Path, data_dir: Path, before: dict[str, Any], after: dict[str, Any], samples: list[Any],
            voice_report: dict[str, Any], answer_report: dict[str, Any], started: float, *, whole_run: bool = False,
            export: tuple[Config, Path] | None = None, overwrite: bool = False) -> RunResult:
    """The held-out results into RUN/booktune.json and the report, then the export `export` = (config, folder)
    asks for (`run`), then the summary (`run` and `evaluate`)."""
    from booktune.report import write_report
    from booktune.report.summary import print_summary, run_files
    from booktune.runfolder import update_run_file

    seconds = time.perf_counter() - started
    timing = {"seconds": round(seconds, 1)} if whole_run else {}  # the report's "whole run" time
    update_run_file(run_dir, heldout={"before": before, "after": after}, samples=[s.__dict__ for s in samples],
                    voice=voice_report, answers=answer_report, **timing)
    write_report(run_dir, data_dir)
    files = run_files(data_dir, run_dir)
    if export is not None and export[0].export.format != "none":
        from booktune.exporting.export import export_run

        cfg, folder = export
        exported = export_run(run_dir, folder, cfg.export, cfg.chat, overwrite=overwrite)
        files[f"export ({exported.format}, {exported.quant})"] = str(exported.files[0])
        if exported.commands:
            files["load it"] = exported.commands[0]
    print_summary(samples, before, after, files, seconds, answer_report)
    return RunResult(data_dir, run_dir, before, after, samples, files, answer_report)


def evaluate(run_dir: PathLike, data: PathLike | None = None, *, config: ConfigLike = None,
             **overrides: Any) -> RunResult:
    """What `run` measures, for a run trained on its own: held-out loss of the base model and of RUN's adapter on
    DATA's eval split (default: the DATA the run trained on), base and tuned continuations of held-out prompts and
    their voice distance. Recorded in RUN/booktune.json and RUN/report.html; returns a RunResult."""
    from booktune.dataset.io import check_data_dir
    from booktune.dataset.rows import heldout_rows
    from booktune.devices import pick_device
    from booktune.evaluation.basecache import BaseCache
    from booktune.evaluation.heldout import score
    from booktune.evaluation.placement import load_eval_base, with_adapter
    from booktune.model import load_tokenizer
    from booktune.runfolder import read_run, run_train_config

    e = build_config(config, overrides, SECTIONS["evaluate"]).eval
    meta = read_run(run_dir)
    t = run_train_config(run_dir, meta)
    data_dir = check_data_dir(data if data is not None else meta["data_dir"])
    started = time.perf_counter()
    device = pick_device(e.eval_device or t.device)
    base = load_eval_base(t, device, t.load_in_4bit is not False and device.startswith("cuda"))
    tokenizer = load_tokenizer(t.model)
    rows = heldout_rows(data_dir, tokenizer, max_seq_length=t.max_seq_length, truncation=t.truncation)
    cache = BaseCache.from_config(e.cache_base)
    before = score(base, rows, tokenizer, e.eval_batch_size, "held-out loss (base)", cache)
    tuned = with_adapter(base, Path(run_dir) / "adapter")
    measured = _measure_tuned(tuned, tokenizer, rows, data_dir, e, seed=t.seed, cache=cache)
    return _record(Path(run_dir), data_dir, before, *measured, started)


def _pipeline_folders(out: Path, *, resume: bool, overwrite: bool) -> tuple[Path, Any, Path]:
    """`booktune run`'s OUT, holding data/, run/ and export/, each an output folder of its own; checked before
    writing."""
    from booktune.exporting.export import EXPORT_FILE, EXPORT_LAYOUT
    from booktune.outputs import Layout, OutputDir
    from booktune.runfolder import open_run

    root = OutputDir.open(out, Layout("pipeline", ("data", "run", "export"), "data/stats.json"), overwrite=overwrite)
    data, run = root.claim("data"), open_run(root.claim("run"), resume=resume, overwrite=overwrite)
    export = root.claim("export")
    if export.is_dir():  # an earlier run's export stops looking finished until this run's replaces it
        OutputDir.open(export, EXPORT_LAYOUT, overwrite=overwrite).remove(EXPORT_FILE)
    return data, run, export


def _eval_base(cfg: Config, data_dir: Path, backend: Any) -> tuple[Any, Any, list[dict], bool]:
    """(base model, tokenizer, held-out rows, on its own device): the base that is scored before training and, on
    the training device, trained next (loaded once); `--eval-device` puts a second copy on another card."""
    from rich.markup import escape

    from booktune.console import console
    from booktune.dataset.rows import heldout_rows
    from booktune.devices import choose_precision
    from booktune.evaluation.placement import eval_placement, load_eval_base
    from booktune.model import load_tokenizer

    t = cfg.train
    tokenizer = load_tokenizer(t.model, trust_remote_code=t.trust_remote_code)
    rows = heldout_rows(data_dir, tokenizer, max_seq_length=t.max_seq_length, truncation=t.truncation)
    if not rows:
        console.print("[yellow]no held-out passages (books too short or eval_fraction 0): skipping held-out loss")
    prec = choose_precision(t.device, t.dtype, t.load_in_4bit, t.gradient_checkpointing)
    eval_device, eval_4bit = eval_placement(cfg.eval.eval_device, prec.device, prec.load_in_4bit)
    separate = eval_device != prec.device
    with console.status(f"loading {escape(t.model)}"):
        base = load_eval_base(t, eval_device, eval_4bit) if separate else backend.load_base(
            t.model, prec, max_seq_length=t.max_seq_length, trust_remote_code=t.trust_remote_code)
    return base, tokenizer, rows, separate


def chat(run_dir: PathLike, prompt: str | None = None, *, config: ConfigLike = None, **overrides: Any) -> str | None:
    """Talk to a trained run. With `prompt`: print and return one reply; without: an interactive, streaming session."""
    from booktune.inference.session import chat as session

    return session(run_dir, prompt, build_config(config, overrides, SECTIONS["chat"]).chat)


def export(run_dir: PathLike, out: PathLike | None = None, *, config: ConfigLike = None, overwrite: bool = False,
           **overrides: Any):
    """Export a finished run (`format`: gguf, ollama, merged or lora-gguf; `quant`: the weight type) into `out`
    (default RUN/export/<format>), with a model card; `push_to_hub="org/name"` uploads it. Returns an
    ExportResult (out, format, quant, files, commands)."""
    from booktune.exporting.export import export_run

    cfg = build_config(config, overrides, SECTIONS["export"])
    return export_run(run_dir, out, cfg.export, cfg.chat, overwrite=overwrite)


def plan(*, gpu_mem: float | None = None, config: ConfigLike = None, **overrides: Any) -> list[str]:
    """Predicted peak GPU memory of a training run, from the model's config alone, and whether it fits a card of
    `gpu_mem` GiB (default: this machine's GPU, else 24). Returns the lines it prints."""
    from booktune.console import console
    from booktune.training.backends import planned
    from booktune.training.memory import GIB, card_memory, describe, load_shape
    from booktune.training.rate import rate_line, with_learning_rate
    from booktune.training.scaleout import describe_split, plan_gpus

    t = build_config(config, overrides, SECTIONS["plan"]).train
    backend = planned(t.backend)
    card = gpu_mem * GIB if gpu_mem else (card_memory() or 24 * GIB)
    shape = load_shape(t.model, trust_remote_code=t.trust_remote_code)
    t, rate_why = with_learning_rate(t, shape)
    lines = describe(shape, t, backend, card)
    lines.insert(1, f"  {rate_line(t, rate_why)}")
    gpus = plan_gpus(t.gpus)
    if gpus > 1:
        lines += describe_split(shape, t, backend, card, gpus)
    for line in lines:
        console.print(line, markup=False)
    return lines


def report(run_dir: PathLike, data: PathLike | None = None) -> tuple[Path, Path]:
    """Write RUN/report.html (self-contained, offline) and RUN/report.md; returns their paths."""
    from booktune.report import write_report

    return write_report(run_dir, data)


def preview(data: PathLike, *, split: str = "train", task: str = "all", config: ConfigLike = None,
            **overrides: Any) -> tuple[Any, list[dict], list[Any]]:
    """(tokenizer, conversations, examples): DATA's `split` as the model would train on it (its tokenizer and chat
    template), for `template.render_preview` and `template.mask_summary`; `task` keeps one task's examples
    ('continue' or 'answer'; 'all': both)."""
    from booktune.config import TASKS
    from booktune.dataset.io import DataError, load_conversations
    from booktune.model import load_tokenizer
    from booktune.template import build_example

    t = build_config(config, overrides, SECTIONS["preview"]).train
    if task not in (*TASKS, "all"):
        raise DataError(f"--task {task!r}: use {', '.join(TASKS)} or all")
    rows = [r for r in load_conversations(data, split) if task in ("all", r.get("task", "continue"))]
    tokenizer = load_tokenizer(t.model, trust_remote_code=t.trust_remote_code)
    examples = [build_example(tokenizer, r["messages"], name=str(r.get("id", i))) for i, r in enumerate(rows)]
    return tokenizer, rows, examples


def inspect(book: PathLike, *, pages: list[int] | None = None, config: ConfigLike = None,
            **overrides: Any) -> list[Any]:
    """What extraction kept and removed on each page of a PDF book, and why (ingest.inspect.render prints it)."""
    from booktune.ingest import BookError
    from booktune.ingest.pdf import explain_pdf

    p = build_config(config, overrides, SECTIONS["inspect"]).prepare
    book = Path(book)
    if book.suffix.lower() != ".pdf":
        raise BookError(book, "inspect reads PDF books only")
    reports = explain_pdf(book, password=p.password, ocr=p.ocr, pages=pages)
    if pages and not reports:
        raise BookError(book, "no such page (the book has fewer pages)")
    return reports


def notebook(books: Sequence[PathLike] | PathLike, out: PathLike, *, kernel: str = "python3",
             config: ConfigLike = None, overwrite: bool = False, **overrides: Any) -> Path:
    """Write a self-contained Jupyter notebook for one data source (`books`) at `out`: install, config, then
    prepare, preview, plan, train, evaluate, chat and export cells through this API, run in the Jupyter kernel `kernel`.
    Its config cell spells out the settings given (file and overrides) that differ from the defaults. A notebook
    booktune did not write is never replaced; its folder may hold other files only with `overwrite`."""
    from booktune.console import console
    from booktune.notebooks import spelled_out, write_notebook

    cell = spelled_out(build_config(config, overrides, SECTIONS["notebook"]))
    path = write_notebook([Path(b) for b in _paths(books)], out, cell, kernel=kernel, overwrite=overwrite)
    console.print(f"notebook: {path}", markup=False, highlight=False)
    return path


def doctor() -> list[str]:
    """What a bug report needs: library versions, the CPU's instructions and the dtype it trains in, CUDA and each
    card with its free memory, whether the default model is cached. Returns the lines (`booktune doctor` prints
    them)."""
    from booktune.checkup import describe, diagnose

    return describe(diagnose())


def _paths(books: Sequence[PathLike] | PathLike) -> list[PathLike]:
    return [books] if isinstance(books, (str, Path)) else list(books)
