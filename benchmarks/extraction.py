"""Extraction benchmark: booktune vs naive get_text() vs pymupdf4llm on PDFs with exact truth.

    python benchmarks/extraction.py ../shared/corpus
    python benchmarks/extraction.py DIR --engines booktune naive --out /tmp/extracted

DIR holds NAME.pdf with NAME.truth.txt beside it (and optionally NAME.notes.txt,
NAME.meta.json with running heads). Each engine runs single-process (one core);
the table is the reference scorer's (shared/tools/score_extraction.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import pymupdf

from booktune.ingest.pdf import extract_pdf  # imported before timing starts

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCORER = ROOT / ".." / "shared" / "tools" / "score_extraction.py"


def booktune_engine(path: Path) -> tuple[str, int]:
    r = extract_pdf(path)
    return r.text, r.pages


def naive_engine(path: Path) -> tuple[str, int]:
    with pymupdf.open(path) as doc:
        return "".join(page.get_text() for page in doc), doc.page_count


def pymupdf4llm_engine(path: Path) -> tuple[str, int]:
    import pymupdf4llm

    with pymupdf.open(path) as doc:
        pages = doc.page_count
    return pymupdf4llm.to_markdown(str(path), show_progress=False), pages


ENGINES = {"booktune": booktune_engine, "naive": naive_engine, "pymupdf4llm": pymupdf4llm_engine}


def load_scorer(path: Path):
    if not path.is_file():
        sys.exit(f"error: {path}: scorer not found (pass --scorer)")
    spec = importlib.util.spec_from_file_location("score_extraction", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_engine(name: str, books: list[Path], out: Path, scorer) -> tuple[list, float]:
    """Extract every book (timed), write NAME.txt under out/name, score against the truth."""
    fn = ENGINES[name]
    (out / name).mkdir(parents=True, exist_ok=True)
    rows, pages, seconds = [], 0, 0.0
    for pdf in books:
        t0 = time.perf_counter()
        text, n = fn(pdf)
        seconds += time.perf_counter() - t0
        pages += n
        target = out / name / (pdf.stem + ".txt")
        target.write_text(text, encoding="utf-8")
        truth = pdf.with_name(pdf.stem + ".truth.txt")
        rows.append((pdf.stem, scorer.score_files(str(truth), str(target))))
    return rows, pages / seconds if seconds else float("inf")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="folder of NAME.pdf + NAME.truth.txt")
    ap.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES))
    ap.add_argument("--scorer", type=Path, default=DEFAULT_SCORER, help="path to score_extraction.py")
    ap.add_argument("--out", type=Path, help="keep the extracted texts here (default: a temp folder)")
    args = ap.parse_args(argv)
    books = sorted(p for p in args.folder.glob("*.pdf") if p.with_name(p.stem + ".truth.txt").is_file())
    if not books:
        sys.exit(f"error: {args.folder}: no NAME.pdf with NAME.truth.txt beside it")
    scorer = load_scorer(args.scorer)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for name in args.engines:
            rows, speed = run_engine(name, books, out, scorer)
            print(f"\n## {name}: {speed:,.0f} pages/s (one process)\n")
            print(scorer.table(rows))


if __name__ == "__main__":
    main()
