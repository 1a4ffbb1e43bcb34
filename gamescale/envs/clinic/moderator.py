"""The moderator's rule: is a proposed diagnosis the case's diagnosis?

Two rules, in order, and the one that decided is recorded:
1. `name`: the canonical names are equal (normalised text without parenthesised
   abbreviations, possessive 's and a leading "the": "Hirschsprung's disease (HD)" and
   "hirschsprung disease" agree);
2. `similarity`: the cosine of word + character-trigram count vectors of the canonical
   names is at least `threshold` (0.85 by default) and both names carry the same numbers
   ("type 1" is not "type 2").
Anything else is `rejected`; an empty proposal is `no-diagnosis`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from gamescale.envs.clinic.text import normalise

DEFAULT_THRESHOLD = 0.85


def canonical(name: str) -> str:
    name = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", name)
    name = re.sub(r"['’`]s\b", "", name, flags=re.IGNORECASE)
    text = normalise(name)
    return text[4:] if text.startswith("the ") else text


def _features(text: str) -> Counter:
    grams = Counter(text.split())
    for w in text.split():
        padded = f"#{w}#"
        grams.update("~" + padded[i : i + 3] for i in range(max(1, len(padded) - 2)))
    return grams


def name_similarity(a: str, b: str) -> float:
    """Cosine of word + character-trigram counts of two canonical names, in [0, 1]."""
    fa, fb = _features(canonical(a)), _features(canonical(b))
    dot = sum(c * fb[t] for t, c in fa.items())
    na = sum(c * c for c in fa.values()) ** 0.5
    nb = sum(c * c for c in fb.values()) ** 0.5
    return float(dot / (na * nb)) if na and nb else 0.0


@dataclass(frozen=True)
class Judgement:
    correct: bool
    rule: str  # "name", "similarity", "rejected" or "no-diagnosis"
    similarity: float


def judge(correct: str, proposed: str, threshold: float = DEFAULT_THRESHOLD) -> Judgement:
    a, b = canonical(correct), canonical(proposed)
    if not b:
        return Judgement(False, "no-diagnosis", 0.0)
    if a == b:
        return Judgement(True, "name", 1.0)
    score = name_similarity(correct, proposed)
    numbers_agree = set(re.findall(r"\d+", a)) == set(re.findall(r"\d+", b))
    if score >= threshold and numbers_agree:
        return Judgement(True, "similarity", score)
    return Judgement(False, "rejected", score)
