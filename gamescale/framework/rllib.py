"""RLlib integration: every gamescale environment that is a decision problem, under its
registered name.

`register_rllib_envs()` registers every gamescale environment with Ray Tune's registry,
so `PPOConfig().environment("routing_n_player", env_config={"net": "braess"})` works.
PettingZoo Parallel and AEC environments are wrapped in RLlib's multi-agent adapters,
Gymnasium environments pass through. Observations of the form `{"observation",
"action_mask"}` (the PettingZoo convention) are renamed to `{"observations",
"action_mask"}`, the form RLlib's action-masking RLModule reads.

Mean-field games become the single-agent Gymnasium env of their representative player
(`gamescale.envs.mfg.representative`) against a fixed mean field, chosen by two extra
env_config keys beside the game's own: `mean_field` is `"uniform"` (default: the flow of
the uniform policy, by the game's exact forward equation), a policy array `[T, S, A]`
(`[P, T, S, A]` for several populations) whose flow is used, or the path of a finished
run directory or one of its checkpoints (the flow the run stored; the game is then the
run's own, and game keys given beside it must agree with it); `population` picks the
player's population (default 0).

Environments that are not sequential decision problems (`NOT_RL_ENVIRONMENTS`) are
refused with the reason, before anything is built.

`routing_ppo_config(...)` is the multi-agent example (one policy shared by all vehicles of
the N-player routing game, illegal next links masked out), `mean_field_ppo_config(...)`
the single-agent one; `policy_table(module, env)` reads a trained module back as a policy
table `[T, S, A]` that the exact evaluators of `gamescale.algorithms.mfg` score.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from gamescale.envs.mfg.game import MeanFieldGame, MultiPopulationGame
from gamescale.envs.mfg.representative import RepresentativePlayerEnv, one_hot_observations
from gamescale.envs.registry import EnvConfig, build_env, env_names
from gamescale.envs.registry import env_config as validate_env_config
from gamescale.framework.errors import ConfigError

SHARED_POLICY = "shared_vehicle_policy"

_COOPERATIVE = (
    "a cooperative game given by its characteristic function v(S): coalitions form and split their value "
    "(core, least core, Shapley), nobody acts in a state and there is no reward over time"
)
# Why each non-RL environment is one; a test checks that every registered name is either
# built for RLlib or listed here.
NOT_RL_ENVIRONMENTS: dict[str, str] = {
    "routing_network": (
        "a static road network with fixed origin-destination demand: traffic assignment chooses path flows "
        "once, with no states or time steps (its sequential forms are routing_n_player and routing_mean_field)"
    ),
    "airport_game": _COOPERATIVE,
    "glove_game": _COOPERATIVE,
    "induced_subgraph": _COOPERATIVE,
    "majority_game": _COOPERATIVE,
    "mc_net": _COOPERATIVE,
    "weighted_voting": _COOPERATIVE,
    "xai_features": _COOPERATIVE + " (the players are a model's features)",
    "distill_lab": (
        "an oracle and a teacher language model for distillation: the student is fitted to the teacher's "
        "token distributions (a supervised loss); there is no reward to maximise"
    ),
    "bond_task": (
        "a reference language model, prompts and a true reward for BOND, whose aim is the reference policy's "
        "Best-of-N distribution (a KL to the reference); a token env maximising the reward alone has a "
        "degenerate optimum (one fixed best sequence) and would drop the reference the task is about"
    ),
    "music_corpus": (
        "a corpus of tokenised scores with text prompts: training and held-out data for the music models, "
        "not an environment anyone acts in"
    ),
    "clinic": (
        "a diagnostic dialogue whose observations and actions are free text (gymnasium Text spaces), which "
        "RLlib's models cannot encode; its players are language models, evaluated by clinic_eval"
    ),
}
MEAN_FIELD_KEYS = ("mean_field", "population")


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
    """The RLlib view of a built gamescale environment (see the module docstring).

    A mean-field game becomes its representative player against the uniform policy's flow;
    `make_rllib_env` builds it against any other mean field.
    """
    from pettingzoo import AECEnv, ParallelEnv
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv, PettingZooEnv

    if isinstance(env, ParallelEnv):
        return ParallelPettingZooEnv(_RenameMaskedObservations(env) if _has_masked_observations(env) else env)
    if isinstance(env, AECEnv):
        return PettingZooEnv(env)
    if isinstance(env, gym.Env):
        return env
    if isinstance(env, MeanFieldGame | MultiPopulationGame):
        return RepresentativePlayerEnv(env, mean_field_of_policy(env, "uniform"))
    reason = NOT_RL_ENVIRONMENTS.get(name, f"an array model ({type(env).__name__}), not a sequential decision problem")
    raise TypeError(f"{name} is not an RL environment: {reason}")


def mean_field_of_policy(game: MeanFieldGame | MultiPopulationGame, policy: Any) -> np.ndarray:
    """The flow `[T + 1, S]` (or `[P, T + 1, S]`) of `policy` ("uniform" or an array) by the
    game's exact forward equation."""
    from gamescale.algorithms.mfg.evaluation import propagate, uniform_policy

    if isinstance(policy, str):
        if policy != "uniform":
            raise ConfigError(f"mean_field policy must be 'uniform', an array or a run path, got {policy!r}")
        policy = uniform_policy(game)
    return propagate(game, np.asarray(policy, dtype=np.float64))


