"""The `keywords` question writer: no model, so fast and offline.

Each passage's key phrases are found by TF-IDF: a phrase is a run of up to three content words (no stop word, no
punctuation inside) that ends in a noun-like word, and a phrase of several words must occur twice in the passage. It
scores its count times its words' summed TF-IDF weights, where document frequency counts the passages of the same book
and split (so the questions of training passages depend on training text alone). The best phrase, or the two best,
fill one of a handful of question forms, picked by the passage's hash so that a rerun writes the same question.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence

# Words that never head or end a key phrase: function words, auxiliaries and the commonest verbs and adverbs.
STOP_WORDS = frozenset((
    "a about above after again against all almost alone along already also although always am among an and another "
    "any anyone anything are around as at away back be became because become becomes been before being below "
    "between both but by came can cannot could did do does doing done down during each either else enough even ever "
    "every far few for from further get gets give given go goes going gone got great had has have having he her here "
    "hers herself him himself his how however i if in indeed into is it its itself just know known last least less "
    "let like little made make makes many may me might mine more most much must my myself neither never no none nor "
    "not nothing now of off often on once one only or other others otherwise our ours ourselves out over own per "
    "perhaps put quite rather really said same say says see seem seemed seems seen shall she should since so some "
    "something sometimes still such take than that the their theirs them themselves then there therefore these they "
    "thing things think this those though thus till to too took toward towards under unless until up upon us used "
    "very was way we well were what whatever when whenever where whether which while who whole whom whose why will "
    "with within without would yet you your yours yourself yourselves thou thee thy thine hath doth mr mrs"
).split())
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’-]*[A-Za-z]|[A-Za-z]|[.;:!?()\"“”—]")
# The question forms; {a} is the best key phrase and {b} the second best.
ONE_PHRASE = (
    "What do you think about {a}?",
    "What can you tell me about {a}?",
    "How would you describe {a}?",
    "What is your view of {a}?",
    "Why does {a} matter?",
    "What have you come to believe about {a}?",
)
TWO_PHRASES = (
    "How are {a} and {b} connected?",
    "What do {a} and {b} have to do with each other?",
    "What would you say about {a}, and about {b}?",
)


def candidate_phrases(tokens: Sequence[str], longest: int = 3) -> list[str]:
    """Runs of up to `longest` content words among a passage's tokens (`_TOKEN`), as they are written."""
    phrases, run = [], []
    for token in [*tokens, "."]:
        if len(token) > 2 and token.lower() not in STOP_WORDS and not token.lower().endswith("ly"):
            run.append(token)  # punctuation, short words, stop words and adverbs end a run
            continue
        for size in range(1, longest + 1):  # every sub-run up to `longest` words
            phrases += [" ".join(run[i:i + size]) for i in range(len(run) - size + 1)]
        run = []
    return phrases


def noun_like(tokenized: Sequence[Sequence[str]]) -> set[str]:
    """Words the text somewhere puts right after a determiner and right before a stop word or punctuation ("the
    table is", "a dove."): nouns, mostly, where an adjective would be followed by its noun. No tagger needed."""
    found = set()
    for passage in tokenized:
        tokens = [t.lower() for t in passage]
        found |= {b for a, b, c in zip(tokens, tokens[1:], tokens[2:])
                  if a in DETERMINERS and (c in STOP_WORDS or not c[0].isalpha())}
    return found


DETERMINERS = frozenset("the a an this that these those his her their our my its your every each no".split())


def _words(phrase: str) -> list[str]:
    return phrase.lower().split()


def document_frequencies(tokenized: Sequence[Sequence[str]]) -> Counter:
    return Counter(w for p in tokenized for w in {w for ph in candidate_phrases(p, 1) for w in _words(ph)})


def key_phrases(tokens: Sequence[str], df: Counter, documents: int, nouns: set[str], n: int = 2) -> list[str]:
    """The passage's `n` best key phrases, none repeating another's words. A phrase must end in a noun-like word; a
    phrase of several words must occur twice (a run of words that merely sit together once is no topic); its score
    is its words' summed TF-IDF times its count, where a word's count takes in every case it is written in."""
    phrases = Counter(candidate_phrases(tokens))
    tf: Counter = Counter()
    for word, count in phrases.items():
        if " " not in word:
            tf[word.lower()] += count
    weight = {w: c * math.log((1 + documents) / (1 + df[w])) for w, c in tf.items()}
    fit = [ph for ph, c in phrases.items() if _words(ph)[-1] in nouns and (" " not in ph or c > 1)]
    scored = sorted(fit, key=lambda ph: (-phrases[ph] * sum(weight.get(w, 0.0) for w in _words(ph)), ph))
    chosen: list[str] = []
    for ph in scored:
        if not any(set(_words(ph)) & set(_words(c)) for c in chosen):
            chosen.append(ph)
        if len(chosen) == n:
            break
    return chosen


def phrase_question(passage: str, phrases: Sequence[str], lower_words: set[str]) -> str | None:
    """A question about the key phrases in a form chosen by the passage's hash; None without a phrase."""
    if not phrases:
        return None
    a, *rest = [lowered(ph, lower_words) for ph in phrases]
    pick = int(hashlib.sha256(passage.encode("utf-8")).hexdigest()[:8], 16)
    if rest and pick % 3 == 0:
        return TWO_PHRASES[pick // 3 % len(TWO_PHRASES)].format(a=a, b=rest[0])
    return ONE_PHRASE[pick % len(ONE_PHRASE)].format(a=a)


def lowered(phrase: str, lower_words: set[str]) -> str:
    """A phrase as it reads inside a question: a word the text also writes in lower case is lower-cased (it was
    capitalised only to start a sentence); names, never written so, keep their capital."""
    return " ".join(w.lower() if w.lower() in lower_words else w for w in phrase.split())


def keyword_questions(passages: Sequence[str]) -> list[str | None]:
    """One question per passage (None where a passage has no content word), TF-IDF over `passages`."""
    tokenized = [_TOKEN.findall(p) for p in passages]  # each passage tokenized once
    df, nouns = document_frequencies(tokenized), noun_like(tokenized)
    lower_words = {t for tokens in tokenized for t in tokens if t.islower()}
    return [phrase_question(p, key_phrases(tokens, df, len(passages), nouns), lower_words)
            for p, tokens in zip(passages, tokenized)]
