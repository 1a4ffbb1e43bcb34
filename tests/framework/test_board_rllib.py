"""RLlib sees the board games with masked observations; PPO self-play trains on Connect
Four for two iterations on the session's local Ray, never playing an illegal move."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.framework.board_rllib import board_rllib_env, board_selfplay_ppo_config


def test_board_env_for_rllib_masks_and_turns():
    env = board_rllib_env("connect_four")
    observations, _ = env.reset(seed=0)
    assert list(observations) == ["player_0"]
    obs = observations["player_0"]
    assert set(obs) == {"observations", "action_mask"} and obs["action_mask"].dtype == np.float32
    assert env.observation_space["player_0"]["observations"].contains(obs["observations"])
    observations, *_ = env.step({"player_0": 3})
    assert list(observations) == ["player_1"]


# Slow: test_rllib already trains every board game for one iteration in the default set.
@pytest.mark.slow
def test_selfplay_ppo_trains_two_iterations(ray_cluster):
    algo = board_selfplay_ppo_config("connect_four", train_batch_size=200).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
    finally:
        algo.stop()
    runners = result["env_runners"]
    # Every game ended by legal play (an illegal move raises) with +1 / -1 or 0 / 0, so the
    # episode return summed over both players of the shared policy is exactly zero.
    assert runners["num_episodes"] >= 1
    assert runners["episode_return_mean"] == 0.0
    assert 7 <= runners["episode_len_mean"] <= 42
