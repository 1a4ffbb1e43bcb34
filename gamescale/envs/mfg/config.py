"""Typed configs of the mean-field games (the `env:` block of an experiment YAML)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from gamescale.envs.registry import EnvConfig

ActionCost = Literal["openspiel", "markov"]


class CrowdModellingConfig(EnvConfig):
    """1D crowd modelling; defaults are OpenSpiel's `mfg_crowd_modelling`."""

    name: str = "crowd_modelling"
    size: int = Field(default=10, ge=2)
    horizon: int = Field(default=10, gt=0)
    action_cost: ActionCost = "openspiel"


class CrowdModelling2DConfig(EnvConfig):
    """2D crowd modelling; defaults are OpenSpiel's `mfg_crowd_modelling_2d`.

    `maze: four_rooms` / `maze: maze` are the paper's games, OpenSpiel's
    `crowd_modelling_2d_four_rooms` / `crowd_modelling_2d_maze`: they fix `size` (13 / 22) and
    default `horizon` (40 / 100), `initial_cells` ([[1, 1]]) and `only_distribution_reward`
    (true) to OpenSpiel's values; fields given explicitly still win, except a different size.
    `maze: torus_four_rooms` adds a four-rooms cross of any size (>= 7) to the torus.
    `forbidden_states` are extra walls ([x, y] cells); `positional_reward` holds [x, y, value]
    targets (default the centre, value 1); `initial_cells` restricts the uniform initial
    distribution.
    """

    name: str = "crowd_modelling_2d"
    size: int = Field(default=10, gt=0)
    horizon: int = Field(default=10, gt=0)
    noise_intensity: float = Field(default=1.0, ge=0.0, le=1.0)
    crowd_aversion_coef: float = 1.0
    only_distribution_reward: bool = False
    with_congestion: bool = False
    forbidden_states: list[tuple[int, int]] = []
    maze: Literal["four_rooms", "maze", "torus_four_rooms"] | None = None
    positional_reward: list[tuple[int, int, float]] = []
    initial_cells: list[tuple[int, int]] = []
    action_cost: ActionCost = "openspiel"

    @model_validator(mode="before")
    @classmethod
    def _maze_setting(cls, data: Any) -> Any:
        """Fill the named game's settings into the fields the config leaves unset."""
        from gamescale.envs.mfg.crowd import MAZE_SETTINGS  # numpy-only module; keeps config import light

        if not isinstance(data, dict) or data.get("maze") not in MAZE_SETTINGS:
            return data
        setting = MAZE_SETTINGS[data["maze"]]
        if "size" in data and int(data["size"]) != setting.size:
            raise ValueError(f"maze {data['maze']!r} is {setting.size}x{setting.size}; got size {data['size']}")
        defaults = {
            "size": setting.size,
            "horizon": setting.horizon,
            "initial_cells": [list(setting.start)],
            "only_distribution_reward": True,
        }
        return {**defaults, **data}


class LinearQuadraticConfig(EnvConfig):
    """Linear-quadratic MFG on a ring; see `gamescale.envs.mfg.lq`."""

    name: str = "linear_quadratic"
    size: int = Field(default=10, gt=0)
    horizon: int = Field(default=10, gt=0)
    dt: float = Field(default=1.0, gt=0.0)
    n_actions_per_side: int = Field(default=3, gt=0)
    volatility: float = Field(default=1.0, gt=0.0)
    mean_revert: float = 0.0
    cross_q: float = 0.01
    kappa: float = 0.5
    terminal_cost: float = 1.0


class PeriodicAversionConfig(EnvConfig):
    """Periodic aversion MFG; see `gamescale.envs.mfg.periodic_aversion`."""

    name: str = "periodic_aversion"
    size: int = Field(default=21, gt=0)
    horizon: int = Field(default=20, gt=0)
    dt: float = Field(default=0.01, gt=0.0)
    xmin: float = 0.0
    xmax: float = 1.0
    n_actions_per_side: int = Field(default=10, gt=0)
    volatility: float = Field(default=1.0, gt=0.0)
    coef_aversion: float = 1.0


class PredatorPreyConfig(EnvConfig):
    """Multi-population predator-prey MFG; see `gamescale.envs.mfg.predator_prey`."""

    name: str = "predator_prey"
    size: int = Field(default=5, gt=0)
    horizon: int = Field(default=10, gt=0)
    payoff: list[list[float]] | None = None
    congestion_coef: float = 1.0
    noise_intensity: float = Field(default=0.0, ge=0.0, le=1.0)
    move_cost: float = 0.0
    initial_cells: list[list[tuple[int, int]]] | None = None
