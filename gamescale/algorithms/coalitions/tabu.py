"""Batched tabu search for coalitions of large excess: max over proper coalitions S of
v(S) - x(S), the separation problem of the least core (NP-hard for induced subgraph games and
MC-nets: max-cut with a linear term, conjunctions with negated literals).

Many chains run at once as rows of a `[m, n]` bool array. Every iteration each chain makes the
best single-player flip (add or drop one player) that is not tabu, even when it lowers the
excess, so a chain walks out of local optima instead of stopping at the first. A flipped
player stays tabu for a random tenure (`tenure`, a fraction of n, jittered per move so chains do
not cycle in step); a tabu move is allowed anyway when it would beat the chain's best
(aspiration). A chain that has not improved its best for `patience` iterations restarts from
an elite coalition (the best of a random chain) with a fraction `kick` of its players flipped.
Move values come from `game.flip_deltas` (O(n) or O(literals) per chain for the built-in
families), so one iteration costs a few `[m, n]` array operations.

Everything random comes from the `np.random.Generator` passed in: a search is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gamescale.envs.coalitions.game import CoalitionGame


@dataclass(frozen=True)
class TabuSettings:
    """iterations: moves per chain; tenure: (low, high) tabu tenure as fractions of n, drawn per
    move; patience: iterations without a new chain best before a restart (None: 2 n, at least 20);
    kick: (low, high) fraction of players flipped at a restart."""

    iterations: int = 100
    tenure: tuple[float, float] = (0.1, 0.25)
    patience: int | None = None
    kick: tuple[float, float] = (0.05, 0.2)


@dataclass(frozen=True)
class TabuResult:
    """coalitions `[k, n]` bool, distinct, by decreasing excess `[k]` (recomputed with
    `game.values`); best: the largest excess met; moves: flips made over all chains."""

    coalitions: np.ndarray
    excess: np.ndarray
    moves: int

    @property
    def best(self) -> float:
        return float(self.excess[0]) if len(self.excess) else -np.inf


def perturb(rng: np.random.Generator, coalitions: np.ndarray, most: int = 3, least: int = 1) -> np.ndarray:
    """Each row `[m, n]` with `least`..`most` random players' membership flipped (rows that become
    empty or the grand coalition keep their old membership), so a search leaves its old optimum."""
    m, n = coalitions.shape
    kicked = coalitions.copy()
    flips = rng.integers(least, most + 1, size=m)
    order = np.argsort(rng.random((m, n)), axis=1)
    mask = np.zeros((m, n), bool)
    np.put_along_axis(mask, order, np.arange(n)[None, :] < flips[:, None], axis=1)
    kicked ^= mask
    size = kicked.sum(axis=1)
    bad = (size == 0) | (size == n)
    kicked[bad] = coalitions[bad]
    return kicked


def distinct_best(coalitions: np.ndarray, excess: np.ndarray, keep: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of largest excess, best first (ties by first occurrence)."""
    if len(coalitions) == 0:
        return coalitions, excess
    packed = np.ascontiguousarray(np.packbits(coalitions, axis=1))
    view = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first = np.unique(view, return_index=True)
    first = np.sort(first)
    order = first[np.argsort(-excess[first], kind="stable")][:keep]
    return coalitions[order], excess[order]


