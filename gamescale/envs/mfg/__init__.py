"""Mean-field games as arrays: the `MeanFieldGame` model and the registered games
(`crowd_modelling`, `crowd_modelling_2d`, `linear_quadratic`, `periodic_aversion`,
`predator_prey`). Solvers live in `gamescale.algorithms.mfg`."""

from __future__ import annotations

from gamescale.envs.mfg.config import (
    CrowdModelling2DConfig,
    CrowdModellingConfig,
    LinearQuadraticConfig,
    PeriodicAversionConfig,
    PredatorPreyConfig,
)
from gamescale.envs.mfg.crowd import MAZE_SETTINGS, CrowdModelling1D, CrowdModelling2D, torus_four_rooms_walls
from gamescale.envs.mfg.game import (
    MeanFieldGame,
    MultiPopulationGame,
    as_multi_population,
    check_distribution,
    check_kernel,
)
from gamescale.envs.mfg.lq import LinearQuadratic
from gamescale.envs.mfg.periodic_aversion import PeriodicAversion
from gamescale.envs.mfg.predator_prey import PredatorPrey
from gamescale.envs.registry import register_env

__all__ = [
    "CrowdModelling1D",
    "CrowdModelling2D",
    "LinearQuadratic",
    "MeanFieldGame",
    "MultiPopulationGame",
    "PeriodicAversion",
    "PredatorPrey",
    "as_multi_population",
    "check_distribution",
    "check_kernel",
    "MAZE_SETTINGS",
    "torus_four_rooms_walls",
]


def build_crowd_modelling(config: CrowdModellingConfig) -> CrowdModelling1D:
    return CrowdModelling1D(config.size, config.horizon, action_cost=config.action_cost)


def build_crowd_modelling_2d(config: CrowdModelling2DConfig) -> CrowdModelling2D:
    forbidden = list(config.forbidden_states)
    if config.maze == "torus_four_rooms":
        forbidden += torus_four_rooms_walls(config.size)
    elif config.maze is not None:
        forbidden += MAZE_SETTINGS[config.maze].walls()
    return CrowdModelling2D(
        config.size,
        config.horizon,
        noise_intensity=config.noise_intensity,
        crowd_aversion_coef=config.crowd_aversion_coef,
        only_distribution_reward=config.only_distribution_reward,
        with_congestion=config.with_congestion,
        forbidden_states=sorted(set(forbidden)),
        positional_reward=list(config.positional_reward) or None,
        initial_cells=list(config.initial_cells) or None,
        action_cost=config.action_cost,
        name=f"crowd_modelling_2d_{config.maze}" if config.maze else "crowd_modelling_2d",
    )


def build_linear_quadratic(config: LinearQuadraticConfig) -> LinearQuadratic:
    return LinearQuadratic(**config.model_dump(exclude={"name"}))


def build_periodic_aversion(config: PeriodicAversionConfig) -> PeriodicAversion:
    return PeriodicAversion(**config.model_dump(exclude={"name"}))


def build_predator_prey(config: PredatorPreyConfig) -> PredatorPrey:
    return PredatorPrey(**config.model_dump(exclude={"name"}))


register_env(
    "crowd_modelling", CrowdModellingConfig, build_crowd_modelling, "1D crowd modelling MFG (OpenSpiel defaults)"
)
register_env(
    "crowd_modelling_2d", CrowdModelling2DConfig, build_crowd_modelling_2d, "2D crowd modelling MFG with mazes"
)
register_env("linear_quadratic", LinearQuadraticConfig, build_linear_quadratic, "linear-quadratic MFG on a ring")
register_env("periodic_aversion", PeriodicAversionConfig, build_periodic_aversion, "periodic aversion MFG")
register_env("predator_prey", PredatorPreyConfig, build_predator_prey, "multi-population predator-prey MFG")

import gamescale.envs.mfg.normal_form  # noqa: E402, F401  (registers mean_field_nfg)
