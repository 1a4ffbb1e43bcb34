"""Typed configs of the cooperative-game solvers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gamescale.algorithms.registry import AlgorithmConfig

ShapleyMethod = Literal["auto", "closed_form", "exact", "sampled", "none"]


class _LeastCoreCommon(AlgorithmConfig):
    nonnegative: bool = Field(False, description="force payoffs >= 0 (OpenSpiel's definition); standard: free")
    enumeration_limit: int = Field(16, ge=2, le=24, description="exact separation by enumeration up to this n")
    samples: int = Field(2048, ge=1, description="fresh coalitions sampled per iteration (all shards)")
    climbers: int = Field(32, ge=0, description="best samples improved by tabu search (one chain each), per shard")
    rounds: int = Field(30, ge=0, description="tabu-search moves per chain (single-player flips) per iteration")
    keep: int = Field(256, ge=1, description="coalitions of largest excess returned per shard")
    shapley: ShapleyMethod = "auto"
    shapley_permutations: int = Field(2000, ge=2)
    target_epsilon: float | None = Field(None, description="best known least-core value; stop within stop_within")
    stop_within: float | None = Field(
        None, gt=0, description="stop once certified epsilon <= target (+ this fraction of |target|)"
    )


class LeastCoreLPConfig(_LeastCoreCommon):
    """Exact least core: the LP over all coalitions (n <= full_limit) or cutting planes.

    One step of cutting planes = solve the restricted LP, ask the separation oracle (the
    game's own, else enumeration, else sampling on the shards) for the `cuts` most violated
    coalitions, add them.
    """

    name: str = "least_core_lp"
    method: Literal["auto", "full", "cutting_planes"] = "auto"
    full_limit: int = Field(16, ge=2, le=22)
    cuts: int = Field(50, ge=1, description="coalitions added per cutting-plane round")
    tolerance: float = Field(1e-9, ge=0)


class LeastCoreSamplingConfig(_LeastCoreCommon):
    """Iterative coalition sampling (arXiv 2402.03928): each step samples coalitions on the
    shards (with a local search for large excess), keeps the most violated in a working set,
    and updates the payoff over it by `update`:

    lp: the small LP over the working set (HiGHS); saddle_point: mirror prox on the Lagrangian;
    penalty: accelerated projected gradient on the quadratic penalty, with multiplier updates;
    bundle: a proximal bundle step (the working set's model plus a proximity term around the
    best payoff so far, which moves only when the sampled excess confirms a decrease).
    """

    name: str = "least_core_sampling"
    update: Literal["lp", "saddle_point", "penalty", "bundle"] = "lp"
    working_set: int = Field(4000, ge=8, description="most coalitions remembered")
    start: Literal["equal_split", "best_guess"] = Field(
        "equal_split",
        description="first payoff: the equal split, or the best of the family's cheap guesses "
        "(equal split, closed-form Shapley, weight-proportional) on a sample",
    )
    inner_iterations: int = Field(1000, ge=1, description="saddle_point / penalty iterations per step")
    step_size: float = Field(2.0, gt=0, description="saddle-point step, in units of 1/sqrt(largest coalition)")
    penalty: float = Field(3.0, gt=0, description="rho of the penalty update (values rescaled to O(1))")
    penalty_growth: float = Field(1.0, ge=1, description="rho is multiplied by this every step")
    certify: Literal["auto", "exact", "sampled"] = Field(
        "auto",
        description="how max_violation is measured: auto = exact when enumerable or a cheap oracle exists "
        "(a MILP oracle then only proves the stop), exact = the oracle every iteration",
    )
    oracle_time_limit: float = Field(60.0, gt=0, description="seconds for one MILP proof that the target is met")
    reference: Literal["auto", "none"] = Field(
        "auto", description="auto: the exact least-core value (LP) as lp_epsilon when it is computable"
    )


class LeastCoreScalingConfig(AlgorithmConfig):
    """The scaling study; the run's env is not used (each step builds its own game)."""

    name: str = "least_core_scaling"
    family: Literal["weighted_voting", "induced_subgraph", "mc_net"] = "weighted_voting"
    sizes: list[int] = Field(default_factory=lambda: [10, 15, 20, 25, 50, 100, 200])
    game_seed: int = Field(0, ge=0)
    within: float = Field(0.01, gt=0)
    lp_time_limit: float = Field(60.0, gt=0)
    lp_memory_gb: float = Field(4.0, gt=0)
    cutting_time_limit: float = Field(
        120.0, gt=0, description="seconds of cutting planes for the best known value (+ half for a final bound)"
    )
    iterative_time_limit: float = Field(60.0, gt=0)
    update: Literal["auto", "lp", "saddle_point", "penalty", "bundle"] = Field(
        "auto",
        description="the iterative run's update; auto: lp where the family's exact oracle is cheap (its cuts "
        "are exact), else bundle (stabilised against the search's misses)",
    )
    samples: int = Field(2048, ge=1)
    rounds: int | None = Field(
        None,
        ge=0,
        description="tabu moves per chain of the iterative run's search (None: 30 with a cheap exact oracle, "
        "else max(30, 2.5 n))",
    )
