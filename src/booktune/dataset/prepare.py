"""The prepare stage: books in, a DATA folder of conversations out (see booktune.dataset.build for the layout)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from booktune.config import PrepareConfig
from booktune.console import console, show
from booktune.dataset.build import DATA_LAYOUT, BookRows, book_rows, book_slug, is_named, write_dataset, write_texts
from booktune.dataset.format import check_prompt_templates
from booktune.dataset.questions import Context
from booktune.dataset.stats import percentiles, stats_table, token_lengths
from booktune.dataset.tasks import apply_tasks
from booktune.errors import BooktuneError
from booktune.outputs import OutputDir, reached
from booktune.version import __version__


class PrepareError(BooktuneError):
    """Nothing usable to prepare; the message lists why."""


@dataclass
class PrepareResult:
    out: Path
    stats: dict[str, Any]
    skipped: list[tuple[str, str]]


def prepare_data(inputs: Sequence[str | Path], out: str | Path, p: PrepareConfig, *, model: str | None = "default",
                 trust_remote_code: bool = False, config: dict[str, Any] | None = None,
                 overwrite: bool = False) -> PrepareResult:
    """Extract, clean, chunk and format books; write DATA; print and return the stats. `model`'s tokenizer counts
    tokens per example (None: no count); `config` is recorded in stats.json. DATA may hold only what booktune wrote
    there, unless `overwrite` (other files are kept either way)."""
    from booktune.ingest import discover, load_books

    check_prompt_templates(p.system_prompt, p.user_prompt, p.answer_prompt)
    started = time.perf_counter()
    found = discover(inputs)  # every input is checked before anything is written
    folder = OutputDir.open(out, DATA_LAYOUT, overwrite=overwrite)
    books, skipped_books = load_books(found.books, workers=p.workers, password=p.password, ocr=p.ocr)
    skipped = found.skipped + [(str(s.path), s.reason) for s in skipped_books]
    check_eval_books(p.eval_books, [b.path for b in books] + [s.path for s in skipped_books])
    kept, rows = split_books(books, p, skipped)
    questions = apply_tasks(rows, p, Context(p.question_model or model or "default", trust_remote_code, folder))

    folder.remove("stats.json")  # the completion marker goes first, and comes back last
    reached("prepare:marker-removed")
    write_texts(folder, kept, [r.slug for r in rows])
    reached("prepare:texts")
    write_dataset(folder, [x for r in rows for x in r.train], [x for r in rows for x in r.eval])
    reached("prepare:examples")
    stats = build_stats(kept, rows, skipped, model=model, trust_remote_code=trust_remote_code)
    stats.update(version=__version__, config=config or {}, seconds=round(time.perf_counter() - started, 1),
                 prompts={"system_prompt": p.system_prompt, "user_prompt": p.user_prompt,
                          "answer_prompt": p.answer_prompt}, tasks=p.tasks.split(","))
    if questions is not None:
        stats["questions"] = questions
    folder.write_json("stats.json", stats)
    show(stats_table(stats))
    report_skipped(skipped, [(str(b.path), w) for b in kept for w in b.warnings])
    return PrepareResult(folder.path, stats, skipped)


def split_books(books: list[Any], p: PrepareConfig, skipped: list[tuple[str, str]]) -> tuple[list[Any], list[BookRows]]:
    """(books kept, their train/eval conversations); a book shorter than one passage joins `skipped`."""
    kept, rows, taken = [], [], set()
    for book in books:
        r = book_rows(book, book_slug(book.path, taken), chunk_words=p.chunk_words, overlap_words=p.overlap_words,
                      eval_fraction=p.eval_fraction, system_prompt=p.system_prompt, user_prompt=p.user_prompt,
                      hold_out=is_named(book.path, tuple(p.eval_books)))
        if r.words < p.chunk_words:
            skipped.append((str(book.path),
                            f"shorter than one passage ({r.words} words < chunk_words {p.chunk_words})"))
            continue
        kept.append(book)
        rows.append(r)
    if not rows:
        reasons = "; ".join(f"{path}: {why}" for path, why in skipped) or "no books"
        raise PrepareError(f"no usable books ({reasons})")
    return kept, rows


def build_stats(books: list[Any], rows: list[BookRows], skipped: list[tuple[str, str]], *,
                model: str | None, trust_remote_code: bool) -> dict[str, Any]:
    per_book = [
        {"slug": r.slug, "path": str(b.path), "title": b.title, "author": b.author, "pages": b.pages,
         "words": r.words, "notes": len(b.notes), "train": len(r.train), "eval": len(r.eval),
         "gap_words": r.gap_words, "split_by": r.split_by, "warnings": b.warnings}
        for b, r in zip(books, rows)
    ]
    totals = {k: sum(b[k] or 0 for b in per_book) for k in ("pages", "words", "notes", "train", "eval")}
    totals["books"] = len(per_book)
    stats: dict[str, Any] = {"books": per_book, "totals": totals,
                             "skipped": [{"path": p, "reason": why} for p, why in skipped]}
    if model is not None:
        from booktune.model import load_tokenizer

        tokenizer = load_tokenizer(model, trust_remote_code=trust_remote_code)
        lengths = token_lengths(tokenizer, [x for r in rows for x in (*r.train, *r.eval)])
        stats["tokens"] = {"model": model, **percentiles(lengths)}
    return stats


def check_eval_books(names: Sequence[str], paths: list[Path]) -> None:
    """Every name in --eval-books must match a book, or the user would evaluate on text they meant to hold out."""
    unknown = [n for n in names if not any(is_named(Path(p), (n,)) for p in paths)]
    if unknown:
        known = ", ".join(sorted(Path(p).name for p in paths))
        raise PrepareError(f"config field prepare.eval_books: no book named {', '.join(map(repr, unknown))} "
                           f"(books: {known})")


def report_skipped(skipped: list[tuple[str, str]], warned: list[tuple[str, str]] = ()) -> None:
    """What was not read, and what was read only in part, one line per file."""
    for path, why in skipped:
        console.print(f"[yellow]skipped[/] {escape(path)}: {escape(why)}")
    for path, what in warned:
        console.print(f"[yellow]warning[/] {escape(path)}: {escape(what)}")
