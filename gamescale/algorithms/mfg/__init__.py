"""Exact mean-field-game solvers on arrays: evaluators (`propagate`, `best_response`,
`policy_value`, `exploitability`) and the registered step-interface algorithms
`fictitious_play`, `mirror_descent`, `fixed_point` and `boltzmann`."""

from __future__ import annotations

from gamescale.algorithms.mfg.config import (
    BoltzmannConfig,
    DeepAFPConfig,
    DeepMOMDConfig,
    FictitiousPlayConfig,
    FixedPointConfig,
    MirrorDescentConfig,
)
from gamescale.algorithms.mfg.evaluation import (
    best_response,
    exploitability,
    exploitability_per_population,
    greedy_policy,
    policy_value,
    propagate,
    q_values,
    softmax_policy,
    uniform_policy,
)
from gamescale.algorithms.mfg.fictitious_play import FictitiousPlay
from gamescale.algorithms.mfg.fixed_point import BoltzmannPolicyIteration, FixedPoint
from gamescale.algorithms.mfg.mirror_descent import MirrorDescent
from gamescale.algorithms.registry import register_algorithm

__all__ = [
    "BoltzmannPolicyIteration",
    "FictitiousPlay",
    "FixedPoint",
    "MirrorDescent",
    "best_response",
    "exploitability",
    "exploitability_per_population",
    "greedy_policy",
    "policy_value",
    "propagate",
    "q_values",
    "softmax_policy",
    "uniform_policy",
]

register_algorithm("fictitious_play", FictitiousPlayConfig, FictitiousPlay, "exact MFG fictitious play (OpenSpiel)")
register_algorithm("mirror_descent", MirrorDescentConfig, MirrorDescent, "exact MFG online mirror descent (OpenSpiel)")
register_algorithm("fixed_point", FixedPointConfig, FixedPoint, "damped MFG fixed point, greedy or softmax")
register_algorithm("boltzmann", BoltzmannConfig, BoltzmannPolicyIteration, "MFG Boltzmann policy iteration")

# Algorithms that sample the population on rollout workers register themselves on import.
import gamescale.algorithms.mfg.correlated  # noqa: E402, F401
import gamescale.algorithms.mfg.sampled_fp  # noqa: E402, F401

# The deep algorithms need torch; they are imported only when a run builds one.
register_algorithm(
    "deep_afp",
    DeepAFPConfig,
    "gamescale.algorithms.mfg.deep:DeepAverageFictitiousPlay",
    "deep average-network fictitious play: DQN best responses distilled into a policy net",
)
register_algorithm(
    "deep_momd",
    DeepMOMDConfig,
    "gamescale.algorithms.mfg.deep:DeepMunchausenMirrorDescent",
    "deep Munchausen online mirror descent: one Q-network, softmax(q / tau) policy",
)
