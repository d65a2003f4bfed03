"""How the `model` question writer does on a sample of a prepared DATA folder's training passages: the questions it
writes, the scores it gives them, and the seconds each step takes. Not part of the package.

    booktune prepare examples/books --out outputs/demo/data     # once
    python dev/question_writer.py outputs/demo/data --per-book 6 --model default
"""

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    from booktune.dataset import load_conversations
    from booktune.dataset.questions import Context
    from booktune.dataset.questions.model import load_writer, score, write

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a prepared DATA folder")
    ap.add_argument("--per-book", type=int, default=6, help="passages per book, spread over its training split")
    ap.add_argument("--model", default="default", help="the question model")
    a = ap.parse_args()
    books: dict[str, list[dict]] = {}
    for r in load_conversations(a.data, "train"):
        if r["task"] == "continue":
            books.setdefault(r["book"], []).append(r)
    picked = [r for rows in books.values() for r in rows[5::17][: a.per_book]]
    started = time.perf_counter()
    model, tokenizer = load_writer(Context(a.model))
    loaded = time.perf_counter()
    questions = write(model, tokenizer, [r["passage"] for r in picked])
    written = time.perf_counter()
    scores = score(model, tokenizer, [r["passage"] for r in picked], questions)
    scored = time.perf_counter()
    print(json.dumps({"model": a.model, "passages": len(picked), "load_s": round(loaded - started, 1),
                      "write_s": round(written - loaded, 1), "score_s": round(scored - written, 1),
                      "pairs": [{"id": r["id"], "question": q, "score": s}
                                for r, q, s in zip(picked, questions, scores)]}, indent=1))


if __name__ == "__main__":
    main()
