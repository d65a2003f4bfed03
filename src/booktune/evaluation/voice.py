"""Did it learn the voice? A stylometric profile of a text, and Burrows' Delta between texts.

Profile: function-word rates, sentence lengths, punctuation rates and vocabulary richness, per text.

Distance: Burrows' Delta (Burrows 2002, "Delta: a measure of stylistic difference and a guide to likely
authorship"). Take the `n` most frequent words of a reference set of documents; turn each word's relative frequency
in a text into a z-score with that word's mean and standard deviation across the reference documents; Delta between
two texts is the mean absolute difference of their z-scores; 0 means identical rates, lower is closer. Delta is
noisy on a few hundred words, so compare base and tuned on the same prompts rather than against a fixed
threshold. booktune's reference set (see
`voice_report`): the author's held-out passages, one document each, plus every base and tuned continuation, one
document each, so that the z-scores measure spread among exactly the texts being compared.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# Common English function words (articles, pronouns, prepositions, conjunctions, auxiliaries), after the lists used
# in authorship studies since Mosteller & Wallace (1964).
FUNCTION_WORDS = (
    "a about after all also an and any are as at be been but by can could do does each even every for from had "
    "has have he her him his how however i if in into is it its may me might more most much must my no nor not "
    "now of on one only or other our own same shall she should so some such than that the their them then there "
    "these they this those though thus to too upon us very was we were what when where which while who whom "
    "whose why will with would yet you your"
).split()
PUNCTUATION = {"comma": ",", "semicolon": ";", "colon": ":", "dash": "—", "question": "?", "exclamation": "!",
               "quote": '"', "parenthesis": "("}

_WORD = re.compile(r"[a-z]+(?:['’][a-z]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+")


def tokenize_words(text: str) -> list[str]:
    """Lower-cased words; apostrophes inside a word keep it whole ("don't"), digits and punctuation are dropped."""
    return _WORD.findall(text.lower().replace("--", " "))


def sentence_lengths(text: str) -> list[int]:
    """Words per sentence, sentences ending at . ! or ? followed by space (the last, unterminated one counts)."""
    parts = _SENTENCE_END.split(" ".join(text.split()))
    return [n for n in (len(tokenize_words(p)) for p in parts) if n > 0]


@dataclass
class StyleProfile:
    words: int
    function_words: dict[str, float]  # per 1,000 words
    sentence_mean: float
    sentence_median: float
    sentence_sd: float
    punctuation: dict[str, float]  # per 1,000 words
    type_token_ratio: float  # distinct words / words
    mattr: float  # moving-average type-token ratio (window 100): richness that does not fall with length
    hapax_ratio: float  # share of distinct words used once
    top_function_words: list[tuple[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mattr(words: Sequence[str], window: int = 100) -> float:
    """Moving-average type-token ratio (Covington & McFall 2010); plain TTR for texts shorter than the window."""
    if not words:
        return 0.0
    if len(words) <= window:
        return len(set(words)) / len(words)
    counts = Counter(words[:window])
    total = len(counts)
    for i in range(window, len(words)):
        counts[words[i]] += 1
        counts[words[i - window]] -= 1
        if counts[words[i - window]] == 0:
            del counts[words[i - window]]
        total += len(counts)
    return total / (len(words) - window + 1) / window


def profile(text: str) -> StyleProfile:
    """The stylometric profile of one text."""
    words = tokenize_words(text)
    n = max(len(words), 1)
    counts = Counter(words)
    fw = {w: 1000 * counts[w] / n for w in FUNCTION_WORDS}
    lengths = sentence_lengths(text) or [0]
    punct = {name: 1000 * text.count(ch) / n for name, ch in PUNCTUATION.items()}
    hapax = sum(1 for c in counts.values() if c == 1)
    return StyleProfile(
        words=len(words), function_words=fw, sentence_mean=statistics.fmean(lengths),
        sentence_median=float(statistics.median(lengths)),
        sentence_sd=statistics.pstdev(lengths) if len(lengths) > 1 else 0.0, punctuation=punct,
        type_token_ratio=len(counts) / n, mattr=mattr(words), hapax_ratio=hapax / max(len(counts), 1),
        top_function_words=sorted(fw.items(), key=lambda kv: -kv[1])[:10],
    )


def relative_frequencies(words: Sequence[str], vocab: Sequence[str]) -> list[float]:
    counts = Counter(words)
    n = max(len(words), 1)
    return [counts[w] / n for w in vocab]


def most_frequent_words(documents: Sequence[str], n: int) -> list[str]:
    """The n most frequent words of the documents pooled (ties broken alphabetically, for repeatability)."""
    counts = Counter(w for d in documents for w in tokenize_words(d))
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def burrows_delta(a: str, b: str, reference: Sequence[str], n_words: int = 100) -> float:
    """Burrows' Delta between texts `a` and `b` over the `n_words` most frequent words of `reference`, z-scored
    with each word's mean and (population) standard deviation across the reference documents."""
    if len(reference) < 2:
        raise ValueError("Burrows' Delta needs a reference set of at least two documents")
    vocab = most_frequent_words(reference, n_words)
    table = [relative_frequencies(tokenize_words(d), vocab) for d in reference]  # [docs, words]
    means = [statistics.fmean(col) for col in zip(*table)]
    sds = [statistics.pstdev(col) for col in zip(*table)]
    fa = relative_frequencies(tokenize_words(a), vocab)
    fb = relative_frequencies(tokenize_words(b), vocab)
    terms = [abs((x - m) / s - (y - m) / s) for x, y, m, s in zip(fa, fb, means, sds) if s > 0]
    return sum(terms) / len(terms) if terms else 0.0


def voice_report(author: Sequence[str], base: Sequence[str], tuned: Sequence[str], n_words: int = 100) -> dict:
    """Profiles of the author's held-out text and of each model's continuations, and each model's Delta to the
    author. The reference set is every author passage and every continuation, one document each."""
    reference = [t for t in (*author, *base, *tuned) if tokenize_words(t)]
    author_text, base_text, tuned_text = (" ".join(x) for x in (author, base, tuned))
    return {
        "n_words": n_words,
        "reference_documents": len(reference),
        "delta_base": burrows_delta(base_text, author_text, reference, n_words),
        "delta_tuned": burrows_delta(tuned_text, author_text, reference, n_words),
        "profiles": {name: profile(text).as_dict()
                     for name, text in (("author", author_text), ("base", base_text), ("tuned", tuned_text))},
    }
