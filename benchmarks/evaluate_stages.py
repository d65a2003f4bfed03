"""Where `booktune evaluate` spends its time: each measurement of a trained run timed on its own.

Runs `booktune.evaluate` (the same measurements `booktune run` makes after training) on a copy of RUN, so RUN's own
booktune.json and report stay as they are, and times each stage as it returns: the held-out loss of each task for
the base and the tuned model, the base and tuned continuations of held-out prompts, and the base and tuned answers
to the held-out questions. The base model is measured too, not read back from the cache of earlier evaluations,
unless --cache-base. Prints one JSON object (seconds per stage, the whole call, the settings that set the
cost) and writes it to --out.

    python benchmarks/evaluate_stages.py outputs/demo/run --data outputs/demo/data
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if (HERE.parent / "src" / "booktune").is_dir():  # a checkout; an installed booktune works too
    sys.path.insert(0, str(HERE.parent / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished run folder (booktune run's OUT/run, or booktune train's RUN)")
    ap.add_argument("--data", type=Path, default=None, help="its DATA folder (default: the one the run recorded)")
    ap.add_argument("--out", type=Path, default=Path("evaluate_stages.json"))
    ap.add_argument("--cache-base", action="store_true",
                    help="read the base model's figures back from earlier evaluations (off: every stage measured)")
    a = ap.parse_args()
    import booktune
    import booktune.evaluation.heldout as heldout
    from booktune.evaluation import loss

    timed: list[dict] = []
    for module, name in ((loss, "heldout_loss"), (heldout, "voice"), (heldout, "answers")):
        setattr(module, name, timer(getattr(module, name), name, timed))
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(a.run, run, ignore=shutil.ignore_patterns("checkpoints"))
        started = time.perf_counter()
        result = booktune.evaluate(run, a.data, cache_base=a.cache_base)
        whole = time.perf_counter() - started
    row = {"run": str(a.run), "stages": timed, "evaluate_s": round(whole, 1), "cache_base": a.cache_base,
           "questions": result.answers.get("questions"), "eval_config": eval_defaults()}
    print(json.dumps(row, indent=1))
    a.out.write_text(json.dumps(row) + "\n")


def timer(fn, name: str, timed: list[dict]):
    @functools.wraps(fn)
    def timed_fn(*args, **kwargs):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        # held-out losses name themselves ("held-out answer loss (tuned)"); voice and answers run base and tuned
        timed.append({"stage": kwargs.get("label", name), "seconds": round(time.perf_counter() - started, 1)})
        return result

    return timed_fn


def eval_defaults() -> dict:
    """The settings that set the cost, as `booktune evaluate` runs by default (and the demo did)."""
    from booktune.config import EvalConfig

    e = EvalConfig()
    return {k: getattr(e, k) for k in ("voice_prompts", "max_new_tokens", "answer_questions", "answer_tokens",
                                       "eval_batch_size", "sample_batch_size")}


if __name__ == "__main__":
    main()