def load_mean_field(path: str | Path) -> tuple[EnvConfig, np.ndarray]:
    """(the run's env config, its mean field `[P, T + 1, S]`) from a run directory or one of
    its checkpoints: the run's `mean_field.parquet` if it wrote one, else the checkpoint's `mu`."""
    import pyarrow.parquet as pq

    from gamescale.algorithms.mfg.pictures import mean_field_from_table
    from gamescale.framework import storage
    from gamescale.framework.config import load_config

    path = Path(path)
    mean_field_file = "mean_field.parquet"  # the table a mean-field solver returns as `mean_field`
    is_checkpoint = (path / "meta.json").is_file()
    run_dir = path.parent.parent if is_checkpoint else path
    if not (run_dir / storage.CONFIG_FILE).is_file():
        raise ConfigError(f"{path} is neither a run directory nor a checkpoint of one (no {storage.CONFIG_FILE})")
    config = load_config(run_dir / storage.CONFIG_FILE).env
    if not is_checkpoint and (path / mean_field_file).is_file():
        return config, mean_field_from_table(pq.read_table(path / mean_field_file))
    checkpoint = path if is_checkpoint else storage.latest_checkpoint(run_dir)
    mu = None if checkpoint is None else storage.load_checkpoint(checkpoint)[0].get("mu")
    if mu is None:
        raise ConfigError(f"{path} stores no mean field (no {mean_field_file} and no checkpoint with `mu`)")
    return config, np.asarray(mu, dtype=np.float64)


def _game_and_flow(name: str, game_kwargs: dict[str, Any], source: Any) -> tuple[Any, np.ndarray | None]:
    """The built environment and, for a mean-field game, the flow named by `source`."""
    if isinstance(source, str | Path) and source != "uniform":
        if not Path(source).exists():
            raise ConfigError(
                f"mean_field {str(source)!r} is neither 'uniform', a policy array, nor a run directory or checkpoint"
            )
        config, mu = load_mean_field(source)
        if config.name != name:
            raise ConfigError(f"the run at {source} played {config.name}, not {name}")
        stored = config.model_dump()
        clashes = {
            k: v
            for k, v in game_kwargs.items()
            if stored.get(k) != validate_env_config({"name": name, k: v}).model_dump()[k]
        }
        if clashes:
            raise ConfigError(f"env_config {clashes} differs from the run's game at {source}; leave it out")
        return build_env(config), mu
    env = build_env(validate_env_config({"name": name, **game_kwargs}))
    if not isinstance(env, MeanFieldGame | MultiPopulationGame):
        return env, None
    return env, mean_field_of_policy(env, source)


def make_rllib_env(name: str, env_config: dict | None = None) -> Any:
    """The RLlib environment registered as `name`, built from `env_config` (the game's own
    keys, plus `mean_field` and `population` for mean-field games)."""
    if name in NOT_RL_ENVIRONMENTS:
        raise TypeError(f"{name} is not an RL environment: {NOT_RL_ENVIRONMENTS[name]}")
    from gamescale.framework.board_rllib import BOARD_ENVS, board_rllib_env

    if name in BOARD_ENVS:  # turn-based: one agent acts per step, with masked, flattened observations
        return board_rllib_env(name, env_config)
    game_kwargs = dict(env_config or {})
    extra = {key: game_kwargs.pop(key) for key in MEAN_FIELD_KEYS if key in game_kwargs}
    env, mu = _game_and_flow(name, game_kwargs, extra.get("mean_field", "uniform"))
    if mu is None:
        if extra:
            raise ConfigError(f"{', '.join(extra)} apply only to mean-field games, not to {name}")
        return as_rllib_env(env, name)
    return RepresentativePlayerEnv(env, mu, int(extra.get("population", 0)))


