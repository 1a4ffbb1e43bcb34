"""Particle simulation of a mean-field game: many sampled agents under one policy.

This is the sampled counterpart of exact distribution propagation: `N` independent
agents start from `mu_0`, act by a time-dependent policy and move by the game's sparse
kernel. Where the kernel depends on the population, it is evaluated at the agents'
empirical distribution (the N-player game); otherwise the dynamics are exactly the
mean-field ones and the empirical distribution converges to `mu_t` at rate 1/sqrt(N).

`simulate_shard` is the shard function rollout workers run (see
`gamescale.algorithms.base.ShardFn`): it returns the visit counts of its particles as an
Arrow batch, and shards are summed in shard order, so the result depends only on the
run seed and the number of shards, never on the number of workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import ShardTask
from gamescale.envs.mfg.game import as_multi_population

COUNTS_SCHEMA = pa.schema([("t", pa.int32()), ("state", pa.int64()), ("count", pa.int64())])


def sample_categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of `probs [N, C]` (rows sum to 1) -> `[N]` int64."""
    cumulative = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cumulative[:, -1]
    return np.minimum((u[:, None] >= cumulative).sum(axis=1), probs.shape[1] - 1)


def simulate_particles(game: Any, policy: np.ndarray, num_particles: int, rng: np.random.Generator) -> np.ndarray:
    """Visit counts `[T + 1, S]` of `num_particles` agents playing `policy [T, S, A]`.

    Single-population games only (population 0 of the batched view).
    """
    view = as_multi_population(game)
    S, T = view.num_states, view.horizon
    if policy.shape != (T, S, view.num_actions):
        raise ValueError(f"policy shape {policy.shape} != {(T, S, view.num_actions)}")
    counts = np.zeros((T + 1, S), dtype=np.int64)
    states = sample_categorical(np.broadcast_to(view.initial_distribution[0], (num_particles, S)), rng)
    counts[0] = np.bincount(states, minlength=S)
    for t in range(T):
        mu = (counts[t] / num_particles)[None]
        next_state, prob = view.transition(t, mu)
        actions = sample_categorical(policy[t, states], rng)
        branch = sample_categorical(prob[0, states, actions], rng)
        states = next_state[0, states, actions, branch]
        counts[t + 1] = np.bincount(states, minlength=S)
    return counts


def simulate_shard(env: Any, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Shard function: `shared = {"policy": [T, S, A], "num_particles": total}`.

    The total is split evenly over shards (the first `total % num_shards` take one more).
    """
    total = int(shared["num_particles"])
    mine = total // task.num_shards + (1 if task.index < total % task.num_shards else 0)
    counts = simulate_particles(env, np.asarray(shared["policy"]), mine, task.rng())
    t, state = np.nonzero(counts)
    return pa.RecordBatch.from_arrays(
        [pa.array(t, pa.int32()), pa.array(state, pa.int64()), pa.array(counts[t, state], pa.int64())],
        schema=COUNTS_SCHEMA,
    )


def counts_from_batches(batches: list[pa.RecordBatch], horizon: int, num_states: int) -> np.ndarray:
    """Sum shard batches back into dense counts `[T + 1, S]`."""
    counts = np.zeros((horizon + 1, num_states), dtype=np.int64)
    for batch in batches:
        t = batch.column("t").to_numpy()
        state = batch.column("state").to_numpy()
        np.add.at(counts, (t, state), batch.column("count").to_numpy())
    return counts
