"""Cooperative (transferable-utility) games as batched characteristic functions (arXiv 2402.03928):
weighted voting, induced subgraph, MC-nets, glove, majority, airport and an XAI feature game."""

from __future__ import annotations

import math

from gamescale.envs.coalitions.classic import AirportGame, GloveGame, random_airport
from gamescale.envs.coalitions.config import (
    AirportConfig,
    FeatureAttributionConfig,
    GloveConfig,
    InducedSubgraphConfig,
    MajorityConfig,
    MCNetConfig,
    WeightedVotingConfig,
)
from gamescale.envs.coalitions.game import (
    CoalitionGame,
    all_coalitions,
    as_coalitions,
    check_payoff,
    excess,
    pack,
    to_bitmasks,
    unpack,
)
from gamescale.envs.coalitions.graph import InducedSubgraphGame, random_induced_subgraph
from gamescale.envs.coalitions.mcnet import MCNet, random_mc_net
from gamescale.envs.coalitions.voting import MajorityGame, WeightedVotingGame, random_weighted_voting
from gamescale.envs.coalitions.xai import FeatureAttributionGame
from gamescale.envs.registry import register_env


def _check_size(config, given) -> None:
    if given is not None and "num_players" in config.model_fields_set and len(given) != config.num_players:
        raise ValueError(f"num_players is {config.num_players} but {len(given)} entries were given")


def build_weighted_voting(config: WeightedVotingConfig) -> WeightedVotingGame:
    if config.weights is None:
        if config.quota is not None:
            raise ValueError("a quota needs explicit weights (random games use quota_fraction)")
        return random_weighted_voting(
            config.num_players,
            config.seed,
            config.max_weight,
            config.quota_fraction,
            config.heavy_players,
            config.heavy_share,
        )
    _check_size(config, config.weights)
    quota = config.quota if config.quota is not None else math.ceil(config.quota_fraction * sum(config.weights))
    return WeightedVotingGame(config.weights, quota)


def build_induced_subgraph(config: InducedSubgraphConfig) -> InducedSubgraphGame:
    if config.edges is not None:
        return InducedSubgraphGame.from_edges(config.num_players, list(config.edges))
    return random_induced_subgraph(
        config.num_players, config.seed, config.edge_probability, config.min_weight, config.max_weight
    )


def build_mc_net(config: MCNetConfig) -> MCNet:
    if config.rules is not None:
        return MCNet.from_rules(config.num_players, [rule.model_dump() for rule in config.rules])
    return random_mc_net(
        config.num_players,
        config.seed,
        config.num_rules,
        config.max_positive,
        config.max_negative,
        config.min_value,
        config.max_value,
    )


def build_airport(config: AirportConfig) -> AirportGame:
    if config.costs is not None:
        _check_size(config, config.costs)
        return AirportGame(config.costs)
    return random_airport(config.num_players, config.seed, config.max_cost)


def build_xai(config: FeatureAttributionConfig) -> FeatureAttributionGame:
    return FeatureAttributionGame(config.dataset, config.model, config.instance, config.target, config.seed)


register_env("weighted_voting", WeightedVotingConfig, build_weighted_voting, "Weighted voting game (cooperative)")
register_env("majority_game", MajorityConfig, lambda c: MajorityGame(c.num_players), "Symmetric majority game")
register_env("induced_subgraph", InducedSubgraphConfig, build_induced_subgraph, "Induced subgraph game (cooperative)")
register_env("mc_net", MCNetConfig, build_mc_net, "Marginal contribution network (cooperative)")
register_env("glove_game", GloveConfig, lambda c: GloveGame(c.left, c.right), "Glove game (cooperative)")
register_env("airport_game", AirportConfig, build_airport, "Airport game as a savings game (cooperative)")
register_env("xai_features", FeatureAttributionConfig, build_xai, "Feature-attribution game of a trained model (XAI)")

__all__ = [
    "AirportGame",
    "CoalitionGame",
    "FeatureAttributionGame",
    "GloveGame",
    "InducedSubgraphGame",
    "MCNet",
    "MajorityGame",
    "WeightedVotingGame",
    "all_coalitions",
    "as_coalitions",
    "check_payoff",
    "excess",
    "pack",
    "random_airport",
    "random_induced_subgraph",
    "random_mc_net",
    "random_weighted_voting",
    "to_bitmasks",
    "unpack",
]
