"""Who wrote this? A nearest-author classifier by Burrows' Delta, to attribute generated answers.

Each author is known by their training text, cut into passages. The `n_words` most frequent words of all those
passages are the features; each word's relative frequency is z-scored with its mean and standard deviation across
the passages; an author's profile is the z-scores of their passages pooled. A text is attributed to the author whose
profile has the smallest cosine Delta to it: one minus the cosine of the two z-score vectors (Smith & Aldridge 2011;
Evert et al. 2017 found it the most reliable Delta). Burrows' own Delta, the mean absolute difference of z-scores,
attributed only 9 of the 13 held-out passages of Russell's last chapter to him, against Thoreau, where cosine Delta
attributes all 13 (tests/evaluation/test_evaluation_attribution.py). Chance is one over the number of authors.

A run with one author has nobody to tell apart, so the classifier then adds a distractor: John Stuart Mill's
*On Liberty*, shipped in distractor/ (public domain; README.md there gives its source).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from booktune.evaluation.voice import most_frequent_words, relative_frequencies, tokenize_words

DISTRACTOR = Path(__file__).parent / "distractor" / "mill_on-liberty.txt"
DISTRACTOR_AUTHOR = "John Stuart Mill (distractor)"


@dataclass
class Attributor:
    vocab: list[str]
    means: np.ndarray  # [words]
    sds: np.ndarray  # [words]; words with no spread are left out of every Delta
    authors: list[str]
    profiles: np.ndarray  # [authors, words] z-scores

    def z(self, text: str) -> np.ndarray:
        freq = np.array(relative_frequencies(tokenize_words(text), self.vocab))  # [words]
        return (freq - self.means) / np.where(self.sds > 0, self.sds, 1.0)

    def deltas(self, text: str) -> np.ndarray:
        """Cosine Delta from `text` to each author's profile, [authors]; 1 for a text with none of the words."""
        keep = self.sds > 0
        z, profiles = self.z(text)[keep], self.profiles[:, keep]  # [words], [authors, words]
        norms = np.linalg.norm(profiles, axis=1) * np.linalg.norm(z)
        return 1.0 - np.divide(profiles @ z, norms, out=np.zeros(len(self.authors)), where=norms > 0)

    def attribute(self, text: str) -> str:
        return self.authors[int(np.argmin(self.deltas(text)))]

    def accuracy(self, texts: Sequence[str], author: str) -> float:
        """Share of `texts` attributed to `author` (0.0 for none)."""
        return sum(self.attribute(t) == author for t in texts) / len(texts) if texts else 0.0


def fit(passages: Mapping[str, Sequence[str]], n_words: int = 150) -> Attributor:
    """The classifier for authors -> their training passages (at least two authors, each with passages)."""
    if len(passages) < 2 or not all(passages.values()):
        raise ValueError("attribution needs at least two authors, each with some text")
    documents = [p for texts in passages.values() for p in texts]
    vocab = most_frequent_words(documents, n_words)
    table = np.array([relative_frequencies(tokenize_words(d), vocab) for d in documents])  # [docs, words]
    means, sds = table.mean(axis=0), table.std(axis=0)
    scale = np.where(sds > 0, sds, 1.0)
    pooled = [relative_frequencies(tokenize_words(" ".join(texts)), vocab) for texts in passages.values()]
    profiles = (np.array(pooled) - means) / scale  # [authors, words]
    return Attributor(vocab, means, sds, list(passages), profiles)


def passages_of(text: str, words: int = 350) -> list[str]:
    """`text` cut into passages of `words` words (a shorter tail joins the last one)."""
    tokens = text.split()
    cuts = list(range(0, max(len(tokens) - words // 2, 1), words))
    return [" ".join(tokens[a:b]) for a, b in zip(cuts, [*cuts[1:], len(tokens)])]


def with_distractor(passages: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The authors' passages, plus the distractor's when there is only one author."""
    out = {a: list(p) for a, p in passages.items()}
    if len(out) == 1:
        out[DISTRACTOR_AUTHOR] = passages_of(DISTRACTOR.read_text(encoding="utf-8"))
    return out
