"""Induced subgraph games: v(S) is the total weight of the edges with both ends in S.

With a weight matrix W (`[n, n]`, symmetric, zero diagonal), v(S) = s^T W s / 2 for the
0/1 row s. Each player's Shapley value is half the weight of its incident edges.
Separation is exact by mixed-integer programming: a max-cut model strengthened by odd-cycle
inequalities (`cycles.py`), or each edge as a conjunction rule (`separation.py`).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from gamescale.envs.coalitions.cycles import CycleCuts, cycle_bound
from gamescale.envs.coalitions.game import CoalitionGame, check_num_players, check_payoff
from gamescale.envs.coalitions.separation import Separation, separate_rules


class InducedSubgraphGame(CoalitionGame):
    """`weights` `[n, n]`: symmetric, zero diagonal, any sign (negative edges allowed)."""

    name = "induced_subgraph"
    has_exact_oracle = True
    oracle_time_limit: float | None = None  # seconds per separation MILP (None: until proven)
    # "cycles": the max-cut model with odd-cycle inequalities (cycles.py); "rules": every edge a
    # conjunction rule (separation.py), the plain linearisation, kept to compare against
    separation = "cycles"
    _cycle_cuts = None

    def __init__(self, weights: np.ndarray):
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"the weight matrix must be square, got shape {w.shape}")
        self.num_players = check_num_players(w.shape[0])
        if not np.all(np.isfinite(w)):
            raise ValueError("edge weights must be finite")
        if not np.allclose(w, w.T):
            raise ValueError("the weight matrix must be symmetric")
        if np.any(np.diag(w) != 0):
            raise ValueError("the weight matrix must have a zero diagonal (no self-loops)")
        self.weights = w

    @classmethod
    def from_edges(cls, num_players: int, edges: list[tuple[int, int, float]]) -> InducedSubgraphGame:
        n = check_num_players(num_players)
        w = np.zeros((n, n))
        for i, j, value in edges:
            for p in (i, j):
                if int(p) != p or not 0 <= p < n:
                    raise ValueError(f"edge ({i}, {j}) names player {p}, players are 0..{n - 1}")
            if i == j:
                raise ValueError(f"edge ({i}, {j}) is a self-loop")
            w[i, j] += value
            w[j, i] += value
        return cls(w)

    def _values(self, coalitions: np.ndarray) -> np.ndarray:
        s = coalitions.astype(np.float64)
        return 0.5 * np.einsum("bi,bi->b", s @ self.weights, s)

    def flip_values(self, coalitions: np.ndarray) -> np.ndarray:
        return self._values(coalitions)[:, None] + self.flip_deltas(coalitions)

    def flip_deltas(self, coalitions: np.ndarray) -> np.ndarray:
        # adding i gains the weight of its edges into S, dropping i loses it
        s = coalitions.astype(np.float64)
        return (1.0 - 2.0 * s) * (s @ self.weights)

    def shapley_closed_form(self) -> np.ndarray:
        return 0.5 * self.weights.sum(axis=1)

    def separate(self, payoff: np.ndarray, k: int = 1, time_limit: float | None = None, **options) -> Separation:
        """The coalitions of largest excess at `payoff` by MILP (a proven bracket if `time_limit` hits);
        options: `at_least`, `max_solutions` of `separate_rules`."""
        x = check_payoff(payoff, self.num_players)
        start = time.perf_counter()
        bound = np.inf
        if self.separation == "cycles" and options.get("at_least") is None:
            # a call that bounds the largest excess: the odd-cycle LP's bound first (at most half the
            # time), then branch and bound on the rule model (faster there) may improve on it
            if self._cycle_cuts is None:
                self._cycle_cuts = CycleCuts()
            bound = cycle_bound(self.weights, x, self._cycle_cuts, None if time_limit is None else time_limit / 2)
            if time_limit is not None:
                time_limit = max(time_limit - (time.perf_counter() - start), 0.0)
        i, j = np.nonzero(np.triu(self.weights, k=1))
        edges = np.zeros((len(i), self.num_players), bool)
        edges[np.arange(len(i)), i] = True
        edges[np.arange(len(i)), j] = True
        found = separate_rules(
            edges, np.zeros_like(edges), self.weights[i, j], x, self.values, k, time_limit, **options
        )
        if bound < found.upper_bound:  # the tighter of the two proven bounds
            top = float(found.excess[0]) if len(found.excess) else -np.inf
            found = replace(found, upper_bound=max(bound, top))
        return found

    def most_violated(self, payoff: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Exact: the optimum of the separation MILP first, then other large-excess coalitions it met."""
        found = self.separate(payoff, k, self.oracle_time_limit)
        if not found.optimal or len(found.excess) == 0:
            raise RuntimeError(f"the separation MILP hit its {self.oracle_time_limit} s limit unproven")
        return found.coalitions, found.excess

    def describe(self) -> dict:
        edges = int(np.count_nonzero(np.triu(self.weights)))
        return {
            **super().describe(),
            "edges": edges,
            "negative_edges": int(np.count_nonzero(np.triu(self.weights) < 0)),
        }


def random_induced_subgraph(
    num_players: int, seed: int = 0, edge_probability: float = 0.5, min_weight: int = -10, max_weight: int = 10
) -> InducedSubgraphGame:
    """Each pair is an edge with `edge_probability`; weights are integers uniform in [min_weight, max_weight]."""
    n = check_num_players(num_players)
    if not 0 < edge_probability <= 1:
        raise ValueError(f"edge_probability must lie in (0, 1], got {edge_probability}")
    if min_weight > max_weight:
        raise ValueError(f"min_weight {min_weight} exceeds max_weight {max_weight}")
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < edge_probability, k=1)
    values = rng.integers(min_weight, max_weight + 1, size=(n, n)).astype(np.float64)
    w = np.where(upper, values, 0.0)
    return InducedSubgraphGame(w + w.T)
