"""Bots that play with the board model through a `ModelClient` (torch-free, so they run on
rollout workers and call the learner actor): greedy `policy`, external search `puct<N>`
(PUCT with the model's move values as prior and value) and `internal` search (the model
writes a search tree and its move).

The model's move values `q [B, A]` (for the side to move, in [-1, 1]) become a policy by
a softmax at `temperature` over the legal moves, and a position's value is that policy's
expected move value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gamescale.algorithms.board.model_data import parse_best, tree_prompt
from gamescale.algorithms.board.puct import puct_search
from gamescale.envs.board.batch import BatchGame
from gamescale.envs.board.text import connect_four_texts

BOS = 256  # the byte tokenizer's BOS id (lm.tokenizer.ByteTokenizer), without importing torch
EOS = 257


def encode(texts: list[str]) -> np.ndarray:
    """int64 [B, 1 + L]: BOS and the bytes of equal-length texts."""
    rows = [[BOS, *t.encode()] for t in texts]
    if len({len(r) for r in rows}) > 1:
        raise ValueError("model prompts of one batch must have equal lengths")
    return np.array(rows, np.int64).reshape(len(texts), -1)


def decode(ids: np.ndarray) -> str:
    """Text of generated ids up to the first EOS (special ids dropped)."""
    out = bytearray()
    for i in np.asarray(ids).tolist():
        if i == EOS:
            break
        if i < 256:
            out.append(i)
    return out.decode("utf-8", errors="replace")


def move_values(client: Any, game: BatchGame, states: Any) -> tuple[np.ndarray, np.ndarray]:
    """(values float [B, A], legal bool [B, A]) of the model for a Connect Four batch state."""
    legal = game.legal_mask(states)
    if not len(legal):
        return np.zeros(legal.shape), legal
    texts = connect_four_texts(states)
    out = client.infer("move_values", states=np.array([list(t.encode()) for t in texts], np.uint8), legal=legal)
    return np.asarray(out["values"], np.float64), legal


def policy_from_values(values: np.ndarray, legal: np.ndarray, temperature: float) -> np.ndarray:
    """float [B, A]: softmax of the legal moves' values at `temperature` (0 on illegal moves)."""
    logits = np.where(legal, values / max(temperature, 1e-6), -np.inf)
    logits = logits - np.max(np.where(legal, logits, -1e300), axis=1, keepdims=True)
    p = np.where(legal, np.exp(logits), 0.0)
    return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)


@dataclass
class ModelEvaluator:
    """PUCT's evaluator backed by the model: priors from the move values, value = their
    expectation under those priors. Every call is one batched model call."""

    client: Any
    temperature: float = 0.25
    calls: int = 0
    positions: int = 0

    def __call__(self, game: BatchGame, states: Any) -> tuple[np.ndarray, np.ndarray]:
        values, legal = move_values(self.client, game, states)
        priors = policy_from_values(values, legal, self.temperature)
        self.calls += 1
        self.positions += len(legal)
        return priors, (priors * values).sum(axis=1)


@dataclass
class PolicyBot:
    """Greedy: the legal move with the highest model value."""

    client: Any
    name: str = "policy"

    def act(self, game: BatchGame, state: Any, rng: np.random.Generator) -> np.ndarray:
        values, legal = move_values(self.client, game, state)
        return np.argmax(np.where(legal, values, -np.inf), axis=1) if len(legal) else np.zeros(0, np.int64)


@dataclass
class PUCTBot:
    """External search: PUCT with `num_simulations` per move, the model as prior and value."""

    client: Any
    num_simulations: int
    parallel: int = 8
    c_puct: float = 1.5
    temperature: float = 0.25
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"puct{self.num_simulations}"
        self.evaluator = ModelEvaluator(self.client, self.temperature)

    def act(self, game: BatchGame, state: Any, rng: np.random.Generator) -> np.ndarray:
        return puct_search(game, state, self.num_simulations, self.evaluator, rng, self.c_puct,
                           parallel=self.parallel).action


@dataclass
class InternalSearchBot:
    """Internal search: the model writes `<state> T: ... best:<move>` in one greedy
    sequence and the bot plays the written move. An unreadable or illegal move falls back
    to the legal move of highest model value; `fallbacks` counts those of `moves`."""

    client: Any
    max_new_tokens: int = 48
    name: str = "internal"
    moves: int = 0
    fallbacks: int = 0
    last_texts: list[str] = field(default_factory=list)

    def act(self, game: BatchGame, state: Any, rng: np.random.Generator) -> np.ndarray:
        legal = game.legal_mask(state)
        if not len(legal):
            return np.zeros(0, np.int64)
        prompts = encode([tree_prompt(t) for t in connect_four_texts(state)])
        ids = self.client.infer("generate", prompts=prompts, max_new_tokens=np.int64(self.max_new_tokens))
        self.last_texts = [decode(row) for row in ids]
        written = [parse_best(t) for t in self.last_texts]
        ok = np.array([w is not None and 0 <= w < legal.shape[1] and bool(legal[b, w]) for b, w in enumerate(written)])
        actions = np.array([w if good else 0 for w, good in zip(written, ok, strict=True)], np.int64)
        if not ok.all():
            bad = np.flatnonzero(~ok)
            values, _ = move_values(self.client, game, _take(state, bad))
            actions[bad] = np.argmax(np.where(legal[bad], values, -np.inf), axis=1)
        self.moves += len(legal)
        self.fallbacks += int((~ok).sum())
        return actions


def _take(state: Any, index: np.ndarray) -> Any:
    from gamescale.envs.board.batch import take

    return take(state, index)


def values_shard(env: Any, shared: dict[str, Any], task: Any) -> Any:
    """A shard function: the model's move values of `shared["texts"]` (Connect Four text
    states) through `shared["client"]`, as a record batch with one `values` list per state.
    It checks (tests) that a client travels to a rollout worker and reaches the learner."""
    import pyarrow as pa

    from gamescale.envs.board import connect_four_vec
    from gamescale.envs.board.text import connect_four_from_texts

    values, _ = move_values(shared["client"], connect_four_vec.game(), connect_four_from_texts(shared["texts"]))
    return pa.RecordBatch.from_pydict({"values": [list(v) for v in values]})
