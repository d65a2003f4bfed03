"""Seconds and memory the `model` question writer takes to write and score the questions of a prepared DATA folder's
training passages, at several batch sizes.

The writer is a model booktune loads (`--model`: the default or a local folder), or random bf16 weights of a real
shape (`--shape llama-8b`) with that model's tokenizer and chat template: random weights seldom reach an end of turn,
so every reply runs to its limit (60 tokens a question, 6 a score) and the timing is an upper bound.

    booktune prepare examples/books --out outputs/demo/data        # once
    python benchmarks/question_writer.py outputs/demo/data --batches 8 16 32
    python benchmarks/question_writer.py outputs/demo/data --shape llama-8b --batches 8 16 32
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def passages(data: Path, n: int) -> list[str]:
    from booktune.dataset import load_conversations

    texts = [r["passage"] for r in load_conversations(data, "train") if r["task"] == "continue"]
    return texts[:n] if n > 0 else texts


def timed(model: Any, tokenizer: Any, texts: list[str], batch: int) -> dict[str, Any]:
    """One write-and-score pass over `texts` in batches of `batch`: seconds, peak GPU memory, what came back."""
    import torch

    import booktune.dataset.questions.model as writer

    writer.BATCH = batch
    cuda = next(model.parameters()).device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    questions = writer.write(model, tokenizer, texts)
    written = time.perf_counter()
    scores = writer.score(model, tokenizer, texts, questions)
    scored = time.perf_counter()
    return {"batch": batch, "passages": len(texts), "write_s": round(written - started, 1),
            "score_s": round(scored - written, 1),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
            "questions": sum(bool(q) for q in questions), "scored": sum(s is not None for s in scores),
            "first": questions[:3]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a prepared DATA folder")
    ap.add_argument("--model", default="default", help="the writer, or the tokenizer of --shape")
    ap.add_argument("--shape", default=None, help="random weights of this shape (benchmarks/bench_models.py)")
    ap.add_argument("--passages", type=int, default=0, help="the first N training passages (0: all)")
    ap.add_argument("--batches", type=int, nargs="+", default=[8])
    ap.add_argument("--out", type=Path, default=None, help="also write the results here, as JSON")
    a = ap.parse_args()
    from bench_models import random_model

    from booktune.dataset.questions import Context
    from booktune.dataset.questions.model import load_writer
    from booktune.devices import pick_device
    from booktune.model import load_tokenizer

    started = time.perf_counter()
    if a.shape:
        tokenizer = load_tokenizer(a.model)
        model = random_model(a.shape, tokenizer, pick_device(None))
    else:
        model, tokenizer = load_writer(Context(a.model))
    loaded = round(time.perf_counter() - started, 1)
    texts = passages(a.data, a.passages)
    timed(model, tokenizer, texts[: max(a.batches)], max(a.batches))  # warm-up: kernels, allocator
    runs = [timed(model, tokenizer, texts, b) for b in a.batches]
    result = {"model": a.model, "shape": a.shape, "device": str(next(model.parameters()).device),
              "params": sum(p.numel() for p in model.parameters()), "load_s": loaded, "runs": runs}
    print(json.dumps(result, indent=1))
    if a.out:
        a.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
