"""Bots for the board games (issue 10): uniform random, batched UCT MCTS, an exact Connect
Four solver and Stockfish over UCI, tournaments with Elo (`board_tournament`) and the `board_mcts_strength`
experiment algorithm. Import the submodules directly: `bots`, `mcts`, `solver`,
`stockfish`, `strength`, `tournament`, `elo`, `chess_records`."""

from __future__ import annotations

from typing import Any

from gamescale.algorithms.board.config import MCTSStrengthConfig, TournamentConfig
from gamescale.algorithms.registry import register_algorithm


def build_mcts_strength(config: MCTSStrengthConfig, env: Any):
    from gamescale.algorithms.board.strength import MCTSStrength

    return MCTSStrength(env, config)


def build_tournament(config: TournamentConfig, env: Any):
    from gamescale.algorithms.board.tournament import Tournament

    return Tournament(env, config)


register_algorithm(
    "board_tournament", TournamentConfig, build_tournament, "board games: round-robin or gauntlet tournament with Elo"
)
register_algorithm(
    "board_mcts_strength", MCTSStrengthConfig, build_mcts_strength, "Connect Four: MCTS vs random and the solver"
)

__all__ = ["MCTSStrengthConfig", "TournamentConfig"]
