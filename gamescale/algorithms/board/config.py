"""Typed configs of the board-game algorithms."""

from __future__ import annotations

from pydantic import Field

from gamescale.algorithms.registry import AlgorithmConfig


class MCTSStrengthConfig(AlgorithmConfig):
    """MCTS (UCT, random rollouts) at several simulation counts against the random bot and
    the Connect Four solver; every iteration plays `games_per_shard` games per matchup per
    shard, half of them with MCTS moving first."""

    name: str = "board_mcts_strength"
    simulations: list[int] = Field(default_factory=lambda: [16, 64, 256], min_length=1)
    opponents: list[str] = Field(default_factory=lambda: ["random", "solver"], min_length=1)
    games_per_shard: int = Field(4, ge=2, description="games per matchup per shard (even: both colours)")
    parallel: int = Field(4, ge=1, description="MCTS selections per tree per rollout call")
    solver_max_nodes: int = Field(5_000, ge=100, description="node budget per solver move")
    solver_min_plies: int = Field(16, ge=0, description="the solver is tried from this ply on")
    solver_fallback_simulations: int = Field(100, ge=1, description="MCTS of the solver bot before that")
