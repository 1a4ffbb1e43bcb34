"""Helpers shared by the batch engines: uniform legal sampling and indexing of game states.

A batch state is a frozen dataclass whose fields are arrays with the batch on axis 0;
`take` and `where` work on any of them, so search code never needs to know the game.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import TypeVar

import numpy as np

S = TypeVar("S")


def random_legal(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """int64 [B]: a uniformly random True column of each row of `mask` [B, A] (0 where none).

    Picks the k-th legal action with k uniform in [0, count): one cumulative sum instead of
    a random key per action, which is several times cheaper on wide boards.
    """
    counts = mask.sum(axis=1)
    pick = (rng.random(mask.shape[0]) * counts).astype(np.int16)
    return np.argmax(np.cumsum(mask, axis=1, dtype=np.int16) > pick[:, None], axis=1)


def take(state: S, index: np.ndarray) -> S:
    """The games `index` (any integer or boolean index on the batch axis) of a batch state."""
    return replace(state, **{f.name: getattr(state, f.name)[index] for f in fields(state)})


def where(condition: np.ndarray, a: S, b: S) -> S:
    """Game-wise choice: `a`'s games where `condition` [B] holds, else `b`'s."""
    out = {}
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        out[f.name] = np.where(condition.reshape((-1,) + (1,) * (x.ndim - 1)), x, y)
    return replace(a, **out)
