"""Shapley values: exact by enumeration (small n), closed forms where a family has one,
and permutation sampling with normal confidence intervals (any n, sharded).

    phi_i = sum_{S not containing i} |S|! (n - |S| - 1)! / n! (v(S + i) - v(S))
          = E_{random order} [v(players before i, and i) - v(players before i)]
"""

from __future__ import annotations

from dataclasses import dataclass
from math import lgamma
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.stats import norm

from gamescale.algorithms.base import ShardTask
from gamescale.envs.coalitions.game import CoalitionGame, all_coalitions

EXACT_LIMIT = 20


def exact_shapley(game: CoalitionGame) -> np.ndarray:
    """`[n]` Shapley values by enumerating all 2^n coalitions (n <= 20)."""
    n = game.num_players
    if n > EXACT_LIMIT:
        raise ValueError(f"exact Shapley values enumerate 2^n coalitions; n = {n} is above {EXACT_LIMIT}")
    masks = np.arange(1 << n, dtype=np.int64)
    values = np.concatenate(
        [game.values(all_coalitions(n, s, min(s + (1 << 16), 1 << n))) for s in range(0, 1 << n, 1 << 16)]
    )
    sizes = np.zeros(1 << n, np.int64)
    for i in range(n):
        sizes += (masks >> i) & 1
    log_w = np.array([lgamma(k + 1) + lgamma(n - k) - lgamma(n + 1) for k in range(n)])
    phi = np.empty(n)
    for i in range(n):
        bit = np.int64(1) << i
        without = masks[(masks & bit) == 0]
        phi[i] = np.sum(np.exp(log_w[sizes[without]]) * (values[without | bit] - values[without]))
    return phi


def permutation_marginals(
    game: CoalitionGame, rng: np.random.Generator, permutations: int, chunk: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """(sum `[n]`, sum of squares `[n]`) of each player's marginal contribution over random orders."""
    n = game.num_players
    total, total_sq = np.zeros(n), np.zeros(n)
    lower = np.tri(n + 1, n, k=-1, dtype=bool)  # row k: the first k positions of the order
    done = 0
    while done < permutations:
        m = min(chunk, permutations - done)
        orders = np.argsort(rng.random((m, n)), axis=1)  # [m, n] players in order
        prefixes = np.zeros((m, n + 1, n), bool)
        rows = np.arange(m)[:, None, None]
        prefixes[rows, np.arange(n + 1)[None, :, None], orders[:, None, :]] = lower[None]
        vals = game.values(prefixes.reshape(-1, n)).reshape(m, n + 1)
        marg = np.diff(vals, axis=1)  # [m, n]: contribution of orders[:, k]
        contrib = np.empty_like(marg)
        contrib[np.arange(m)[:, None], orders] = marg
        total += contrib.sum(axis=0)
        total_sq += (contrib**2).sum(axis=0)
        done += m
    return total, total_sq


def shapley_shard(game: CoalitionGame, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Permutation sampling on one shard: `shared["permutations"]` split over shards."""
    count = shared["permutations"] // task.num_shards + (task.index < shared["permutations"] % task.num_shards)
    s, sq = permutation_marginals(game, task.rng(), count)
    return pa.record_batch({"sum": s, "sum_sq": sq, "count": np.full(game.num_players, count, np.int64)})


@dataclass(frozen=True)
class ShapleyEstimate:
    """values `[n]`, half_width `[n]` of the `confidence` interval (0 when exact), method."""

    values: np.ndarray
    half_width: np.ndarray
    method: str
    confidence: float = 1.0


def combine_marginals(batches: list[pa.RecordBatch], confidence: float) -> ShapleyEstimate:
    s = sum(b.column("sum").to_numpy() for b in batches)
    sq = sum(b.column("sum_sq").to_numpy() for b in batches)
    count = int(sum(int(b.column("count")[0].as_py()) for b in batches))
    if count < 2:
        raise ValueError("permutation sampling needs at least two permutations")
    mean = s / count
    var = np.maximum(sq / count - mean**2, 0.0) * count / (count - 1)
    z = float(norm.ppf(0.5 + confidence / 2))
    return ShapleyEstimate(mean, z * np.sqrt(var / count), "sampled", confidence)


def sampled_shapley(game: CoalitionGame, permutations: int, seed: int = 0, confidence: float = 0.95) -> ShapleyEstimate:
    """Permutation sampling in this process (one shard)."""
    task = ShardTask(0, 1, seed)
    return combine_marginals([shapley_shard(game, {"permutations": permutations}, task)], confidence)


def shapley_values(
    game: CoalitionGame,
    method: str = "auto",
    permutations: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    runner: Any = None,
    tasks: Any = None,
) -> ShapleyEstimate:
    """method: closed_form, exact, sampled or auto (closed form, else exact for n <= 14, else sampled).

    With a `runner` (a ShardRunner) and `tasks`, permutation sampling is spread over its shards.
    """
    n = game.num_players
    if method == "auto":
        method = "closed_form" if game.shapley_closed_form() is not None else ("exact" if n <= 14 else "sampled")
    if method == "closed_form":
        phi = game.shapley_closed_form()
        if phi is None:
            raise ValueError(f"{game.name} has no closed-form Shapley value")
        return ShapleyEstimate(np.asarray(phi, np.float64), np.zeros(n), "closed_form")
    if method == "exact":
        return ShapleyEstimate(exact_shapley(game), np.zeros(n), "exact")
    if method == "sampled":
        if runner is None:
            return sampled_shapley(game, permutations, seed, confidence)
        batches = runner.map(shapley_shard, tasks, {"permutations": permutations})
        return combine_marginals(batches, confidence)
    raise ValueError(f"unknown Shapley method {method!r}")
