"""Classic small games with known answers: the glove game and the airport game.

(The symmetric majority game lives with the weighted voting games in `voting.py`.)
"""

from __future__ import annotations

import numpy as np

from gamescale.envs.coalitions.game import CoalitionGame, check_num_players


class GloveGame(CoalitionGame):
    """Players 0..left-1 hold a left glove, the others a right glove; v(S) = number of pairs in S.

    With left > right the core is the single allocation giving 1 to each right-glove holder
    (0 to the left ones); symmetrically with right > left.
    """

    name = "glove"

    def __init__(self, left: int, right: int):
        if left < 1 or right < 1:
            raise ValueError(f"the glove game needs at least one left and one right glove, got {left} and {right}")
        self.num_players = check_num_players(left + right)
        self.left, self.right = int(left), int(right)
        self.is_left = np.arange(self.num_players) < left

    def _values(self, coalitions: np.ndarray) -> np.ndarray:
        lefts = coalitions[:, self.is_left].sum(axis=1)
        rights = coalitions[:, ~self.is_left].sum(axis=1)
        return np.minimum(lefts, rights).astype(np.float64)

    def core_allocation(self) -> np.ndarray | None:
        """The unique core allocation when left != right (None when the counts are equal)."""
        if self.left == self.right:
            return None
        scarce = ~self.is_left if self.left > self.right else self.is_left
        return scarce.astype(np.float64)


class AirportGame(CoalitionGame):
    """The airport game as its savings game: with runway costs c_i >= 0 (the cost of S is
    max_{i in S} c_i), v(S) = sum_{i in S} c_i - max_{i in S} c_i.

    The cost game is concave, so the savings game is convex: its core is non-empty and
    holds the Shapley value, c_i - (Littlechild-Owen cost share of i).
    """

    name = "airport"

    def __init__(self, costs: np.ndarray):
        c = np.asarray(costs, dtype=np.float64)
        if c.ndim != 1:
            raise ValueError("costs must be a list of numbers")
        self.num_players = check_num_players(len(c))
        if not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError("airport costs must be finite and non-negative")
        self.costs = c

    def _values(self, coalitions: np.ndarray) -> np.ndarray:
        total = coalitions @ self.costs
        largest = np.max(np.where(coalitions, self.costs, -np.inf), axis=1)
        return np.where(coalitions.any(axis=1), total - largest, 0.0)

    def cost_shares(self) -> np.ndarray:
        """Littlechild-Owen: the k-th smallest runway segment is split equally among the
        players who need it (those with cost >= its top)."""
        order = np.argsort(self.costs, kind="stable")
        sorted_c = self.costs[order]
        segments = np.diff(np.concatenate([[0.0], sorted_c]))
        users = self.num_players - np.arange(self.num_players)
        shares_sorted = np.cumsum(segments / users)
        shares = np.empty(self.num_players)
        shares[order] = shares_sorted
        return shares

    def shapley_closed_form(self) -> np.ndarray:
        return self.costs - self.cost_shares()


def random_airport(num_players: int, seed: int = 0, max_cost: float = 10.0) -> AirportGame:
    n = check_num_players(num_players)
    return AirportGame(np.random.default_rng(seed).uniform(0.0, max_cost, size=n))
