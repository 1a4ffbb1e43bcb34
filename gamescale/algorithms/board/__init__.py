"""Bots for the board games (issue 10): uniform random, batched UCT MCTS, an exact Connect
Four solver and Stockfish over UCI, tournaments with Elo (`board_tournament`), the `board_mcts_strength`
experiment algorithm, and the board model (`board_model`: `model_data`, `knowledge_model`,
`puct`, `model_bots`, `model_experiment`). Import the submodules directly: `bots`, `mcts`,
`puct`, `solver`, `stockfish`, `strength`, `tournament`, `elo`, `chess_records`."""

from __future__ import annotations

from typing import Any

from gamescale.algorithms.board.config import BoardModelConfig, MCTSStrengthConfig, TournamentConfig
from gamescale.algorithms.registry import register_algorithm


def build_mcts_strength(config: MCTSStrengthConfig, env: Any):
    from gamescale.algorithms.board.strength import MCTSStrength

    return MCTSStrength(env, config)


def build_board_model(config: BoardModelConfig, env: Any):
    from gamescale.algorithms.board.model_experiment import BoardModelAlgorithm

    return BoardModelAlgorithm(env, config)


def build_tournament(config: TournamentConfig, env: Any):
    from gamescale.algorithms.board.tournament import Tournament

    return Tournament(env, config)


register_algorithm(
    "board_tournament", TournamentConfig, build_tournament, "board games: round-robin or gauntlet tournament with Elo"
)
register_algorithm(
    "board_model", BoardModelConfig, build_board_model,
    "Connect Four: labelled self-play data, a board transformer, PUCT and internal search in a tournament",
)
register_algorithm(
    "board_mcts_strength", MCTSStrengthConfig, build_mcts_strength, "Connect Four: MCTS vs random and the solver"
)

__all__ = ["BoardModelConfig", "MCTSStrengthConfig", "TournamentConfig"]
