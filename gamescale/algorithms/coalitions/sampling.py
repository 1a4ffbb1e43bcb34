"""Coalition sampling: random coalitions and a local search for large excess.

`sample_coalitions` draws a coalition size uniformly in 1..n-1 and then a uniform subset
of that size (so small and large coalitions are as likely as middle ones). `sample_shard`
improves the best samples by tabu search (`tabu.py`). `sample_shard` is the shard function that runs where the game lives (an actor, or this
process) and returns an Arrow batch:

    coalition: fixed_size_binary[ceil(n / 8)]  (numpy packbits of the [n] row)
    value:     float64  v(S)

Everything is drawn from the shard task's seed, so any number of workers returns the same rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import ShardTask
from gamescale.algorithms.coalitions.tabu import TabuSettings, perturb, tabu_search
from gamescale.envs.coalitions.game import CoalitionGame, pack, unpack

__all__ = ["sample_coalitions", "sample_shard", "evaluate_shard", "read_coalitions"]


def sample_coalitions(rng: np.random.Generator, num_players: int, size: int) -> np.ndarray:
    """`[size, n]` bool proper non-empty coalitions (size of S uniform in 1..n-1, then uniform members)."""
    k = rng.integers(1, num_players, size=size)
    ranks = np.argsort(rng.random((size, num_players)), axis=1)
    return ranks < k[:, None]


def coalition_batch(coalitions: np.ndarray, values: np.ndarray) -> pa.RecordBatch:
    packed = pack(coalitions)
    width = packed.shape[1]
    column = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(packed), [None, pa.py_buffer(np.ascontiguousarray(packed).tobytes())]
    )
    return pa.record_batch({"coalition": column, "value": pa.array(values, pa.float64())})


def read_coalitions(batches: list[pa.RecordBatch], num_players: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate shard batches -> (coalitions `[B, n]` bool, values `[B]`)."""
    width = (num_players + 7) // 8
    rows, vals = [], []
    for b in batches:
        if b.num_rows == 0:
            continue
        col = b.column("coalition")
        buf = np.frombuffer(col.buffers()[1], np.uint8)[col.offset * width : (col.offset + len(col)) * width]
        rows.append(unpack(buf.reshape(len(col), width), num_players))
        vals.append(b.column("value").to_numpy(zero_copy_only=False))
    if not rows:
        return np.zeros((0, num_players), bool), np.zeros(0)
    return np.concatenate(rows), np.concatenate(vals)


def sample_shard(game: CoalitionGame, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Sample `shared["samples"]` coalitions split over shards, climb from the best `shared["climbers"]`
    (and from this shard's share of `shared["starts"]`, packed rows such as the last LP's tight
    coalitions, each with a few players flipped) by tabu search for `shared["rounds"]` moves at
    payoff `shared["payoff"]` (keeping what it meets above `shared["above"]`), and return the `shared["keep"]` rows of largest excess (all of them when
    keep is None) with their values, plus an `evaluations` count in the schema metadata."""
    rng = task.rng()
    n = game.num_players
    x = np.asarray(shared["payoff"], np.float64)
    size = shared["samples"] // task.num_shards + (task.index < shared["samples"] % task.num_shards)
    c = sample_coalitions(rng, n, size)
    v = game.values(c)
    evaluations = len(c)
    climbers = min(int(shared.get("climbers", 0)), len(c))
    if climbers > 0 and shared.get("rounds", 0) > 0:
        top = np.argsort(-(v - c @ x), kind="stable")[:climbers]
        start, start_v = c[top], v[top]
        if shared.get("starts") is not None:  # this shard's share of the given coalitions, perturbed
            mine = unpack(np.asarray(shared["starts"], np.uint8), n)[task.index :: task.num_shards]
            kicked = perturb(rng, mine)
            kicked_v = game.values(kicked)
            evaluations += len(kicked)
            start, start_v = np.concatenate([start, kicked]), np.concatenate([start_v, kicked_v])
        iterations = int(shared["rounds"])
        found = tabu_search(game, x, start, rng, TabuSettings(iterations=iterations), above=shared.get("above"))
        evaluations += iterations * len(start) * n  # one move value per player and chain per move
        found_v = game.values(found.coalitions)  # exact values for the working-set LP
        c, v = np.concatenate([c, found.coalitions]), np.concatenate([v, found_v])
    keep = shared.get("keep")
    if keep is not None and len(c) > keep:
        top = np.argsort(-(v - c @ x), kind="stable")[:keep]
        c, v = c[top], v[top]
    batch = coalition_batch(c, v)
    return batch.replace_schema_metadata({"evaluations": str(evaluations)})


def evaluations_of(batches: list[pa.RecordBatch]) -> int:
    return sum(int((b.schema.metadata or {}).get(b"evaluations", b"0")) for b in batches)


def evaluate_shard(game: CoalitionGame, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Evaluate the packed coalitions `task.payload` (`[b, ceil(n/8)]` uint8); returns coalition, value."""
    c = unpack(np.asarray(task.payload, np.uint8), game.num_players)
    return coalition_batch(c, game.values(c))
