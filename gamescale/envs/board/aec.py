"""PettingZoo AEC shell shared by the two-player board games (Connect Four, Hex, Chess).

Conventions (PettingZoo classic): agents `player_0` (moves first: Connect Four's first
player, Hex's black who joins top and bottom, chess's white) and `player_1`. Each
observation is `{"observation": array, "action_mask": int8 [A]}`; the mask is all zeros
for the agent not to move. Rewards are +1 / -1 to the winner / loser and 0 for a draw,
given on the move that ends the game. An illegal action raises `IllegalMoveError`.
A subclass supplies the rules through five small methods (see `TwoPlayerBoardEnv`).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv

AGENTS = ("player_0", "player_1")
DRAW = -1  # `_outcome()` value of a drawn game


class IllegalMoveError(ValueError):
    """An action that is not legal in the current position (one-line message)."""


class TwoPlayerBoardEnv(AECEnv):
    """A turn-based two-player zero-sum board game as a PettingZoo AEC env.

    Subclasses set `metadata`, `num_actions` and `observation_shape` and implement
    `_new_game(rng)`, `_to_play() -> 0/1`, `_legal_mask() -> bool [A]`,
    `_play(action)`, `_outcome() -> None | 0 | 1 | DRAW` and `_observe(player)`;
    `_describe(action)` names an action in error messages. `max_plies` (optional) ends
    a game by truncation.
    """

    num_actions: int
    observation_shape: tuple[int, ...]
    observation_dtype: type = np.int8

    def __init__(self, max_plies: int | None = None, render_mode: str | None = None):
        super().__init__()
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.max_plies = max_plies
        self.render_mode = render_mode
        self._rng = np.random.default_rng()
        obs_space = spaces.Dict(
            {
                "observation": spaces.Box(0, 1, self.observation_shape, self.observation_dtype),
                "action_mask": spaces.Box(0, 1, (self.num_actions,), np.int8),
            }
        )
        self.observation_spaces = {agent: obs_space for agent in AGENTS}
        self.action_spaces = {agent: spaces.Discrete(self.num_actions) for agent in AGENTS}
        self.plies = 0

    # -- rules, supplied by each game ------------------------------------------------
    def _new_game(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _to_play(self) -> int:
        raise NotImplementedError

    def _legal_mask(self) -> np.ndarray:
        raise NotImplementedError

    def _play(self, action: int) -> None:
        raise NotImplementedError

    def _outcome(self) -> int | None:
        raise NotImplementedError

    def _observe(self, player: int) -> np.ndarray:
        raise NotImplementedError

    def _describe(self, action: int) -> str:
        return str(action)

    # -- PettingZoo AEC ----------------------------------------------------------------
    def observation_space(self, agent: str) -> spaces.Dict:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self.action_spaces[agent]

    def legal_actions(self) -> np.ndarray:
        """The legal actions of the player to move, ascending (empty once the game is over)."""
        if not self.agents or any(self.terminations.values()) or any(self.truncations.values()):
            return np.zeros(0, np.int64)
        return np.flatnonzero(self._legal_mask())

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        player = AGENTS.index(agent)
        mask = np.zeros(self.num_actions, np.int8)
        if self.agents and agent == self.agent_selection and not self.terminations[agent]:
            mask[self._legal_mask()] = 1
        return {"observation": self._observe(player), "action_mask": mask}

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._new_game(self._rng)
        self.agents = list(AGENTS)
        self.rewards = {agent: 0.0 for agent in AGENTS}
        self._cumulative_rewards = {agent: 0.0 for agent in AGENTS}
        self.terminations = {agent: False for agent in AGENTS}
        self.truncations = {agent: False for agent in AGENTS}
        self.infos = {agent: {} for agent in AGENTS}
        self.plies = 0
        self.agent_selection = AGENTS[self._to_play()]

    def step(self, action) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        if action is None:
            raise IllegalMoveError(f"{agent} must move: action None is only allowed once the game is over")
        action = int(action)
        if not (0 <= action < self.num_actions) or not self._legal_mask()[action]:
            raise IllegalMoveError(f"illegal move {self._describe(action)} for {agent} in {self.metadata['name']}")
        self._cumulative_rewards[agent] = 0.0
        self._play(action)
        self.plies += 1
        self.rewards = {a: 0.0 for a in AGENTS}
        outcome = self._outcome()
        if outcome is not None:
            if outcome != DRAW:
                self.rewards[AGENTS[outcome]] = 1.0
                self.rewards[AGENTS[1 - outcome]] = -1.0
            self.terminations = {a: True for a in AGENTS}
        elif self.max_plies is not None and self.plies >= self.max_plies:
            self.truncations = {a: True for a in AGENTS}
        self.agent_selection = AGENTS[self._to_play()]
        self._accumulate_rewards()

    def winner(self) -> int | None:
        """0 or 1 for a won game, DRAW (-1) for a draw, None while it goes on."""
        return self._outcome()

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return str(self)
        return None

    def close(self) -> None:
        pass
