"""Crowd modelling ("beach bar") mean-field games on a 1D ring and a 2D torus, with mazes.

Defaults reproduce OpenSpiel's C++ `mfg_crowd_modelling` and `mfg_crowd_modelling_2d`
exactly (dynamics, noise, rewards, time handling), so exploitability numbers agree.

OpenSpiel's timing, translated to arrays. At decision time t a player at x picks an
action (a move), the move is applied, then a noise move drawn by chance is applied; the
next decision is at t + 1. The reward at decision node (x, t) is

    r_x(x) + r_a + r_mu(x, mu_t),    r_mu = -coef * log(mu_t[x] + eps),

where r_a = -|move of the PREVIOUS action| / size is an action cost paid one step late
(zero at t = 0; the last action is free). OpenSpiel's evaluators cache values by the
observation string "(x, t)", which omits the previous action, so the r_a stored in a
node's value is that of the FIRST path reaching the node in OpenSpiel's traversal order
(actions and chance outcomes in increasing order, initial states in chance order).
`action_cost="openspiel"` (default) reproduces that: `openspiel_traversal` computes
the first visitor's previous action for every (t, x) with array operations, and the
reward is constant across the current action. `action_cost="markov"` charges the cost of
the chosen action in the step it is taken (except the last step), the textbook MDP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gamescale.envs.mfg.game import MeanFieldGame, check_positive

LOG_EPSILON = 1e-25  # added inside the log, as OpenSpiel's 2D game does

MOVES_1D = np.array([-1, 0, 1])  # action a moves x by MOVES_1D[a]; action 1 is neutral
MOVES_2D_X = np.array([0, -1, 0, 1, 0])  # OpenSpiel's kActionToMoveX
MOVES_2D_Y = np.array([-1, 0, 0, 0, 1])  # OpenSpiel's kActionToMoveY; action 2 is neutral


def first_visit_order(candidates: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct `candidates` in order of first appearance, with the label of that appearance."""
    _, first = np.unique(candidates, return_index=True)
    first.sort()
    return candidates[first], labels[first]


@dataclass(frozen=True)
class OpenSpielTraversal:
    """What OpenSpiel's string-keyed tree walks see, level by level (see `openspiel_traversal`).

    previous: `[T, S]` int64, previous action on the first path reaching each decision node.
    read_ahead: `[T, S, A]` bool, True where the post-action chance node of (t, s, a) is first
        evaluated from an EARLIER decision node of time t (OpenSpiel's `MirrorDescent` then
        reads its cumulative value already updated by the current iteration).
    decision_pairs: per t, int32 `[n_t]` flat indices `s * A + a` in OpenSpiel's order.
    chance_pairs: per t, int32 `[m_t]` flat indices `y * K + k` in OpenSpiel's order.
    """

    previous: np.ndarray
    read_ahead: np.ndarray
    decision_pairs: tuple[np.ndarray, ...]
    chance_pairs: tuple[np.ndarray, ...]


