"""RLlib integration: gamescale environments under their registered names.

`register_rllib_envs()` registers every gamescale environment with Ray Tune's registry,
so `PPOConfig().environment("routing_n_player", env_config={"net": "braess"})` works.
PettingZoo Parallel and AEC environments are wrapped in RLlib's multi-agent adapters,
Gymnasium environments pass through, and array models (mean-field games, networks) are
refused with a message saying why. Observations of the form
`{"observation", "action_mask"}` (the PettingZoo convention) are renamed to
`{"observations", "action_mask"}`, the form RLlib's action-masking RLModule reads.

`routing_ppo_config(...)` is the example: PPO with one policy shared by all vehicles of
the N-player routing game, with illegal next links masked out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from gamescale.envs.registry import env_names, make_env

SHARED_POLICY = "shared_vehicle_policy"


class _RenameMaskedObservations:
    """Parallel-env wrapper: `{"observation": x, "action_mask": m}` -> `{"observations": x, ...}`."""

    def __init__(self, env: Any):
        self.env = env
        self.metadata = getattr(env, "metadata", {})
        self.possible_agents = env.possible_agents
        self.render_mode = getattr(env, "render_mode", None)
        self._spaces: dict[str, gym.spaces.Dict] = {}

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    @property
    def unwrapped(self) -> Any:
        return self.env

    def observation_space(self, agent: str) -> gym.spaces.Dict:
        if agent not in self._spaces:
            inner = self.env.observation_space(agent)
            self._spaces[agent] = gym.spaces.Dict(
                {"observations": inner["observation"], "action_mask": _float_mask_space(inner["action_mask"])}
            )
        return self._spaces[agent]

    def action_space(self, agent: str) -> gym.Space:
        return self.env.action_space(agent)

    def _rename(self, observations: dict[str, Any]) -> dict[str, Any]:
        return {
            agent: {"observations": obs["observation"], "action_mask": obs["action_mask"].astype(np.float32)}
            for agent, obs in observations.items()
        }

    def reset(self, seed: int | None = None, options: dict | None = None):
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._rename(observations), infos

    def step(self, actions: dict[str, Any]):
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        return self._rename(observations), rewards, terminations, truncations, infos

    def close(self) -> None:
        self.env.close()


def _float_mask_space(space: gym.Space) -> gym.spaces.Box:
    return gym.spaces.Box(0.0, 1.0, space.shape, np.float32)


def _has_masked_observations(env: Any) -> bool:
    agent = env.possible_agents[0]
    space = env.observation_space(agent)
    return isinstance(space, gym.spaces.Dict) and set(space.spaces) == {"observation", "action_mask"}


def as_rllib_env(env: Any, name: str = "environment") -> Any:
    """The RLlib view of a gamescale environment (see the module docstring)."""
    from pettingzoo import AECEnv, ParallelEnv
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv, PettingZooEnv

    if isinstance(env, ParallelEnv):
        return ParallelPettingZooEnv(_RenameMaskedObservations(env) if _has_masked_observations(env) else env)
    if isinstance(env, AECEnv):
        return PettingZooEnv(env)
    if isinstance(env, gym.Env):
        return env
    raise TypeError(
        f"{name} is an array model ({type(env).__name__}), not a Gymnasium or PettingZoo environment; "
        "solve it with a gamescale algorithm instead of RLlib"
    )


def env_creator(name: str) -> Callable[[dict], Any]:
    def create(env_config: dict | None = None) -> Any:
        return as_rllib_env(make_env(name, **dict(env_config or {})), name)

    return create


def register_rllib_envs() -> list[str]:
    """Register every gamescale environment with RLlib under its gamescale name."""
    from ray.tune.registry import register_env

    names = env_names()
    for name in names:
        register_env(name, env_creator(name))
    return names


def routing_ppo_config(net: str = "braess", num_vehicles: int = 8, train_batch_size: int = 400, **env_kwargs: Any):
    """PPO on the N-player routing game: one policy shared by every vehicle, masked actions."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule

    register_rllib_envs()
    env_config = {"net": net, "num_vehicles": num_vehicles, **env_kwargs}
    return (
        PPOConfig()
        # RLlib's env pre-check steps with unmasked random actions, which this game refuses.
        .environment("routing_n_player", env_config=env_config, disable_env_checking=True)
        .framework("torch")
        .env_runners(num_env_runners=0)
        .training(train_batch_size=train_batch_size, minibatch_size=min(128, train_batch_size), num_epochs=2)
        .multi_agent(policies={SHARED_POLICY}, policy_mapping_fn=lambda agent_id, *args, **kwargs: SHARED_POLICY)
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                rl_module_specs={
                    SHARED_POLICY: RLModuleSpec(
                        module_class=ActionMaskingTorchRLModule, model_config={"head_fcnet_hiddens": [32]}
                    )
                }
            )
        )
    )
