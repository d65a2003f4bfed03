"""What `booktune run` measures on the held-out split, printed as it goes: loss before and after (continuations, and
answers to held-out questions), the voice of base and tuned continuations of the same prompts, and the voice and
attribution of their answers to the same questions."""

from __future__ import annotations

from typing import Any

from booktune.config import EvalConfig
from booktune.console import console
from booktune.evaluation.basecache import OFF, BaseCache, rows_digest

KEPT = ", kept from an earlier evaluation"  # after a base figure read back from the cache (basecache.py)


def sample_batch(e: EvalConfig) -> int:
    """Prompts sampled together: `sample_batch_size`, or 32 where it is 0. A decoding step reads the weights once
    for the whole batch, so one large batch is faster than several small ones on a CPU and a GPU alike, and on a CPU
    finished replies also leave the batch (inference/decoding.py); 32 rows of an 8B model's KV cache at the
    answers' length take about 3 GiB beside it (docs/benchmarks.md)."""
    return e.sample_batch_size or 32


def score(model: Any, rows: list[dict], tokenizer: Any, batch_size: int, label: str,
          cache: BaseCache = OFF) -> dict[str, Any]:
    """Held-out loss, perplexity and bits per byte of `model` on the continuation `rows`, and under 'answer' the same
    on the answer rows (the passage given its question); {} without rows. One printed line each. With `cache` (the
    base model's), figures measured before on the same rows are read back instead."""
    answer_label = label.replace("loss", "answer loss")

    def measure() -> dict[str, Any]:
        result = _score(model, [r for r in rows if r.get("task", "continue") == "continue"], tokenizer, batch_size,
                        label)
        answers = [r for r in rows if r.get("task") == "answer"]
        if answers:
            result["answer"] = _score(model, answers, tokenizer, batch_size, answer_label)
        return result

    inputs = {"rows": rows_digest(rows), "batch_size": batch_size}
    result, kept = (cache if rows else OFF).get_or_measure(model, "loss", inputs, measure)
    for name, figures in ((label, result), (answer_label, result.get("answer"))):
        if figures:
            console.print(f"{name}: {figures['loss']:.4f} (perplexity {figures['perplexity']:.2f}, "
                          f"{figures['bits_per_byte']:.3f} bits/byte, {figures['tokens']:,} tokens)"
                          + (KEPT if kept else ""))
    return result


def _score(model: Any, rows: list[dict], tokenizer: Any, batch_size: int, label: str) -> dict[str, Any]:
    from booktune.evaluation.loss import heldout_loss

    if not rows:
        return {}
    return heldout_loss(model, rows, pad_id=tokenizer.pad_token_id, batch_size=batch_size, label=label,
                        tokenizer=tokenizer).as_dict()


def voice(model: Any, tokenizer: Any, held: list[dict], e: EvalConfig, *, seed: int,
          cache: BaseCache = OFF) -> tuple[list[Any], dict]:
    """Base and tuned continuations of the same held-out prompts, and their voice distance to the author; the base
    ones read back from `cache` where an earlier evaluation sampled them alike."""
    from booktune.evaluation.compare import compare_continuations
    from booktune.evaluation.voice import voice_report

    n = max(e.samples, e.voice_prompts)
    if not held or n == 0:
        return [], {}
    hits = cache.hits
    with console.status(f"continuing {min(n, len(held))} held-out prompts with the base and the tuned model"):
        pairs = compare_continuations(model, tokenizer, held, n=n, max_new_tokens=e.max_new_tokens,
                                      temperature=e.temperature, top_p=e.top_p, seed=seed,
                                      batch_size=sample_batch(e), cache=cache)
    report = voice_report([p.reference for p in pairs], [p.base for p in pairs], [p.tuned for p in pairs])
    report["prompts"] = len(pairs)
    report["continuations"] = [p.__dict__ for p in pairs]
    note = ", the base's continuations" + KEPT.removeprefix(",") if cache.hits > hits else ""
    console.print(f"voice distance to the author (Burrows' Delta, lower is closer): base {report['delta_base']:.3f}"
                  f" -> tuned {report['delta_tuned']:.3f}{note}")
    return pairs[: e.samples], report


def answers(model: Any, tokenizer: Any, held: list[dict], train: list[dict], e: EvalConfig, *,
            seed: int, cache: BaseCache = OFF) -> dict[str, Any]:
    """Base and tuned answers to the same held-out questions, measured (evaluation/answers.py); {} without any. The
    base answers are read back from `cache` where an earlier evaluation sampled them alike."""
    from booktune.evaluation.answers import answer_measures, compare_answers, training_passages

    trained_authors = set(training_passages(train))  # an author held out whole (--eval-books) has no profile
    held = [r for r in held if r.get("task") == "answer" and r["author"] in trained_authors]
    n = len(held) if e.answer_questions < 0 else min(e.answer_questions, len(held))
    if n == 0:
        return {}
    hits = cache.hits
    with console.status(f"answering {n} held-out questions with the base and the tuned model"):
        questions, base, tuned = compare_answers(model, tokenizer, held, n=n,
                                                 max_new_tokens=e.answer_tokens, temperature=e.temperature,
                                                 top_p=e.top_p, seed=seed, batch_size=sample_batch(e),
                                                 cache=cache)
    report = answer_measures(questions, base, tuned, train)
    report["samples"] = [{"id": q["id"], "question": q["question"], "base": b.text, "tuned": t.text,
                          "reference": q["passage"]} for q, b, t in zip(questions, base, tuned)]
    for line in answer_lines(report):
        console.print(line, markup=False, highlight=False)
    if cache.hits > hits:
        console.print(f"the base model's answers{KEPT}")
    return report


def answer_lines(report: dict[str, Any]) -> list[str]:
    """The answers' figures in three lines, as `booktune run` prints them."""
    d, w, ended, acc = report["delta"], report["words"], report["ended"], report["attribution"]
    return [f"answers to {report['questions']} held-out questions, Burrows' Delta to the author's training text: "
            f"base {d['base']:.3f} -> tuned {d['tuned']:.3f} (the author's own answers: {d['author']:.3f})",
            f"answer length: base {w['base']:.0f} -> tuned {w['tuned']:.0f} words (the author's: {w['author']:.0f});"
            f" ended at end of turn: base {ended['base']:.0%} -> tuned {ended['tuned']:.0%}",
            f"answers attributed to the author: base {acc['base']:.0%} -> tuned {acc['tuned']:.0%} (the author's "
            f"own: {acc['author']:.0%}; chance {report['attribution_chance']:.0%} among "
            f"{len(report['attribution_authors'])} authors)"]