def openspiel_traversal(
    horizon: int,
    initial_order: np.ndarray,
    post_action: np.ndarray,
    legal: np.ndarray,
    noise_next: np.ndarray,
    noise_valid: np.ndarray,
    neutral: int,
) -> OpenSpielTraversal:
    """Replay the order in which OpenSpiel's evaluators first reach each node.

    Decision nodes of time t + 1 are first reached in the order: decision nodes of time t
    in their first-visit order, then actions, then chance outcomes, in increasing order
    (true for the depth-first value walks and the breadth-first distribution walk alike).

    Args:
        horizon: T.  initial_order: `[n0]` states in the order of the initial chance node.
        post_action: `[S, A]` position after the player's move.  legal: `[S, A]` bool.
        noise_next: `[S, K]` position after chance outcome k from a post-action position.
        noise_valid: `[S, K]` bool, whether outcome k is listed by the chance node.
        neutral: the action assumed before t = 0.
    """
    num_states, num_actions = post_action.shape
    num_outcomes = noise_next.shape[1]
    previous = np.full((horizon, num_states), neutral, dtype=np.int64)
    read_ahead = np.zeros((horizon, num_states, num_actions), dtype=bool)
    decision_pairs, chance_pairs = [], []
    order = np.asarray(initial_order, dtype=np.int64)
    for t in range(horizon):
        pairs = (order[:, None] * num_actions + np.arange(num_actions)).reshape(-1)
        pairs = pairs[legal.reshape(-1)[pairs]]
        xs, acts = pairs // num_actions, pairs % num_actions
        ys = post_action[xs, acts]
        _, first = np.unique(ys, return_index=True)
        first_visitor = np.empty(num_states, dtype=np.int64)
        first_visitor[ys[first]] = xs[first]
        read_ahead[t, xs, acts] = first_visitor[ys] != xs
        first.sort()
        chance_nodes, chance_labels = ys[first], acts[first]
        outcomes = (chance_nodes[:, None] * num_outcomes + np.arange(num_outcomes)).reshape(-1)
        valid = noise_valid.reshape(-1)[outcomes]
        decision_pairs.append(pairs.astype(np.int32))
        chance_pairs.append(outcomes[valid].astype(np.int32))
        if t < horizon - 1:
            zs = noise_next.reshape(-1)[outcomes[valid]]
            order, first_labels = first_visit_order(zs, np.repeat(chance_labels, num_outcomes)[valid])
            previous[t + 1, order] = first_labels
    return OpenSpielTraversal(previous, read_ahead, tuple(decision_pairs), tuple(chance_pairs))


def openspiel_step(
    traversal: OpenSpielTraversal,
    t: int,
    mu: np.ndarray,
    policy_t: np.ndarray,
    post_action: np.ndarray,
    noise_next: np.ndarray,
    noise_prob: np.ndarray,
) -> np.ndarray:
    """One distribution step `[S] -> [S]` with OpenSpiel's two stages and summation order
    (move, then noise), so results agree bit for bit and greedy ties break the same way."""
    num_states, num_actions = post_action.shape
    pairs = traversal.decision_pairs[t]
    xs = pairs // num_actions
    after_move = np.bincount(
        post_action.reshape(-1)[pairs], weights=policy_t.reshape(-1)[pairs] * mu[xs], minlength=num_states
    )
    outcomes = traversal.chance_pairs[t]
    ys = outcomes // noise_next.shape[1]
    return np.bincount(
        noise_next.reshape(-1)[outcomes],
        weights=noise_prob.reshape(-1)[outcomes] * after_move[ys],
        minlength=num_states,
    )


