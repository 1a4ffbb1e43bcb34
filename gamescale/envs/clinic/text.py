"""Lexical text tools for the clinic baselines: normalisation, tokens, and a BM25 / TF-IDF
index written in numpy (no model, nothing to download).

Conventions: a document is a string; `BM25Index(docs).scores(query)` is a float64 vector
`[num_docs]`; `TfidfIndex(docs).similarity(query)` is cosine similarity `[num_docs]` in [0, 1]
over word unigrams plus character trigrams (so "hypothyroid" and "hypothyroidism" meet).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")
# Words that carry no clinical content; kept short on purpose (negations are content).
STOPWORDS = frozenset(
    "a an and are as at be been by do does for from has have he her his i in is it its me my of on or "
    "she that the their there this to was were what when which who with you your any how long tell about "
    "did had can could would".split()
)


def normalise(text: str) -> str:
    """Lower case, accents and punctuation removed, underscores as spaces, single spaces."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(_WORD.findall(text.lower().replace("_", " ")))


def words(text: str) -> list[str]:
    """Content words of `text` (normalised, stopwords dropped)."""
    return [w for w in normalise(text).split() if w not in STOPWORDS]


def char_ngrams(text: str, n: int = 3) -> list[str]:
    """Character n-grams of each content word padded with '#', e.g. '#my', 'mya', ..."""
    grams: list[str] = []
    for w in words(text):
        padded = f"#{w}#"
        grams += [padded[i : i + n] for i in range(max(1, len(padded) - n + 1))]
    return grams


def features(text: str) -> list[str]:
    return words(text) + ["~" + g for g in char_ngrams(text)]


def _vocabulary(docs: list[list[str]]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for doc in docs:
        for token in doc:
            vocab.setdefault(token, len(vocab))
    return vocab


def _counts(docs: list[list[str]], vocab: dict[str, int]) -> np.ndarray:
    """Term counts `[num_docs, vocab]` (float64); tokens outside `vocab` are dropped."""
    matrix = np.zeros((len(docs), len(vocab)))
    for row, doc in enumerate(docs):
        for token, count in Counter(doc).items():
            column = vocab.get(token)
            if column is not None:
                matrix[row, column] = count
    return matrix


class BM25Index:
    """Okapi BM25 over content words (k1 = 1.5, b = 0.75, the usual defaults)."""

    def __init__(self, docs: list[str], k1: float = 1.5, b: float = 0.75):
        tokens = [words(d) for d in docs]
        self.vocab = _vocabulary(tokens)
        tf = _counts(tokens, self.vocab)
        n = max(len(docs), 1)
        df = (tf > 0).sum(axis=0)
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5))
        length = tf.sum(axis=1, keepdims=True)
        avg = max(float(length.mean()) if len(docs) else 1.0, 1e-9)
        self.weights = tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))  # [D, V]

    def scores(self, query: str) -> np.ndarray:
        q = _counts([words(query)], self.vocab)[0] > 0
        return self.weights[:, q] @ self.idf[q] if q.any() else np.zeros(self.weights.shape[0])


class TfidfIndex:
    """TF-IDF (sublinear tf, smoothed idf) over word and character-trigram features; cosine scores."""

    def __init__(self, docs: list[str]):
        tokens = [features(d) for d in docs]
        self.vocab = _vocabulary(tokens)
        tf = _counts(tokens, self.vocab)
        df = (tf > 0).sum(axis=0)
        self.idf = np.log((1 + len(docs)) / (1 + df)) + 1.0
        self.matrix = self._unit(np.where(tf > 0, 1 + np.log(np.maximum(tf, 1)), 0.0) * self.idf)

    @staticmethod
    def _unit(matrix: np.ndarray) -> np.ndarray:
        norm = np.linalg.norm(matrix, axis=-1, keepdims=True)
        return matrix / np.where(norm > 0, norm, 1.0)

    def vector(self, text: str) -> np.ndarray:
        tf = _counts([features(text)], self.vocab)[0]
        return self._unit(np.where(tf > 0, 1 + np.log(np.maximum(tf, 1)), 0.0) * self.idf)

    def similarity(self, query: str) -> np.ndarray:
        return self.matrix @ self.vector(query)


def cosine(a: str, b: str) -> float:
    """Cosine of the term-count vectors of two strings over `features` (words and character
    trigrams, no idf): 1.0 for equal normalised text, 0.0 for nothing in common."""
    if normalise(a) == normalise(b):
        return 1.0
    fa, fb = Counter(features(a)), Counter(features(b))
    dot = sum(count * fb[token] for token, count in fa.items())
    na = sum(c * c for c in fa.values()) ** 0.5
    nb = sum(c * c for c in fb.values()) ** 0.5
    return float(dot / (na * nb)) if na and nb else 0.0


def sentences(text: str) -> list[str]:
    """Split prose into sentences (on . ! ? ; followed by space); keeps non-empty pieces."""
    return [s.strip() for s in re.split(r"(?<=[.!?;])\s+", text) if s.strip()]
