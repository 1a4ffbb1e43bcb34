"""Weighted voting games: v(S) = 1 when the weight of S reaches the quota, else 0.

For integer weights the game has an exact separation oracle: a subset-sum dynamic
program over total weight finds, for each weight t, the proper non-empty coalition of
weight t with the smallest payoff, hence the most violated least-core constraint.
"""

from __future__ import annotations

import math

import numpy as np

from gamescale.envs.coalitions.game import CoalitionGame, check_num_players, check_payoff

_MAX_DP_WEIGHT = 5_000_000  # (n + 1) x (total weight + 1) float64 table of the oracle


class WeightedVotingGame(CoalitionGame):
    """weights `[n]` (>= 0), quota in (0, total weight]; v(S) = 1 if sum_{i in S} w_i >= quota."""

    name = "weighted_voting"
    cheap_oracle = True

    def __init__(self, weights: np.ndarray, quota: float):
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError("weights must be a list of numbers")
        self.num_players = check_num_players(len(w))
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"weighted voting weights must be non-negative, got {w[w < 0][:3].tolist()}")
        total = float(w.sum())
        if not (0 < quota <= total):
            raise ValueError(f"quota {quota} must lie in (0, total weight {total:g}]")
        self.weights = w
        self.quota = float(quota)
        self.integer_weights = bool(np.all(w == np.round(w)))
        self.has_exact_oracle = self.integer_weights and (self.num_players + 1) * (total + 1) <= _MAX_DP_WEIGHT
        # integer weights: compare exactly against the smallest winning total
        self._threshold = math.ceil(self.quota) if self.integer_weights else self.quota

    def _values(self, coalitions: np.ndarray) -> np.ndarray:
        return (coalitions @ self.weights >= self._threshold).astype(np.float64)

    def flip_values(self, coalitions: np.ndarray) -> np.ndarray:
        weight = coalitions @ self.weights
        moved = weight[:, None] + np.where(coalitions, -self.weights, self.weights)
        return (moved >= self._threshold).astype(np.float64)

    def start_payoffs(self) -> list[np.ndarray]:
        # payoffs proportional to the weights: the classic near-least-core guess for voting games
        total = self.weights.sum()
        proportional = [self.weights / total] if total > 0 else []
        return super().start_payoffs() + proportional

    def describe(self) -> dict:
        return {**super().describe(), "quota": self.quota, "total_weight": float(self.weights.sum())}

    def most_violated(
        self, payoff: np.ndarray, k: int = 1, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact: the proper non-empty coalitions of largest excess v(S) - x(S), one per total weight.

        Returns up to `k` coalitions `[k', n]` (distinct weights, best first) and their excess `[k']`.
        With `rng`, ties between equally cheap coalitions of a weight are broken at random and the
        k rows are spread over the best weights (several per weight where fewer weights are within
        round-off of the best): diverse cuts where many coalitions are equally violated.
        """
        if not self.has_exact_oracle:
            raise NotImplementedError("the subset-sum oracle needs small integer weights")
        x = check_payoff(payoff, self.num_players)
        w = self.weights.astype(np.int64)
        n, total = self.num_players, int(w.sum())
        # table[i, t]: min x(S) over non-empty S strictly inside {0..i-1} with w(S) = t
        table = np.full((n + 1, total + 1), np.inf)
        prefix_w, prefix_x = np.zeros(n + 1, np.int64), np.zeros(n + 1)
        for i in range(n):
            a, c = int(w[i]), float(x[i])
            row = table[i].copy()
            if a == 0:
                row = np.minimum(row, table[i] + c)
            else:
                row[a:] = np.minimum(row[a:], table[i, :-a] + c)
            if i > 0:
                row[a] = min(row[a], c)  # {i}
                row[prefix_w[i]] = min(row[prefix_w[i]], prefix_x[i])  # the whole prefix, without i
            table[i + 1] = row
            prefix_w[i + 1], prefix_x[i + 1] = prefix_w[i] + a, prefix_x[i] + c
        gain = np.where(np.arange(total + 1) >= self._threshold, 1.0, 0.0) - table[n]
        order = np.argsort(-gain, kind="stable")
        order = order[np.isfinite(gain[order])][:k]
        if rng is None or len(order) == 0:
            return _backtrack(table, prefix_w, prefix_x, w, x, order), gain[order]
        # the deterministic cheapest paths first (row 0's excess is exactly the largest), then k
        # random paths over the weights tied with the best (within round-off), distinct rows only
        tied = np.flatnonzero(gain >= gain[order[0]] - 1e-9 * max(1.0, abs(gain[order[0]])))
        rows = np.concatenate([
            _backtrack(table, prefix_w, prefix_x, w, x, order),
            _backtrack(table, prefix_w, prefix_x, w, x, rng.choice(tied, size=k), rng),
        ])  # fmt: skip
        _, first = np.unique(np.packbits(rows, axis=1), axis=0, return_index=True)
        rows = rows[np.sort(first)]
        ex = self._values(rows) - rows @ x
        ex[0] = gain[order[0]]  # the DP value, free of the rows' round-off
        return rows, ex

    @staticmethod
    def _backtrack(table, prefix_w, prefix_x, w, x, t: int) -> np.ndarray:
        return _backtrack(table, prefix_w, prefix_x, w, x, np.array([t]))[0]


def _backtrack(table, prefix_w, prefix_x, w, x, targets: np.ndarray, rng=None) -> np.ndarray:
    """Members `[m, n]` of one cheapest coalition per target weight, all paths at once (backwards
    through the subset-sum table); with `rng`, among the moves that keep the cost within round-off
    one is picked at random (uniform choices, so different paths for the same weight)."""
    n, m = len(w), len(targets)
    members = np.zeros((m, n), bool)
    t = np.asarray(targets, np.int64).copy()
    value = table[n, t]
    alive = np.ones(m, bool)
    tol = 1e-12 * max(1.0, float(np.nanmax(np.abs(np.where(np.isfinite(table[n]), table[n], 0.0)))))
    if rng is not None:
        tol = max(tol, 1e-10)
    for i in range(n - 1, -1, -1):
        if not alive.any():
            break
        a, c = int(w[i]), float(x[i])
        idx = np.flatnonzero(alive)
        ti, vi = t[idx], value[idx]
        skip = table[i, ti] <= vi + tol
        take = (ti >= a) & (table[i, np.maximum(ti - a, 0)] + c <= vi + tol)
        single = (i > 0) & (ti == a) & (c <= vi + tol)
        prefix = (i > 0) & (ti == prefix_w[i]) & (prefix_x[i] <= vi + tol)
        options = np.stack([skip, take, single, prefix], axis=1)
        if not options.any(axis=1).all():
            raise RuntimeError("subset-sum backtracking lost its path")
        if rng is None:  # the first valid move, in the order skip, take, single, prefix
            move = np.argmax(options, axis=1)
        else:
            move = np.argmax(options * rng.random(options.shape), axis=1)
        took = idx[move == 1]
        members[took, i] = True
        value[took] = table[i, t[took] - a]
        t[took] -= a
        value[idx[move == 0]] = table[i, t[idx[move == 0]]]
        ends_single = idx[move == 2]
        members[ends_single, i] = True
        ends_prefix = idx[move == 3]
        members[ends_prefix, :i] = True
        alive[ends_single] = False
        alive[ends_prefix] = False
    return members


def random_weighted_voting(
    num_players: int,
    seed: int = 0,
    max_weight: int = 20,
    quota_fraction: float = 0.6,
    heavy_players: int = 0,
    heavy_share: float = 0.8,
) -> WeightedVotingGame:
    """Integer weights uniform in 1..max_weight; quota = ceil(quota_fraction x total weight).

    With `heavy_players` = k > 0, players 0..k-1 are heavy instead (a council of large members
    and many small ones): relative weights uniform in [1, 3], scaled so the heavy players hold
    `heavy_share` of the total. With many small uniform weights the weight-proportional payoff
    is exactly in the least core (value 1 - quota / total, for any quota); with a few heavy
    players whose weights do not reflect their power it is not."""
    n = check_num_players(num_players)
    if max_weight < 1:
        raise ValueError(f"max_weight must be at least 1, got {max_weight}")
    if not 0 < quota_fraction <= 1:
        raise ValueError(f"quota_fraction must lie in (0, 1], got {quota_fraction}")
    if not 0 <= heavy_players < n:
        raise ValueError(f"heavy_players must lie in 0..{n - 1}, got {heavy_players}")
    if not 0 < heavy_share < 1:
        raise ValueError(f"heavy_share must lie in (0, 1), got {heavy_share}")
    rng = np.random.default_rng(seed)
    w = rng.integers(1, max_weight + 1, size=n).astype(np.float64)
    if heavy_players:
        light = w[heavy_players:].sum()
        heavy = rng.uniform(1.0, 3.0, size=heavy_players)
        w[:heavy_players] = np.maximum(np.round(heavy / heavy.sum() * light * heavy_share / (1 - heavy_share)), 1.0)
    return WeightedVotingGame(w, math.ceil(quota_fraction * w.sum()))


class MajorityGame(WeightedVotingGame):
    """The symmetric majority game: v(S) = 1 iff |S| > n / 2 (empty core for n >= 3).

    Least-core value 1 - m / n with m = floor(n / 2) + 1, at x_i = 1 / n.
    """

    name = "majority"

    def __init__(self, num_players: int):
        n = check_num_players(num_players)
        super().__init__(np.ones(n), n // 2 + 1)

    def shapley_closed_form(self) -> np.ndarray:
        return np.full(self.num_players, 1.0 / self.num_players)