def exact_log(values: np.ndarray) -> np.ndarray:
    """Natural log through the C library (`math.log`), as OpenSpiel's C++ games compute it;
    numpy's SIMD log differs in the last bit on some inputs, which can flip greedy ties."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    return np.fromiter(map(math.log, flat.tolist()), dtype=np.float64, count=flat.size).reshape(np.shape(values))


class _LogCache:
    """Per-time cache of `log(mu_t + eps)`: the backward passes query each `mu_t` repeatedly."""

    def __init__(self):
        self._entries: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, t: int, mu: np.ndarray) -> np.ndarray:
        entry = self._entries.get(t)
        if entry is not None and np.array_equal(entry[0], mu):
            return entry[1]
        result = exact_log(mu + LOG_EPSILON)
        self._entries[t] = (np.array(mu, copy=True), result)
        return result


def _check_action_cost(action_cost: str) -> str:
    if action_cost not in ("openspiel", "markov"):
        raise ValueError(f"action_cost must be 'openspiel' or 'markov', got {action_cost!r}")
    return action_cost


class _CrowdGame(MeanFieldGame):
    """Shared parts of the crowd games: move-then-noise kernel and OpenSpiel replay.

    Subclasses set `post_action [S, A]`, `noise_next [S, K]`, `noise_prob [S, K]` and call
    `_setup_openspiel` when `action_cost == "openspiel"`.
    """

    traversal: OpenSpielTraversal | None = None

    def _setup_openspiel(self, initial_order: np.ndarray, neutral: int) -> np.ndarray:
        """Compute the traversal; returns the previous-action cost `[T, S]`."""
        self.traversal = openspiel_traversal(
            self.horizon,
            initial_order,
            self.post_action,
            self.legal_actions,
            self.noise_next,
            self.noise_prob > 0 if self.noise_listed is None else self.noise_listed,
            neutral,
        )
        self.openspiel_read_ahead = self.traversal.read_ahead  # read by mirror descent
        self._log = _LogCache()
        return self.move_cost[self.traversal.previous]

    noise_listed: np.ndarray | None = None  # [S, K] outcomes a chance node lists (default prob > 0)

    def log_mu(self, t: int, mu: np.ndarray) -> np.ndarray:
        """`log(mu + 1e-25)`, bit-exact with C++ in OpenSpiel mode."""
        if self.traversal is None:
            return np.log(mu + LOG_EPSILON)
        return self._log(t, mu)

    def step_distribution(self, t: int, mu: np.ndarray, policy_t: np.ndarray) -> np.ndarray:
        if self.traversal is None:
            return super().step_distribution(t, mu, policy_t)
        return openspiel_step(self.traversal, t, mu, policy_t, self.post_action, self.noise_next, self.noise_prob)


class CrowdModelling1D(_CrowdGame):
    """OpenSpiel's `mfg_crowd_modelling`: a ring of `size` cells, actions {-1, 0, +1},
    uniform noise move {-1, 0, +1}, uniform initial distribution. State index = x."""

    def __init__(self, size: int = 10, horizon: int = 10, action_cost: str = "openspiel"):
        size = check_positive("size", size)
        if size < 2:
            raise ValueError(f"size must be at least 2, got {size}")
        horizon = check_positive("horizon", horizon)
        self.size = size
        self.action_cost = _check_action_cost(action_cost)
        x = np.arange(size)
        post = (x[:, None] + MOVES_1D[None, :]) % size  # [S, A]
        next_state = (post[:, :, None] + MOVES_1D[None, None, :]) % size  # [S, A, K=3]
        prob = np.full(next_state.shape, 1.0 / 3.0)
        super().__init__(size, 3, horizon, np.full(size, 1.0 / size), kernel=(next_state, prob), name="crowd_modelling")
        half = size // 2
        self.position_reward = 1 - 1.0 * np.abs(x - half) / half  # [S]
        self.move_cost = -1.0 * np.abs(MOVES_1D) / size  # [A]
        self.post_action, self.noise_next = post, post  # noise moves like an action
        self.noise_prob = np.full((size, 3), 1.0 / 3.0)  # [S, K]
        if self.action_cost == "openspiel":
            self.previous_action_cost = self._setup_openspiel(x, neutral=1)  # [T, S]

    def reward(self, t: int, mu: np.ndarray) -> np.ndarray:
        r_mu = -self.log_mu(t, mu)  # [S]
        if self.action_cost == "openspiel":
            r = self.position_reward + self.previous_action_cost[t] + r_mu
            return np.broadcast_to(r[:, None], (self.num_states, 3))
        cost = self.move_cost if t < self.horizon - 1 else np.zeros(3)
        return (self.position_reward + r_mu)[:, None] + cost[None, :]


def grid_walls(rows: tuple[str, ...]) -> list[tuple[int, int]]:
    """Forbidden `(x, y)` cells of a picture whose `#` marks a wall: x is the column, y the
    row (OpenSpiel's `grid_to_forbidden_states` convention)."""
    if len({len(row) for row in rows}) != 1:
        raise ValueError("every row of a maze picture must have the same length")
    return sorted((x, y) for y, row in enumerate(rows) for x, cell in enumerate(row) if cell == "#")


@dataclass(frozen=True)
class MazeSetting:
    """A named 2D crowd game of 2203.11973 as OpenSpiel ships it (`crowd_modelling_2d_<name>`):
    a square wall picture, its horizon, every agent starting in one cell, and only the
    crowd-aversion reward (noise and aversion coefficient at the game's defaults, 1)."""

    rows: tuple[str, ...]
    horizon: int
    start: tuple[int, int] = (1, 1)

    @property
    def size(self) -> int:
        return len(self.rows)

    def walls(self) -> list[tuple[int, int]]:
        return grid_walls(self.rows)


# The layouts of OpenSpiel's `crowd_modelling_2d.FOUR_ROOMS` / `MAZE` (13 x 13, horizon 40 and
# 22 x 22, horizon 100); walls close the torus, so the grid is a bounded box.
MAZE_SETTINGS: dict[str, MazeSetting] = {
    "four_rooms": MazeSetting(
        (
            "#############",
            "#     #     #",
            "#     #     #",
            "#           #",
            "#     #     #",
            "#     #     #",
            "### ##### ###",
            "#     #     #",
            "#     #     #",
            "#           #",
            "#     #     #",
            "#     #     #",
            "#############",
        ),
        horizon=40,
    ),
    "maze": MazeSetting(
        (
            "######################",
            "#      #     #     # #",
            "#      #     #     # #",
            "######    #  # ##  # #",
            "#         #  # #   # #",
            "#         #  # ### # #",
            "#  ########  #   #   #",
            "#    # # #  ##   #   #",
            "#    # # #     # # ###",
            "#    # # #     # # # #",
            "###### # ####### # # #",
            "#  #         #   # # #",
            "#  # ## ###  #   # # #",
            "## # #    #  ##### # #",
            "## # # #  #      # # #",
            "#    # ####        # #",
            "# ####  # ########   #",
            "#       #  #   # ### #",
            "#  #  # #  # # #   # #",
            "# ##### #    # #     #",
            "#            #       #",
            "######################",
        ),
        horizon=100,
    ),
}


def torus_four_rooms_walls(size: int) -> list[tuple[int, int]]:
    """Walls of a four-rooms layout of any size on the torus: a wall on row/column 0 only
    (the wrap-around supplies the opposite side, so the rooms are unequal) and a cross
    through the middle with one door per arm. Not the paper's game: see `MAZE_SETTINGS`."""
    if size < 7:
        raise ValueError(f"the torus_four_rooms maze needs size >= 7, got {size}")
    mid = size // 2
    doors = {(mid, (1 + mid) // 2), (mid, (mid + size) // 2), ((1 + mid) // 2, mid), ((mid + size) // 2, mid)}
    walls = {(0, i) for i in range(size)} | {(i, 0) for i in range(size)}
    walls |= {(mid, i) for i in range(size)} | {(i, mid) for i in range(size)}
    return sorted(walls - doors)


class CrowdModelling2D(_CrowdGame):
    """OpenSpiel's `mfg_crowd_modelling_2d` on a `size x size` torus, plus mazes.

    State index `s = x * size + y` (OpenSpiel's distribution-support order). Actions
    0..4 move by (0,-1), (-1,0), (0,0), (1,0), (0,1); a move into a forbidden cell is
    illegal. Noise: from the post-move cell, each legal move with probability
    `noise_intensity / L` and the neutral move with `1 - noise_intensity + noise_intensity / L`
    (L = number of legal moves there). Reward: `r_x + r_y + r_a + r_mu`, with
    `r_x = 1 - sum_i 2 v_i / size * |x - x_i|` over positional rewards (default the centre,
    value 1), `r_a` the (late) move cost, times `mu[s]` when `with_congestion`, and
    `r_mu = -crowd_aversion_coef * log(mu[s] + 1e-25)`; only `r_mu` when
    `only_distribution_reward`. With forbidden cells the initial distribution is uniform
    over free cells (OpenSpiel spreads it over all cells); `initial_cells` picks a subset.
    """

    def __init__(
        self,
        size: int = 10,
        horizon: int = 10,
        *,
        noise_intensity: float = 1.0,
        crowd_aversion_coef: float = 1.0,
        only_distribution_reward: bool = False,
        with_congestion: bool = False,
        forbidden_states: list[tuple[int, int]] | None = None,
        positional_reward: list[tuple[int, int, float]] | None = None,
        initial_cells: list[tuple[int, int]] | None = None,
        action_cost: str = "openspiel",
        name: str = "crowd_modelling_2d",
    ):
        n = check_positive("size", size)
        horizon = check_positive("horizon", horizon)
        if not 0.0 <= noise_intensity <= 1.0:
            raise ValueError(f"noise_intensity must lie in [0, 1], got {noise_intensity}")
        self.size = n
        self.action_cost = _check_action_cost(action_cost)
        self.only_distribution_reward = only_distribution_reward
        self.with_congestion = with_congestion
        self.crowd_aversion_coef = float(crowd_aversion_coef)
        num_states = n * n
        forbidden = np.zeros(num_states, dtype=bool)  # [S]
        for cell in forbidden_states or []:
            forbidden[self._index(cell)] = True
        if forbidden.all():
            raise ValueError("every cell is forbidden")
        self.forbidden = forbidden
        s = np.arange(num_states)
        x, y = s // n, s % n
        post = ((x[:, None] + MOVES_2D_X) % n) * n + (y[:, None] + MOVES_2D_Y) % n  # [S, A]
        legal = ~forbidden[post]  # [S, A]
        legal[forbidden, 2] = True  # forbidden cells carry no mass; give them a no-op action
        post = np.where(legal, post, s[:, None])
        num_legal = legal.sum(axis=1)  # [S]
        noise_share = noise_intensity / num_legal  # [S]
        noise_prob = np.where(legal, noise_share[:, None], 0.0)  # [S, K=5], chance at a post-move cell
        noise_prob[:, 2] = (1.0 - noise_intensity) + noise_share
        self.post_action, self.noise_next, self.noise_prob = post, post, noise_prob
        self.noise_listed = legal  # OpenSpiel lists every legal move, even at probability 0
        next_state = post[post]  # [S, A, K]: move a, then noise outcome k
        prob = noise_prob[post]  # [S, A, K]
        if initial_cells:
            init = np.zeros(num_states)
            cells = np.array([self._index(c) for c in initial_cells])
            if forbidden[cells].any():
                raise ValueError("initial_cells overlap forbidden cells")
            init[cells] = 1.0
        else:
            init = (~forbidden).astype(np.float64)
        init = init / init.sum()
        super().__init__(num_states, 5, horizon, init, kernel=(next_state, prob), legal_actions=legal, name=name)
        targets = positional_reward or [(n // 2, n // 2, 1.0)]
        r_x = np.ones(num_states)
        r_y = np.ones(num_states)
        for tx, ty, value in targets:
            self._index((tx, ty))
            val_r = 2.0 * value / n
            r_x = r_x - val_r * np.abs(x - tx)
            r_y = r_y - val_r * np.abs(y - ty)
        self.position_reward_x, self.position_reward_y = r_x, r_y
        self.move_cost = -1.0 * (np.abs(MOVES_2D_X) + np.abs(MOVES_2D_Y)) / n  # [A]
        if self.action_cost == "openspiel":
            # OpenSpiel's initial chance outcome i puts the player at x = i % n, y = i // n.
            i = np.arange(num_states)
            order = (i % n) * n + i // n
            order = order[init[order] > 0] if initial_cells or forbidden.any() else order
            self.previous_action_cost = self._setup_openspiel(order, neutral=2)  # [T, S]

    def _index(self, cell: tuple[int, int]) -> int:
        cx, cy = int(cell[0]), int(cell[1])
        if not (0 <= cx < self.size and 0 <= cy < self.size):
            raise ValueError(f"cell {tuple(cell)} lies outside the {self.size}x{self.size} grid")
        return cx * self.size + cy

    def reward(self, t: int, mu: np.ndarray) -> np.ndarray:
        r_mu = -self.crowd_aversion_coef * self.log_mu(t, mu)  # [S]
        shape = (self.num_states, 5)
        if self.only_distribution_reward:
            return np.broadcast_to(r_mu[:, None], shape)
        if self.action_cost == "openspiel":
            r_a = self.previous_action_cost[t]
            if self.with_congestion:
                r_a = r_a * mu
            r = self.position_reward_x + self.position_reward_y + r_a + r_mu
            return np.broadcast_to(r[:, None], shape)
        cost = self.move_cost[None, :] if t < self.horizon - 1 else np.zeros((1, 5))
        if self.with_congestion:
            cost = cost * mu[:, None]
        return (self.position_reward_x + self.position_reward_y + r_mu)[:, None] + cost

    def state_coordinates(self) -> dict[str, np.ndarray]:
        s = np.arange(self.num_states)
        return {"x": s // self.size, "y": s % self.size, "wall": self.forbidden.copy()}

    def grid(self, values: np.ndarray) -> np.ndarray:
        """Reshape `[..., S]` values to `[..., size(x), size(y)]` for plotting."""
        return np.asarray(values).reshape(*np.shape(values)[:-1], self.size, self.size)
