"""The prepare stage: books in, a DATA folder of conversations out (see booktune.dataset.build for the layout)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from booktune import __version__
from booktune.console import console
from booktune.dataset.build import BookRows, book_rows, book_slug, is_named, write_dataset, write_texts
from booktune.dataset.format import check_prompt_templates
from booktune.dataset.stats import percentiles, stats_table, token_lengths
from booktune.fsutil import atomic_write_json


class PrepareError(ValueError):
    """Nothing usable to prepare; the message lists why."""


@dataclass
class PrepareResult:
    out: Path
    stats: dict[str, Any]
    skipped: list[tuple[str, str]]


def prepare_data(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    chunk_words: int = 350,
    overlap_words: int = 50,
    eval_fraction: float = 0.1,
    eval_books: Sequence[str] = (),
    system_prompt: str,
    user_prompt: str,
    workers: int | None = None,
    password: str | None = None,
    ocr: bool = False,
    model: str | None = "default",
    trust_remote_code: bool = False,
    config: dict[str, Any] | None = None,
) -> PrepareResult:
    """Extract, clean, chunk and format books; write DATA; print and return the stats."""
    from booktune.ingest import find_books, load_books

    check_prompt_templates(system_prompt, user_prompt)
    out = Path(out)
    started = time.perf_counter()
    books, skipped_books = load_books(find_books(inputs), workers=workers, password=password, ocr=ocr)
    skipped = [(str(s.path), s.reason) for s in skipped_books]
    check_eval_books(eval_books, [b.path for b in books] + [s.path for s in skipped_books])
    kept, rows, taken = [], [], set()
    for book in books:
        r = book_rows(book, book_slug(book.path, taken), chunk_words=chunk_words, overlap_words=overlap_words,
                      eval_fraction=eval_fraction, system_prompt=system_prompt, user_prompt=user_prompt,
                      hold_out=is_named(book.path, tuple(eval_books)))
        if r.words < chunk_words:
            skipped.append((str(book.path), f"shorter than one passage ({r.words} words < chunk_words {chunk_words})"))
            continue
        kept.append(book)
        rows.append(r)
    if not rows:
        reasons = "; ".join(f"{p}: {why}" for p, why in skipped) or "no books"
        raise PrepareError(f"no usable books ({reasons})")
    write_texts(out, kept, [r.slug for r in rows])
    train = [x for r in rows for x in r.train]
    held = [x for r in rows for x in r.eval]
    write_dataset(out, train, held)
    stats = build_stats(kept, rows, skipped, model=model, trust_remote_code=trust_remote_code)
    stats.update(version=__version__, config=config or {}, seconds=round(time.perf_counter() - started, 1),
                 prompts={"system_prompt": system_prompt, "user_prompt": user_prompt})
    atomic_write_json(out / "stats.json", stats)  # last: marks the folder complete
    console.print(stats_table(stats))
    report_skipped(skipped)
    return PrepareResult(out, stats, skipped)


def build_stats(books: list[Any], rows: list[BookRows], skipped: list[tuple[str, str]], *,
                model: str | None, trust_remote_code: bool) -> dict[str, Any]:
    per_book = [
        {"slug": r.slug, "path": str(b.path), "title": b.title, "author": b.author, "pages": b.pages,
         "words": r.words, "notes": len(b.notes), "train": len(r.train), "eval": len(r.eval),
         "gap_words": r.gap_words, "split_by": r.split_by}
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


def report_skipped(skipped: list[tuple[str, str]]) -> None:
    for path, why in skipped:
        console.print(f"[yellow]skipped[/] {path}: {why}")
