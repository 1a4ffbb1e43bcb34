"""Particle transitions of a mean-field game for the deep methods (2203.11973): the shard
function rollout workers run, and the columns it returns.

Torch-free on purpose: a rollout worker imports the module of the shard function it runs,
and a worker that imports torch holds about 130 MiB more. Indices are int32 (states,
times and actions fit easily; half the bytes of int64 on the wire and in the learner's
batches); rewards stay float64 (they are summed into regression targets).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import ShardTask
from gamescale.algorithms.mfg.particles import sample_categorical
from gamescale.envs.mfg.game import MeanFieldGame

TRANSITIONS_SCHEMA = pa.schema(
    [
        ("t", pa.int32()),
        ("state", pa.int32()),
        ("action", pa.int32()),
        ("reward", pa.float64()),
        ("next_state", pa.int32()),
    ]
)


def simulate_transitions(
    game: MeanFieldGame, policy: np.ndarray, mu: np.ndarray, num_particles: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Transitions of `num_particles` agents playing `policy [T, S, A]` against the flow `mu [T + 1, S]`.

    Rewards and kernels are the game's at the GIVEN flow (a representative agent in the
    mean-field limit). Returns columns of `TRANSITIONS_SCHEMA`, each `[T * N]`, time-major;
    the reward of the last step (t = T - 1) includes the terminal reward at s'.
    """
    T, S = game.horizon, game.num_states
    states = sample_categorical(np.broadcast_to(game.initial_distribution, (num_particles, S)), rng)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in TRANSITIONS_SCHEMA.names}
    for t in range(T):
        next_state, prob = game.transition(t, mu[t])
        reward = np.asarray(game.reward(t, mu[t]), dtype=np.float64)  # [S, A]
        actions = sample_categorical(policy[t, states], rng)
        branch = sample_categorical(prob[states, actions], rng)
        successors = next_state[states, actions, branch]
        r = reward[states, actions]
        if t == T - 1:
            r = r + np.asarray(game.terminal_reward(mu[T]), dtype=np.float64)[successors]
        columns["t"].append(np.full(num_particles, t, dtype=np.int32))
        columns["state"].append(states.astype(np.int32))
        columns["action"].append(actions.astype(np.int32))
        columns["reward"].append(r)
        columns["next_state"].append(successors.astype(np.int32))
        states = successors
    return {name: np.concatenate(parts) for name, parts in columns.items()}


def transitions_shard(env: Any, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Shard function: `shared = {"policy": [T, S, A], "mu": [T + 1, S], "num_particles": total,
    "stream": int}`. The total is split evenly over shards; `stream` separates the random
    streams of several calls in one iteration (the shard seeds depend only on the iteration)."""
    total = int(shared["num_particles"])
    mine = total // task.num_shards + (1 if task.index < total % task.num_shards else 0)
    rng = np.random.default_rng([task.seed, int(shared.get("stream", 0))])
    columns = simulate_transitions(env, np.asarray(shared["policy"]), np.asarray(shared["mu"]), mine, rng)
    return pa.RecordBatch.from_pydict(columns, schema=TRANSITIONS_SCHEMA)


def collect(batches: list[pa.RecordBatch]) -> dict[str, np.ndarray]:
    """Concatenate shard batches (in shard order) into numpy columns."""
    table = pa.Table.from_batches(batches, schema=TRANSITIONS_SCHEMA)
    return {name: table.column(name).to_numpy() for name in TRANSITIONS_SCHEMA.names}
