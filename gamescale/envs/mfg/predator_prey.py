"""Multi-population predator-prey mean-field game on a 2D torus (in the spirit of
OpenSpiel's `python_mfg_predator_prey`).

P populations move on a `size x size` torus like the 2D crowd model (5 moves, state
`x * size + y`, noise: the chosen move with probability 1 - noise, else a uniform move).
A player of population p at cell s collects, each step,

    sum_q payoff[p, q] * mu_q(s) - congestion_coef * log(mu_p(s) + 1e-25) + move_cost(a),

so with the default rock-paper-scissors payoff population p hunts p + 1 and flees p - 1.
Each population starts uniformly over its own corner block (or `initial_cells[p]`).
Exploitability sums the populations' deviation gains, as OpenSpiel's `nash_conv` does.
"""

from __future__ import annotations

import numpy as np

from gamescale.envs.mfg.crowd import MOVES_2D_X, MOVES_2D_Y
from gamescale.envs.mfg.game import MultiPopulationGame, check_distribution, check_positive

ROCK_PAPER_SCISSORS = [[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]


class PredatorPrey(MultiPopulationGame):
    """See the module docstring."""

    def __init__(
        self,
        size: int = 5,
        horizon: int = 10,
        payoff: list[list[float]] | None = None,
        congestion_coef: float = 1.0,
        noise_intensity: float = 0.0,
        move_cost: float = 0.0,
        initial_cells: list[list[tuple[int, int]]] | None = None,
    ):
        n = check_positive("size", size)
        payoff_arr = np.asarray(ROCK_PAPER_SCISSORS if payoff is None else payoff, dtype=np.float64)
        if payoff_arr.ndim != 2 or payoff_arr.shape[0] != payoff_arr.shape[1]:
            raise ValueError(f"payoff must be a square P x P matrix, got shape {payoff_arr.shape}")
        if not 0.0 <= noise_intensity <= 1.0:
            raise ValueError(f"noise_intensity must lie in [0, 1], got {noise_intensity}")
        num_populations = payoff_arr.shape[0]
        num_states = n * n
        self.size, self.payoff, self.congestion_coef = n, payoff_arr, float(congestion_coef)
        init = np.zeros((num_populations, num_states))
        if initial_cells is None:
            corners = [(0, 0), (n - 1, n - 1), (0, n - 1), (n - 1, 0)]
            block = max(1, n // 3)
            for p in range(num_populations):
                cx, cy = corners[p % 4]
                xs = np.arange(block) if cx == 0 else np.arange(n - block, n)
                ys = np.arange(block) if cy == 0 else np.arange(n - block, n)
                init[p, (xs[:, None] * n + ys[None, :]).ravel()] = 1.0
        else:
            if len(initial_cells) != num_populations:
                raise ValueError(f"initial_cells needs one list per population ({num_populations})")
            for p, cells in enumerate(initial_cells):
                for cx, cy in cells:
                    if not (0 <= cx < n and 0 <= cy < n):
                        raise ValueError(f"cell {(cx, cy)} lies outside the {n}x{n} grid")
                    init[p, cx * n + cy] = 1.0
            if (init.sum(axis=1) == 0).any():
                raise ValueError("every population needs at least one initial cell")
        init = check_distribution(init / init.sum(axis=1, keepdims=True), num_states)
        super().__init__(num_populations, num_states, 5, horizon, init, name="predator_prey")
        s = np.arange(num_states)
        x, y = s // n, s % n
        post = ((x[:, None] + MOVES_2D_X) % n) * n + (y[:, None] + MOVES_2D_Y) % n  # [S, A]
        # successor k of (s, a): the chosen move (k = 0) or noise move k - 1 (k = 1..5)
        next_state = np.concatenate([post[:, :, None], np.broadcast_to(post[:, None, :], (num_states, 5, 5))], axis=2)
        prob = np.concatenate(
            [np.full((num_states, 5, 1), 1.0 - noise_intensity), np.full((num_states, 5, 5), noise_intensity / 5)],
            axis=2,
        )
        self._kernel = (
            np.broadcast_to(next_state, (num_populations, *next_state.shape)),
            np.broadcast_to(prob, (num_populations, *prob.shape)),
        )  # each [P, S, A, K=6]
        self.move_cost = -float(move_cost) * (np.abs(MOVES_2D_X) + np.abs(MOVES_2D_Y))  # [A]

    def state_coordinates(self) -> dict[str, np.ndarray]:
        s = np.arange(self.num_states)
        return {"x": s // self.size, "y": s % self.size}

    def transition(self, t: int, mu: np.ndarray):
        return self._kernel

    def reward(self, t: int, mu: np.ndarray) -> np.ndarray:
        interaction = self.payoff @ mu  # [P, S]
        crowding = -self.congestion_coef * np.log(mu + 1e-25)  # [P, S]
        return (interaction + crowding)[:, :, None] + self.move_cost[None, None, :]
