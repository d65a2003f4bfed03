"""load_books: read many books, one process per book, with a progress bar; bad books are skipped, not fatal."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import nullcontext
from pathlib import Path

from booktune.ingest.dispatch import load_book
from booktune.ingest.types import Book, BookError, Skipped


def _load_one(path: Path, password: str | None, ocr: bool) -> Book | Skipped:
    # Runs in a worker: return the failure as a value so it never has to travel back as an exception.
    try:
        return load_book(path, password=password, ocr=ocr)
    except BookError as e:
        return Skipped(path=Path(path), reason=e.reason)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _context() -> multiprocessing.context.BaseContext:
    # fork on Linux: spawn (and forkserver) re-run the caller's __main__ in every worker, which fails for
    # `python - <<EOF` and for scripts without an `if __name__ == "__main__"` guard. Readers use no threads,
    # and prepare runs before torch is imported. Elsewhere fork is unsafe (macOS) or missing (Windows).
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def _in_pool(paths: list[Path], workers: int, password: str | None, ocr: bool, tick) -> dict[int, Book | Skipped]:
    results: dict[int, Book | Skipped] = {}
    crashed: list[int] = []
    ctx = _context()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(_load_one, p, password, ocr): i for i, p in enumerate(paths)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                results[i] = fut.result()
            except BrokenProcessPool:
                crashed.append(i)  # a worker died; every unfinished book lands here
                continue
            tick(paths[i])
    # Retry each book the crash took down alone, so only the one that kills its process is skipped.
    for i in sorted(crashed):
        try:
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                results[i] = pool.submit(_load_one, paths[i], password, ocr).result()
        except BrokenProcessPool:
            results[i] = Skipped(path=paths[i], reason="the reader crashed on this file (its process died)")
        tick(paths[i])
    return results


def load_books(paths: Sequence[Path], *, workers: int | None = None, password: str | None = None,
               ocr: bool = False, progress: bool = True) -> tuple[list[Book], list[Skipped]]:
    """Read books in parallel, one process per book (inline for one book or workers == 1).

    Bad books become Skipped entries and the rest go on. Both lists follow the order of `paths`.
    """
    paths = [Path(p) for p in paths]
    workers = max(1, min(workers or _cpu_count(), len(paths) or 1))
    bar = None
    if progress:
        from booktune.console import progress_bar

        bar = progress_bar()
    with bar if bar is not None else nullcontext():
        task = bar.add_task("Reading books", total=len(paths), info="") if bar is not None else None

        def tick(path: Path) -> None:
            if bar is not None:
                bar.update(task, advance=1, info=path.name)

        if workers == 1:
            results = {}
            for i, p in enumerate(paths):
                results[i] = _load_one(p, password, ocr)
                tick(p)
        else:
            results = _in_pool(paths, workers, password, ocr, tick)
    ordered = [results[i] for i in range(len(paths))]
    return [r for r in ordered if isinstance(r, Book)], [r for r in ordered if isinstance(r, Skipped)]