def _proper(rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
    """Rows made proper and non-empty: an empty row gains, a full row loses, one random player."""
    rows = rows.copy()
    n = rows.shape[1]
    size = rows.sum(axis=1)
    bad = np.flatnonzero((size == 0) | (size == n))
    if len(bad):
        rows[bad, rng.integers(0, n, size=len(bad))] ^= True
    return rows


def tabu_search(
    game: CoalitionGame,
    payoff: np.ndarray,
    starts: np.ndarray,
    rng: np.random.Generator,
    settings: TabuSettings = TabuSettings(),
    chains: int | None = None,
    above: float | None = None,
    keep: int | None = 256,
) -> TabuResult:
    """Tabu search from `starts` `[s, n]` (one chain per row; with `chains` > s the rows are
    reused, perturbed). Returns the `keep` distinct coalitions of largest excess among every
    chain's best and every coalition visited with excess above `above` (the cuts a cutting-plane
    round wants; None: the bests only)."""
    x = np.asarray(payoff, np.float64)
    n = game.num_players
    if n < 3 or len(starts) == 0:  # two players: the singletons are the only proper coalitions
        rows = np.eye(n, dtype=bool) if n == 2 else np.zeros((0, n), bool)
        coalitions, excess = distinct_best(rows, game.values(rows) - rows @ x, keep)
        return TabuResult(coalitions, excess, 0)
    starts = np.asarray(starts, bool)
    m = len(starts) if chains is None else int(chains)
    if m > len(starts):
        extra = starts[rng.integers(0, len(starts), size=m - len(starts))]
        starts = np.concatenate([starts, perturb(rng, extra, most=max(1, n // 10))])
    s = _proper(rng, starts[:m])
    ex = game.values(s) - s @ x
    size = s.sum(axis=1)
    best_s, best_ex = s.copy(), ex.copy()
    stalled = np.zeros(m, np.int64)
    tabu_until = np.zeros((m, n), np.int64)
    low = max(1, int(round(settings.tenure[0] * n)))
    high = max(low, int(round(settings.tenure[1] * n)))
    high = min(high, max(n - 2, 1))  # a tenure of n or more would freeze a chain
    low = min(low, high)
    patience = settings.patience if settings.patience is not None else max(20, 2 * n)
    kick_low = max(1, int(round(settings.kick[0] * n)))
    kick_high = max(kick_low, int(round(settings.kick[1] * n)))
    kick_high = min(kick_high, max(n - 1, 1))
    kick_low = min(kick_low, kick_high)
    scale = 1e-12 * max(1.0, float(np.max(np.abs(ex), initial=0.0)))
    seen_rows, seen_ex = [], []
    rows = np.arange(m)
    moves = 0
    for it in range(settings.iterations):
        delta = game.flip_deltas(s) - np.where(s, -x, x)  # [m, n] change of the excess
        new_size = size[:, None] + np.where(s, -1, 1)
        valid = (new_size > 0) & (new_size < n)
        target = ex[:, None] + delta
        allowed = valid & ((tabu_until <= it) | (target > best_ex[:, None] + scale))
        none = ~allowed.any(axis=1)
        if none.any():  # every valid move tabu: take the one tabu the shortest
            least = np.where(valid[none], tabu_until[none], np.iinfo(np.int64).max)
            allowed[none] = valid[none] & (least == least.min(axis=1, keepdims=True))
        score = np.where(allowed, target, -np.inf)
        top = score.max(axis=1, keepdims=True)
        # random choice among equally good moves (integer weights make many ties)
        tie = np.where(score >= top - scale, rng.random((m, n)), -1.0)
        j = np.argmax(tie, axis=1)
        s[rows, j] ^= True
        size += np.where(s[rows, j], 1, -1)
        ex = target[rows, j]
        tabu_until[rows, j] = it + 1 + rng.integers(low, high + 1, size=m)
        moves += m
        better = ex > best_ex + scale
        best_s[better], best_ex[better] = s[better], ex[better]
        stalled = np.where(better, 0, stalled + 1)
        if above is not None:
            hit = ex > above
            if hit.any():
                seen_rows.append(s[hit].copy())
                seen_ex.append(ex[hit])
        restart = np.flatnonzero(stalled >= patience)
        if len(restart):
            elite = best_s[rng.integers(0, m, size=len(restart))]
            s[restart] = perturb(rng, elite, most=kick_high, least=kick_low)
            ex[restart] = game.values(s[restart]) - s[restart] @ x
            size[restart] = s[restart].sum(axis=1)
            tabu_until[restart] = 0
            stalled[restart] = 0
    found = np.concatenate([best_s, *seen_rows])
    # the running sums carry round-off: the likeliest few (2 keep) are recomputed and ranked
    found, _ = distinct_best(found, np.concatenate([best_ex, *seen_ex]), None if keep is None else 2 * keep)
    exact = game.values(found) - found @ x
    coalitions, excess = distinct_best(found, exact, keep)
    return TabuResult(coalitions, excess, moves)
