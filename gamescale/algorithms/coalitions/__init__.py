"""Least core and Shapley values of cooperative games (arXiv 2402.03928): exact LP and
cutting planes (HiGHS), iterative coalition sampling. Registers `least_core_lp` and
`least_core_sampling`."""

from __future__ import annotations

from gamescale.algorithms.coalitions import scaling  # noqa: F401  (registers least_core_scaling)
from gamescale.algorithms.coalitions.config import LeastCoreLPConfig, LeastCoreSamplingConfig
from gamescale.algorithms.coalitions.lp import exact_least_core, solve_least_core_lp
from gamescale.algorithms.coalitions.shapley import exact_shapley, sampled_shapley, shapley_values
from gamescale.algorithms.coalitions.solvers import (
    LeastCoreLP,
    LeastCoreSampling,
    build_lp,
    build_sampling,
    cutting_planes,
    reference_value,
)
from gamescale.algorithms.registry import register_algorithm

register_algorithm("least_core_lp", LeastCoreLPConfig, build_lp, "exact least core: full LP or cutting planes (HiGHS)")
register_algorithm(
    "least_core_sampling",
    LeastCoreSamplingConfig,
    build_sampling,
    "least core by iterative coalition sampling (LP / saddle-point / penalty updates)",
)

__all__ = [
    "LeastCoreLP",
    "LeastCoreSampling",
    "cutting_planes",
    "exact_least_core",
    "exact_shapley",
    "reference_value",
    "sampled_shapley",
    "shapley_values",
    "solve_least_core_lp",
]
