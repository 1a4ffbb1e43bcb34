"""Typed configs of the cooperative games (validated by `make_env`).

Every family either takes its data explicitly (weights, edges, rules, costs) or draws a
random instance of `num_players` players from `seed`, so any size can be made.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gamescale.envs.registry import EnvConfig


class WeightedVotingConfig(EnvConfig):
    """weights/quota given, or random integer weights 1..max_weight (optionally `heavy_players`
    holding `heavy_share` of the total) with quota ceil(quota_fraction x total)."""

    name: str = "weighted_voting"
    num_players: int = Field(12, ge=2)
    weights: list[float] | None = None
    quota: float | None = None
    quota_fraction: float = Field(0.6, gt=0, le=1)
    max_weight: int = Field(20, ge=1)
    heavy_players: int = Field(0, ge=0, description="players 0..k-1 heavy (a council of large members)")
    heavy_share: float = Field(0.8, gt=0, lt=1, description="the heavy players' share of the total weight")
    seed: int = Field(0, ge=0)


class MajorityConfig(EnvConfig):
    """The symmetric majority game (v(S) = 1 iff |S| > n/2)."""

    name: str = "majority_game"
    num_players: int = Field(5, ge=2)


class InducedSubgraphConfig(EnvConfig):
    """edges [[i, j, weight], ...] given, or a random graph (integer weights in [min_weight, max_weight])."""

    name: str = "induced_subgraph"
    num_players: int = Field(12, ge=2)
    edges: list[tuple[int, int, float]] | None = None
    edge_probability: float = Field(0.5, gt=0, le=1)
    min_weight: int = -10
    max_weight: int = 10
    seed: int = Field(0, ge=0)


class MCNetRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    positive: list[int] = Field(default_factory=list)
    negative: list[int] = Field(default_factory=list)
    value: float


class MCNetConfig(EnvConfig):
    """rules given, or `num_rules` (default 2n) random rules."""

    name: str = "mc_net"
    num_players: int = Field(12, ge=2)
    rules: list[MCNetRule] | None = None
    num_rules: int | None = Field(None, ge=1)
    max_positive: int = Field(3, ge=1)
    max_negative: int = Field(1, ge=0)
    min_value: float = 0.0
    max_value: float = 1.0
    seed: int = Field(0, ge=0)


class GloveConfig(EnvConfig):
    name: str = "glove_game"
    left: int = Field(2, ge=1)
    right: int = Field(1, ge=1)


class AirportConfig(EnvConfig):
    """costs given, or uniform in [0, max_cost]."""

    name: str = "airport_game"
    num_players: int = Field(6, ge=2)
    costs: list[float] | None = None
    max_cost: float = Field(10.0, gt=0)
    seed: int = Field(0, ge=0)


class FeatureAttributionConfig(EnvConfig):
    """The XAI game: a model trained on a scikit-learn bundled data set explains one row."""

    name: str = "xai_features"
    dataset: Literal["diabetes", "breast_cancer"] = "diabetes"
    model: Literal["gradient_boosting", "linear"] = "gradient_boosting"
    instance: int = Field(0, ge=0)
    target: Literal["prediction", "loss"] = "prediction"
    seed: int = Field(0, ge=0)
