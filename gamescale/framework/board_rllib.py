"""RLlib view of the board games: turn-based AEC envs with masked actions.

`register_board_rllib_envs()` registers `connect_four`, `hex`, `chess` and `chess960`
under their gamescale names: each env is wrapped in RLlib's `PettingZooEnv` (one agent
acts per step) with observations renamed `{"observations", "action_mask"}` (a float
mask), the form RLlib's action-masking RLModule reads; the planes are flattened. `board_selfplay_ppo_config(...)`
is the example: PPO self-play, one policy shared by both players, illegal moves masked.
Kept apart from `framework/rllib.py` so that module can call it for the board family.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo.utils import BaseWrapper

from gamescale.envs.registry import make_env

BOARD_ENVS = ("connect_four", "hex", "chess", "chess960")
SHARED_POLICY = "shared_board_policy"


class MaskedObservationAEC(BaseWrapper):
    """AEC wrapper: `{"observation": x, "action_mask": m}` -> `{"observations": flat float x, "action_mask": float m}`.

    The planes are flattened so RLlib's default MLP encoder takes them (its CNN defaults
    only fit a few image sizes)."""

    def __init__(self, env: Any):
        super().__init__(env)
        self._spaces: dict[str, gym.spaces.Dict] = {}

    def observation_space(self, agent: str) -> gym.spaces.Dict:
        if agent not in self._spaces:
            inner = self.env.observation_space(agent)
            self._spaces[agent] = gym.spaces.Dict(
                {
                    "observations": gym.spaces.Box(0.0, 1.0, (int(np.prod(inner["observation"].shape)),), np.float32),
                    "action_mask": gym.spaces.Box(0.0, 1.0, inner["action_mask"].shape, np.float32),
                }
            )
        return self._spaces[agent]

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        obs = self.env.observe(agent)
        return {
            "observations": obs["observation"].reshape(-1).astype(np.float32),
            "action_mask": obs["action_mask"].astype(np.float32),
        }


def board_rllib_env(name: str, env_config: dict | None = None) -> Any:
    from ray.rllib.env.wrappers.pettingzoo_env import PettingZooEnv

    return PettingZooEnv(MaskedObservationAEC(make_env(name, **dict(env_config or {}))))


def register_board_rllib_envs() -> list[str]:
    """Register the board games with RLlib (masked observations; see the module docstring)."""
    from ray.tune.registry import register_env

    for name in BOARD_ENVS:
        register_env(name, lambda config, name=name: board_rllib_env(name, config))
    return list(BOARD_ENVS)


def board_selfplay_ppo_config(name: str = "connect_four", train_batch_size: int = 256, **env_kwargs: Any):
    """PPO self-play on a board game: one masked policy plays both sides."""
    from gamescale.framework.rllib import masked_shared_policy_ppo

    register_board_rllib_envs()
    return masked_shared_policy_ppo(name, env_kwargs, SHARED_POLICY, train_batch_size, min(64, train_batch_size),
                                    num_epochs=1)
