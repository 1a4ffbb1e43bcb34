"""Least core and Shapley values of cooperative games (arXiv 2402.03928): exact LP and
cutting planes (HiGHS), iterative coalition sampling, and the LP-vs-iterative scaling
study. Registers `least_core_lp`, `least_core_sampling` and `least_core_scaling`; the
solvers (scipy's LP and statistics) are imported only when a run builds one. Use the
submodules directly: `lp`, `shapley`, `solvers`, `sampling`, `first_order`, `scaling`."""

from __future__ import annotations

from gamescale.algorithms.coalitions.config import (
    LeastCoreLPConfig,
    LeastCoreSamplingConfig,
    LeastCoreScalingConfig,
)
from gamescale.algorithms.registry import register_algorithm

register_algorithm(
    "least_core_lp",
    LeastCoreLPConfig,
    "gamescale.algorithms.coalitions.solvers:build_lp",
    "exact least core: full LP or cutting planes (HiGHS)",
)
register_algorithm(
    "least_core_sampling",
    LeastCoreSamplingConfig,
    "gamescale.algorithms.coalitions.solvers:build_sampling",
    "least core by iterative coalition sampling (LP / saddle-point / penalty updates)",
)
register_algorithm(
    "least_core_scaling",
    LeastCoreScalingConfig,
    "gamescale.algorithms.coalitions.scaling:LeastCoreScaling",
    "LP vs iterative least core as the number of players grows",
)

__all__ = ["LeastCoreLPConfig", "LeastCoreSamplingConfig", "LeastCoreScalingConfig"]
