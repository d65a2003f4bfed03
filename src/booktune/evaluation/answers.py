"""Does the tuned model answer as the author? Base and tuned answers to the held-out questions, measured.

- Voice: Burrows' Delta of each model's answers to the author's training text, beside the Delta of the author's own
  held-out passages (the answers to those questions) to it: that last figure is the floor a model could reach.
  Per author, then averaged weighted by questions, so two books' authors are each compared with their own text.
- Length: words per answer; and how often an answer ends at the end-of-turn token rather than at its token limit,
  which by default leaves room for the author's own length (`answer_limit`).
- Attribution: the share of answers that the nearest-author classifier (attribution.py), fitted on the training
  passages, gives to the author who was asked; the author's own held-out passages give its ceiling.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from booktune.evaluation.attribution import fit, with_distractor
from booktune.evaluation.basecache import OFF, BaseCache
from booktune.evaluation.compare import paired_replies, pick_records
from booktune.evaluation.voice import burrows_delta, tokenize_words

MODELS = ("base", "tuned", "author")


def compare_answers(peft_model: Any, tokenizer: Any, held: list[dict[str, Any]], *, n: int, max_new_tokens: int,
                    temperature: float, top_p: float, seed: int,
                    batch_size: int = 16, cache: BaseCache = OFF) -> tuple[list[dict[str, Any]], list, list]:
    """(questions, base replies, tuned replies) for `n` held-out answer examples spread over the split; answers
    of up to `max_new_tokens` tokens (0: `answer_limit`)."""
    questions = pick_records([r for r in held if r.get("task") == "answer"], n)
    if not questions:
        return [], [], []
    limit = max_new_tokens or answer_limit(tokenizer, questions)
    base, tuned = paired_replies(peft_model, tokenizer, questions, max_new_tokens=limit,
                                 temperature=temperature, top_p=top_p, seed=seed, batch_size=batch_size, cache=cache)
    return questions, base, tuned


def answer_limit(tokenizer: Any, questions: list[dict[str, Any]]) -> int:
    """Tokens enough for an answer as long as the author's longest passage among `questions`, and a tenth more:
    answers cut well short of the author's length would be compared with longer texts than themselves, and could
    never show whether the model ends its answers where the author does."""
    longest = max(len(tokenizer(q["passage"], add_special_tokens=False)["input_ids"]) for q in questions)
    return -(-longest * 11 // 10)


def training_passages(train: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each author's training passages, once each (a passage appears once per task)."""
    seen, out = set(), defaultdict(list)
    for r in train:
        if r.get("passage_id", r["id"]) not in seen:
            seen.add(r.get("passage_id", r["id"]))
            out[r["author"]].append(r["passage"])
    return dict(out)


def answer_measures(questions: list[dict[str, Any]], base: list, tuned: list, train: list[dict[str, Any]],
                    n_words: int = 100) -> dict[str, Any]:
    """The figures of the module docstring for the replies `base` and `tuned` (inference.generate.Reply) to
    `questions`, against the training conversations `train`."""
    texts = {"base": [b.text for b in base], "tuned": [t.text for t in tuned],
             "author": [q["passage"] for q in questions]}
    authors = [q["author"] for q in questions]
    training = training_passages(train)
    return {
        "questions": len(questions),
        "n_words": n_words,
        "delta": delta_to_training(texts, authors, training, n_words),
        "words": {m: statistics.fmean(len(tokenize_words(t)) for t in texts[m]) for m in MODELS},
        "ended": {"base": share(b.ended for b in base), "tuned": share(t.ended for t in tuned)},
        **attribution(texts, authors, training),
    }


def share(flags: Any) -> float:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else 0.0


def delta_to_training(texts: dict[str, list[str]], authors: list[str], training: dict[str, list[str]],
                      n_words: int) -> dict[str, float]:
    """Per model, Burrows' Delta of its answers (pooled per author) to that author's training text, weighted by
    questions. The reference set: the author's training passages and every text compared, one document each."""
    totals = dict.fromkeys(MODELS, 0.0)
    for author in dict.fromkeys(authors):
        idx = [i for i, a in enumerate(authors) if a == author]
        mine = {m: [texts[m][i] for i in idx] for m in MODELS}
        reference = [d for d in (*training[author], *(t for m in MODELS for t in mine[m])) if tokenize_words(d)]
        target = " ".join(training[author])
        for m in MODELS:
            totals[m] += len(idx) * burrows_delta(" ".join(mine[m]), target, reference, n_words)
    return {m: totals[m] / len(authors) for m in MODELS}


def attribution(texts: dict[str, list[str]], authors: list[str], training: dict[str, list[str]]) -> dict[str, Any]:
    """Attribution accuracy of each model's answers to the author asked, against the run's authors (and the
    distractor when there is one author)."""
    classifier = fit(with_distractor(training))
    accuracy = {m: share(classifier.attribute(t) == a for t, a in zip(texts[m], authors)) for m in MODELS}
    return {"attribution": accuracy, "attribution_authors": classifier.authors,
            "attribution_chance": 1 / len(classifier.authors)}
