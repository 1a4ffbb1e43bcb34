"""Typed configs of the board-game algorithms."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gamescale.algorithms.lm.shapes import ModelShape
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
    elo_reference: str = Field("random", description="bot whose Elo is fixed at reference_elo (random or solver)")
    reference_elo: float = 0.0


class TournamentConfig(AlgorithmConfig):
    """Bots play each other on the run's board game; one iteration is one round. Bot names:
    `random`, `mcts<N>` (UCT, N simulations), `solver` (Connect Four), and for chess
    `stockfish` with any of `-elo<E>` (UCI_Elo), `-skill<S>`, `-n<nodes>`, `-d<depth>`
    (e.g. `stockfish-elo1500`, `stockfish-n100`)."""

    name: str = "board_tournament"
    bots: list[str] = Field(default_factory=lambda: ["random", "mcts16", "mcts64"], min_length=1)
    schedule: Literal["round_robin", "gauntlet"] = "round_robin"
    opponents: list[str] = Field(default_factory=list, description="gauntlet: every bot plays each of these")
    games_per_pair: int = Field(2, ge=2, description="games per pairing per round (even: both colours)")
    reference: str = Field("random", description="the bot whose rating is fixed (Elo anchor)")
    reference_elo: float = 0.0
    virtual_draws: float = Field(1.0, ge=0.0, description="drawn games added per pair that met (keeps Elo finite)")
    parallel: int = Field(4, ge=1, description="MCTS selections per tree per rollout call")
    solver_max_nodes: int = Field(5_000, ge=100)
    solver_min_plies: int = Field(16, ge=0)
    solver_fallback_simulations: int = Field(100, ge=1)
    stockfish_nodes: int = Field(20_000, ge=1, description="node limit of Stockfish bots whose name sets none")
    stockfish_path: str | None = None
    chess_max_plies: int = Field(300, ge=2, description="chess games are drawn after this many plies")
    rollout_plies: int = Field(8, ge=0, description="chess MCTS: random plies per rollout, then material decides")
    max_restarts: int = Field(3, ge=0, description="engine restarts per game before the shard fails")
    sample_games: int = Field(6, ge=0, description="final positions drawn (and SVG for chess)")


class BoardModelShape(ModelShape):
    """Shape of the board model's transformer: the lm family's `ModelShape` plus its context
    (the vocabulary is the byte tokenizer's)."""

    context_length: int = Field(160, ge=64, description="tokens; a knowledge sequence is about 150")


class BoardModelConfig(AlgorithmConfig):
    """Connect Four: generate labelled self-play data on rollout workers, train the board
    model on the learner, measure its knowledge on held-out positions, then play a
    round-robin tournament of the model's bots (`policy`, `puct<N>`, `internal`) against
    MCTS baselines and random with Elo. Iterations before `train_iterations` make data
    and train; every later iteration is one tournament round with the trained model."""

    name: str = "board_model"
    # data (each training iteration, every shard)
    games_per_shard: int = Field(12, ge=1, description="self-play games per shard per training iteration")
    label_simulations: int = Field(100, ge=1, description="UCT simulations per self-play move (its root values label)")
    parallel: int = Field(8, ge=1, description="UCT / PUCT selections per tree per evaluation call")
    random_plies: int = Field(4, ge=0, description="self-play opens with this many random moves")
    solver_min_plies: int = Field(18, ge=0, description="the solver labels positions from this ply on ...")
    solver_max_nodes: int = Field(3_000, ge=100, description="... when it finishes within this many nodes")
    holdout_every: int = Field(10, ge=2, description="every k-th game is held out for the accuracies")
    candidates: int = Field(3, ge=1, le=7, description="moves in an internal-search tree")
    line_depth: int = Field(2, ge=0, description="plies of the principal line after the best candidate")
    # model and training
    model: BoardModelShape = Field(default_factory=BoardModelShape)
    train_iterations: int = Field(2, ge=1, description="iterations that make data and train; then tournament rounds")
    train_steps: int = Field(800, ge=1, description="gradient steps per training iteration")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    eval_positions: int = Field(120, ge=1, description="held-out positions for the accuracies")
    # the model's bots
    temperature: float = Field(0.25, gt=0, description="softmax temperature of move values -> PUCT prior")
    c_puct: float = Field(1.5, gt=0)
    max_new_tokens: int = Field(48, ge=8, description="internal search: longest written tree")
    # tournament
    bots: list[str] = Field(default_factory=lambda: ["random", "mcts32", "mcts128", "policy", "puct32", "internal"],
                            min_length=2)
    games_per_pair: int = Field(4, ge=2, description="games per pairing per round (even: both colours)")
    reference: str = "random"
    reference_elo: float = 0.0
    virtual_draws: float = Field(1.0, ge=0.0)