def env_creator(name: str) -> Callable[[dict], Any]:
    def create(env_config: dict | None = None) -> Any:
        return make_rllib_env(name, env_config)

    return create


def rl_env_names() -> list[str]:
    """The registered environments RLlib can build (every one not in `NOT_RL_ENVIRONMENTS`)."""
    return [name for name in env_names() if name not in NOT_RL_ENVIRONMENTS]


def register_rllib_envs() -> list[str]:
    """Register every gamescale environment with RLlib under its gamescale name (the non-RL
    ones too, so that building one says why it is refused)."""
    from ray.tune.registry import register_env

    names = env_names()
    for name in names:
        register_env(name, env_creator(name))
    return names


def policy_table(module: Any, env: RepresentativePlayerEnv) -> np.ndarray:
    """The policy `[T, S, A]` a trained RLModule plays in the representative-player env:
    its action distribution at every (t, s), zero on illegal actions."""
    import torch
    from ray.rllib.core.columns import Columns

    T, S = env.horizon, env.num_states
    features = one_hot_observations(S, T)[:T].reshape(T * S, -1)
    legal = np.broadcast_to(env.legal_actions, (T, S, env.num_actions)).reshape(T * S, -1)
    obs: Any = torch.from_numpy(features)
    if env.masked:
        obs = {"observations": obs, "action_mask": torch.from_numpy(legal.astype(np.float32))}
    with torch.no_grad():
        logits = module.forward_inference({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS].double().numpy()
    logits = np.where(legal, logits, -np.inf)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)).reshape(T, S, -1)


def mean_field_ppo_config(
    name: str = "crowd_modelling",
    mean_field: Any = "uniform",
    population: int = 0,
    train_batch_size: int = 400,
    **game_kwargs: Any,
):
    """PPO for the representative player of mean-field game `name` against a fixed mean field
    (see the module docstring for `mean_field`); masked actions where the game has illegal ones."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    register_rllib_envs()
    rllib_env_config = {**game_kwargs, "mean_field": mean_field, "population": population}
    env = make_rllib_env(name, rllib_env_config)
    if not isinstance(env, RepresentativePlayerEnv):
        raise ConfigError(f"{name} is not a mean-field game; use routing_ppo_config or PPOConfig directly")
    # A tabular problem: a small network learns it, and (gamma 1) the undiscounted return
    # the game's values measure.
    model_config = {"fcnet_hiddens": [64], "head_fcnet_hiddens": [32]}
    module_class = None
    if env.masked:
        from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule

        module_class = ActionMaskingTorchRLModule
    config = (
        PPOConfig()
        .environment(name, env_config=rllib_env_config)
        .framework("torch")
        .env_runners(num_env_runners=0)
        .training(
            train_batch_size=train_batch_size,
            minibatch_size=min(128, train_batch_size),
            num_epochs=8,
            lr=3e-3,
            gamma=1.0,
        )
    )
    if module_class is None:
        return config.rl_module(model_config=model_config)
    return config.rl_module(rl_module_spec=RLModuleSpec(module_class=module_class, model_config=model_config))


def masked_shared_policy_ppo(env: str, env_config: dict[str, Any], policy: str, train_batch_size: int,
                             minibatch_size: int, num_epochs: int, **training: Any):
    """PPO where every agent of a registered multi-agent env plays one shared policy with
    action masking (the env's observations are `{observations, action_mask}` dicts)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule

    masked = RLModuleSpec(module_class=ActionMaskingTorchRLModule, model_config={"head_fcnet_hiddens": [32]})
    return (
        PPOConfig()
        # RLlib's env pre-check steps with unmasked random actions, which these games refuse.
        .environment(env, env_config=env_config, disable_env_checking=True)
        .framework("torch")
        .env_runners(num_env_runners=0)
        .training(train_batch_size=train_batch_size, minibatch_size=minibatch_size, num_epochs=num_epochs, **training)
        .multi_agent(policies={policy}, policy_mapping_fn=lambda agent_id, *args, **kwargs: policy)
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={policy: masked}))
    )


def routing_ppo_config(net: str = "braess", num_vehicles: int = 8, train_batch_size: int = 400, **env_kwargs: Any):
    """PPO on the N-player routing game: one policy shared by every vehicle, masked actions."""
    register_rllib_envs()
    env_config = {"net": net, "num_vehicles": num_vehicles, **env_kwargs}
    # RLlib's default learning rate (5e-5) barely moves in a few iterations.
    return masked_shared_policy_ppo("routing_n_player", env_config, SHARED_POLICY, train_batch_size,
                                    min(128, train_batch_size), num_epochs=2, lr=3e-3)
