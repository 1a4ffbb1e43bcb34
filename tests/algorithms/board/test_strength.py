"""The MCTS-strength experiment algorithm in one process: scores are consistent with the
games it records, results do not depend on how shards are run, bad bot names fail."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.algorithms.base import LocalShardRunner, StepContext
from gamescale.algorithms.board import MCTSStrengthConfig
from gamescale.algorithms.board.strength import MCTSStrength
from gamescale.envs.registry import make_env


def _run(config, iterations=1, num_shards=2):
    algo = MCTSStrength(make_env("connect_four"), config)
    state = algo.init(0)
    for it in range(iterations):
        ctx = StepContext(iteration=it, seed=0, shards=LocalShardRunner(None), num_shards=num_shards)
        state, metrics = algo.step(state, ctx)
    return algo, state, metrics


def test_scores_match_the_recorded_games():
    config = MCTSStrengthConfig(simulations=[4, 24], opponents=["random", "solver"], games_per_shard=2,
                                solver_min_plies=30, solver_fallback_simulations=4)
    algo, state, metrics = _run(config)
    games = algo.tables(state)["games"].to_pandas()
    assert len(games) == metrics["games"] == 2 * 2 * 2 * 2  # sims x opponents x shards x games
    for (opponent, sims), group in games.groupby(["opponent", "simulations"]):
        assert metrics[f"score_vs_{opponent}_s{sims}"] == pytest.approx(group["score"].mean())
        # The score is what the winner column says from MCTS's seat.
        expected = np.where(group.winner < 0, 0.5, (group.winner == group.mcts_player).astype(float))
        assert np.array_equal(expected, group.score)
    assert metrics["score_vs_random_s24"] >= 0.75  # 24 simulations nearly never lose to random play
    assert set(games.mcts_player) == {0, 1}


def test_same_games_on_one_runner_twice():
    config = MCTSStrengthConfig(simulations=[4], opponents=["random"], games_per_shard=2)
    _, a, _ = _run(config)
    _, b, _ = _run(config)
    assert np.array_equal(a["winner"], b["winner"])  # shards are seeded per (run, iteration, shard)


def test_unknown_bot_and_odd_games():
    with pytest.raises(ValueError, match="unknown bot name"):
        MCTSStrength(None, MCTSStrengthConfig(opponents=["random", "alphazero"]))
    with pytest.raises(ValueError, match="even"):
        MCTSStrength(None, MCTSStrengthConfig(games_per_shard=3))
