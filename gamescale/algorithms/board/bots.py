"""Bots that choose moves for a whole batch of games at once, and a match runner.

A bot is any object with `name` and `act(game, state, rng) -> int64 [B]` (the move of
every game of a batch state; finished games may get any value). `play_games` lets two
bots play `B` games side by side and returns the winners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from gamescale.algorithms.board.mcts import uct_search
from gamescale.algorithms.board.solver import ConnectFourSolver, Position, SolverBudgetExceeded
from gamescale.envs.board.batch import BatchGame, random_legal, take, where


class Bot(Protocol):
    name: str

    def act(self, game: BatchGame, state: Any, rng: np.random.Generator) -> np.ndarray: ...


@dataclass
class RandomBot:
    """A uniformly random legal move."""

    name: str = "random"

    def act(self, game: BatchGame, state: Any, rng: np.random.Generator) -> np.ndarray:
        return random_legal(game.legal_mask(state), rng)


@dataclass
class MCTSBot:
    """UCT with random rollouts, `num_simulations` per move in every game of the batch."""

    num_simulations: int = 200
    exploration: float = 1.4
    solve: bool = True
    parallel: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"mcts{self.num_simulations}"

    def act(self, game: BatchGame, state: Any, rng: np.random.Generator) -> np.ndarray:
        return uct_search(game, state, self.num_simulations, rng, self.exploration, self.solve, self.parallel).action


@dataclass
class ConnectFourSolverBot:
    """Perfect Connect Four play where the solver finishes within `max_nodes` per move
    (tried from ply `min_plies` on); elsewhere (early in the game) the `fallback` bot moves.
    `weak` play keeps a won game won and a drawn one drawn, without hurrying the win (much
    cheaper than exact scores). `solved_moves` and `fallback_moves` count both kinds."""

    max_nodes: int = 20_000
    min_plies: int = 0
    weak: bool = True
    fallback: Any = field(default_factory=lambda: MCTSBot(200))
    name: str = "solver"
    solved_moves: int = 0
    fallback_moves: int = 0
    _retry_from: int = field(default=0, init=False, repr=False)  # after a failed solve at ply p: wait for p + 2
    _last_ply: int = field(default=0, init=False, repr=False)

    def act(self, game: BatchGame, state: Any, rng: np.random.Generator) -> np.ndarray:
        actions = np.asarray(self.fallback.act(game, state, rng)).copy()
        mask = game.legal_mask(state)
        player = game.to_play(state)
        if len(state.plies) and int(state.plies.min()) < self._last_ply:  # new games: forget failures
            self._retry_from = 0
        self._last_ply = int(state.plies.min()) if len(state.plies) else 0
        for b in np.flatnonzero(mask.any(axis=1)):
            if state.plies[b] < max(self.min_plies, self._retry_from):
                self.fallback_moves += 1
                continue
            stones = [int(x) for x in state.stones[b]]
            pos = Position(stones[player[b]], stones[0] | stones[1], int(state.plies[b]))
            solver = ConnectFourSolver(max_nodes=self.max_nodes)
            try:
                actions[b] = solver.best_move(pos, self.weak)
                self.solved_moves += 1
            except SolverBudgetExceeded:
                self.fallback_moves += 1
                self._retry_from = max(self._retry_from, int(state.plies[b]) + 2)
        return actions


@dataclass(frozen=True)
class PlayedGames:
    """`B` finished games of one pairing.

    winners: int8 [B]          0 / 1 (the first / second player), -1 a draw
    moves:   int64 [B, L]      actions in order, -1 after the end (L = the game's max plies)
    plies:   int64 [B]         moves played
    final:   batch state       the final positions
    """

    winners: np.ndarray
    moves: np.ndarray
    plies: np.ndarray
    final: Any


def play_recorded(game: BatchGame, first: Any, second: Any, num_games: int, rng: np.random.Generator) -> PlayedGames:
    """`num_games` games side by side, `first` moving first, keeping every move."""
    state = game.init(num_games)
    moves = np.full((num_games, game.max_plies), -1, np.int64)
    plies = np.zeros(num_games, np.int64)
    for ply in range(game.max_plies):
        live = ~game.done(state)
        if not live.any():
            break
        player = game.to_play(state)
        actions = np.zeros(num_games, np.int64)
        for p, bot in enumerate((first, second)):
            idx = np.flatnonzero(live & (player == p))
            if len(idx):
                actions[idx] = bot.act(game, take(state, idx), rng)
        moves[live, ply] = actions[live]
        plies += live
        state = where(live, game.step(state, actions), state)
    return PlayedGames(game.winner(state).astype(np.int8), moves, plies, state)


def play_games(
    game: BatchGame, first: Bot, second: Bot, num_games: int, rng: np.random.Generator
) -> np.ndarray:
    """`num_games` games with `first` as player_0 and `second` as player_1.

    Returns the winners, int8 [num_games]: 0, 1, or -1 for a draw.
    """
    return play_recorded(game, first, second, num_games, rng).winners
