"""Helpers shared by the batch engines: uniform legal sampling and indexing of game states.

A batch state is a frozen dataclass whose fields are arrays with the batch on axis 0;
`take` and `where` work on any of them, so search code never needs to know the game.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

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


@dataclass(frozen=True)
class BatchGame:
    """A batch engine seen through the functions search needs (all batch-first).

    init(B) -> state; legal_mask(state) -> bool [B, A]; step(state, actions [B]) -> state
    (finished games unchanged); done(state) -> bool [B]; to_play(state) -> int [B];
    winner(state) -> int8 [B] (0 / 1, -1 for a draw or a game still going);
    rollout(state, rng) -> the winners of uniformly random play to the end (optional: a
    fast path; by default `random_playout` then `winner`).
    """

    name: str
    num_actions: int
    max_plies: int
    init: Callable[[int], Any]
    legal_mask: Callable[[Any], np.ndarray]
    step: Callable[[Any, np.ndarray], Any]
    done: Callable[[Any], np.ndarray]
    to_play: Callable[[Any], np.ndarray]
    winner: Callable[[Any], np.ndarray]
    rollout: Callable[[Any, np.random.Generator], np.ndarray] | None = None

    def random_playout(self, state: Any, rng: np.random.Generator) -> Any:
        """Uniformly random legal moves until every game is over."""
        for _ in range(self.max_plies):
            mask = self.legal_mask(state)
            if not mask.any():
                break
            state = self.step(state, random_legal(mask, rng))
        return state

    def random_winners(self, state: Any, rng: np.random.Generator) -> np.ndarray:
        """int8 [B]: who wins each game under uniformly random play (-1 draw)."""
        if self.rollout is not None:
            return self.rollout(state, rng)
        return self.winner(self.random_playout(state, rng))
