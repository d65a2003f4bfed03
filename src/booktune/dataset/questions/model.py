"""The `model` question writer: instruction back-translation with self-curation (Li et al. 2023, "Self-Alignment
with Instruction Backtranslation", the Humpback recipe).

A local chat model writes the one question each passage answers, then scores each question/passage pair 1-5 for
"this passage is a direct, good answer to this question", in the form of Humpback's self-curation prompt, with its
scale reworded: Humpback rates how an AI assistant should answer, and here the answer is the author's passage,
verbatim. Pairs scored under `min_score` are dropped (their passage trains the continuation task only). Both steps
are greedy and batched, with a progress bar; questions and scores are cached in DATA (cache.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from booktune.config import PrepareConfig
from booktune.dataset.questions.cache import passage_key, read_cache, write_cache
from booktune.dataset.questions.written import Context, Question, Written
from booktune.model import ModelError

WRITE_PROMPT = (
    "Here is a passage from a book:\n\n{passage}\n\nWrite one question that a reader might ask and that this "
    "passage answers. Reply with the question alone, one sentence ending with a question mark."
)
SCORE_PROMPT = (
    "Below is a question from a user and a candidate answer, a passage from a book. Evaluate whether or not the "
    "passage is a direct, good answer to the question. Assign a score using the following 5-point scale:\n"
    "1: the passage does not answer the question: it is off-topic, or the question asks for something else.\n"
    "2: the passage touches the question's subject but does not answer it.\n"
    "3: the passage answers part of the question, or answers it only indirectly.\n"
    "4: the passage answers the question well, with some text that is beside the point.\n"
    "5: the passage is a direct, complete answer to the question.\n\n"
    "Question: {question}\n\nAnswer: {passage}\n\nReply with \"Score: \" and the number alone."
)
# Passages a batch: decoding reads the weights once a step for every row, so a larger batch writes faster (3x from 8 to
# 32, docs/benchmarks.md); a batch that runs out of GPU memory is halved and tried again.
BATCH = 32
QUESTION_TOKENS, SCORE_TOKENS = 60, 6


class QuestionModelError(ModelError):
    """The question model cannot be loaded; one line naming it."""


def writer_key(model: str) -> str:
    """The cache's name for this writer: the model and the prompts (other prompts write anew)."""
    prompts = hashlib.sha256((WRITE_PROMPT + SCORE_PROMPT).encode("utf-8")).hexdigest()[:12]
    return f"model:{model}:{prompts}"


def model_questions(records: Sequence[dict[str, Any]], p: PrepareConfig, ctx: Context) -> Written:
    """One question per passage record, written and scored by `ctx.model`, curated at `p.min_score`."""
    key = writer_key(ctx.model or "default")
    cache = read_cache(ctx.folder, key)
    todo = list(dict.fromkeys(r["passage"] for r in records if passage_key(r["passage"]) not in cache))
    if todo:
        model, tokenizer = load_writer(ctx)
        questions = write(model, tokenizer, todo)
        scores = score(model, tokenizer, todo, questions)
        cache |= {passage_key(t): {"question": q, "score": s} for t, q, s in zip(todo, questions, scores)}
        write_cache(ctx.folder, key, cache)
    fresh = set(todo)
    out = Written("model", written=len(records), cached=sum(r["passage"] not in fresh for r in records))
    for r in records:
        entry = cache[passage_key(r["passage"])]
        if entry["question"] and (entry["score"] or 0) >= p.min_score:
            out.questions[r["passage_id"]] = [Question(entry["question"], entry["score"])]
        else:
            out.dropped += 1
    return out


def load_writer(ctx: Context) -> tuple[Any, Any]:
    import torch

    from booktune.devices import pick_device, pick_dtype
    from booktune.model import load_model, load_tokenizer

    name = ctx.model or "default"
    try:
        device = pick_device(None)
        tokenizer = load_tokenizer(name, trust_remote_code=ctx.trust_remote_code)
        model = load_model(name, device=device, dtype=pick_dtype("auto", device),
                           trust_remote_code=ctx.trust_remote_code)
    except ModelError as e:
        raise QuestionModelError(f"question model {name}: {e}") from None
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()  # what was loaded before the failure goes back, for keywords and the training
        raise QuestionModelError(f"question model {name}: its weights do not fit in the memory of {device}; name "
                                 "a smaller one with --question-model, or use --question-writer keywords") from None
    model.eval()
    return model, tokenizer


def write(model: Any, tokenizer: Any, passages: list[str]) -> list[str]:
    """The question each passage answers ('' where the reply holds none)."""
    prompts = [WRITE_PROMPT.format(passage=t) for t in passages]
    return [clean_question(r) for r in _generate(model, tokenizer, prompts, QUESTION_TOKENS, "writing questions")]


def score(model: Any, tokenizer: Any, passages: list[str], questions: list[str]) -> list[int | None]:
    """Each pair's 1-5 self-curation score (None where there is no question, or the reply holds no score)."""
    pairs = [(t, q) for t, q in zip(passages, questions) if q]
    replies = iter(_generate(model, tokenizer, [SCORE_PROMPT.format(question=q, passage=t) for t, q in pairs],
                             SCORE_TOKENS, "scoring questions"))
    return [parse_score(next(replies)) if q else None for q in questions]


def _generate(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int, label: str) -> list[str]:
    import torch

    from booktune.console import progress_bar
    from booktune.inference.generate import replies_in_batches

    with progress_bar(transient=True) as bar:
        task = bar.add_task(label, total=len(prompts), info="")
        try:  # greedy: a batch halved for memory writes the same questions
            replies = replies_in_batches(model, tokenizer, [[{"role": "user", "content": c}] for c in prompts],
                                         batch_size=BATCH, seed=0, max_new_tokens=max_new_tokens, temperature=0.0,
                                         top_p=1.0, done=lambda n: bar.update(task, advance=n))
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise QuestionModelError(f"{label}: one passage at a time does not fit in GPU memory; use "
                                     "--question-writer keywords or a smaller --question-model") from None
    return [r.text for r in replies]


def clean_question(reply: str) -> str:
    """The first line of a reply that is a question, without a 'Question:' label or quotes; '' when none is."""
    for line in reply.splitlines():
        line = re.sub(r"^\s*(?:\d+[.)]\s*|[-*]\s*|question\s*:\s*)", "", line, flags=re.I).strip().strip("\"'“”")
        if line.endswith("?") and len(line.split()) >= 3:
            return line
    return ""


def parse_score(reply: str) -> int | None:
    """'Score: 4' (or a reply that is only a digit 1-5) -> 4; None otherwise."""
    m = re.search(r"score\s*[:=]?\s*([1-5])\b", reply, flags=re.I) or re.fullmatch(r"\s*([1-5])\s*[.]?\s*", reply)
    return int(m.group(1)) if m else None
