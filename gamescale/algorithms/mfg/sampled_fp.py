"""Fictitious play on a sampled population: the mean field comes from simulated agents.

Classical fictitious play averages best responses weighted by the distributions they
induce. Here those distributions are not propagated exactly but estimated by simulating
`num_particles` agents per iteration, spread over rollout shards (the sampled setting
of deep fictitious play, 2203.11973, without the networks). Iteration k:

1. best-respond (backward induction, exact) to the current average mean field `mu_bar`;
2. simulate particles under that best response -> visit counts `c_k [T + 1, S]`;
3. average: `pi_bar(a|t,s) = sum_j c_j(t,s) pi_j(a|t,s) / sum_j c_j(t,s)` and
   `mu_bar = sum_j c_j / (k + 1) N`.

Exploitability of `pi_bar` is evaluated exactly on the array model, so this run and the
exact methods are measured on one scale; `mean_field_tv` is the largest total-variation
distance over time between the sampled `mu_bar` and the exact flow of `pi_bar`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from gamescale.algorithms.base import State, StepContext
from gamescale.algorithms.mfg.evaluation import best_response, exploitability, propagate, uniform_policy
from gamescale.algorithms.mfg.particles import counts_from_batches, simulate_shard
from gamescale.algorithms.registry import AlgorithmConfig, register_algorithm
from gamescale.envs.mfg.game import MeanFieldGame


class SampledFictitiousPlayConfig(AlgorithmConfig):
    name: str = "sampled_fictitious_play"
    num_particles: int = Field(20_000, ge=1, description="agents simulated per iteration (all shards)")


def average_policy(weighted_sum: np.ndarray, visits: np.ndarray, plain_sum: np.ndarray, k: int) -> np.ndarray:
    """Visit-weighted average of past policies `[T, S, A]`; the plain mean where unvisited."""
    plain = plain_sum / max(k, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = weighted_sum / visits[..., None]
    return np.where(visits[..., None] > 0, weighted, plain)


class SampledFictitiousPlay:
    def __init__(self, config: SampledFictitiousPlayConfig, game: MeanFieldGame):
        if not isinstance(game, MeanFieldGame):
            raise ValueError("sampled_fictitious_play needs a single-population mean-field game")
        self.config = config
        self.game = game

    def learner_specs(self) -> dict[str, Any]:
        return {}

    def init(self, seed: int) -> State:
        T, S, A = self.game.horizon, self.game.num_states, self.game.num_actions
        uniform = uniform_policy(self.game)
        return {
            "k": 0,
            "weighted_policy_sum": np.zeros((T, S, A)),
            "visits": np.zeros((T, S)),
            "policy_sum": np.zeros((T, S, A)),
            "count_sum": np.zeros((T + 1, S)),
            "initial_policy": uniform,
        }

    def current_policy(self, state: State) -> np.ndarray:
        if state["k"] == 0:
            return state["initial_policy"]
        return average_policy(state["weighted_policy_sum"], state["visits"], state["policy_sum"], state["k"])

    def step(self, state: State, ctx: StepContext) -> tuple[State, dict[str, float]]:
        game, n = self.game, self.config.num_particles
        if state["k"] == 0:
            mu_bar = propagate(game, state["initial_policy"])
        else:
            mu_bar = state["count_sum"] / (state["k"] * n)
        br_policy, _ = best_response(game, mu_bar)
        batches = ctx.shards.map(simulate_shard, ctx.shard_tasks(), shared={"policy": br_policy, "num_particles": n})
        counts = counts_from_batches(batches, game.horizon, game.num_states).astype(np.float64)
        k = state["k"] + 1
        state = {
            **state,
            "k": k,
            "weighted_policy_sum": state["weighted_policy_sum"] + counts[:-1, :, None] * br_policy,
            "visits": state["visits"] + counts[:-1],
            "policy_sum": state["policy_sum"] + br_policy,
            "count_sum": state["count_sum"] + counts,
        }
        policy = self.current_policy(state)
        exact_mu = propagate(game, policy)
        sampled_mu = state["count_sum"] / (k * n)
        tv = 0.5 * np.abs(sampled_mu - exact_mu).sum(axis=1).max()
        return state, {"exploitability": exploitability(game, policy), "mean_field_tv": float(tv)}

    def summary(self, state: State) -> dict[str, Any]:
        return {"particles_simulated": int(state["k"]) * self.config.num_particles}


register_algorithm(
    "sampled_fictitious_play",
    SampledFictitiousPlayConfig,
    SampledFictitiousPlay,
    "fictitious play whose mean field is estimated from particles simulated on rollout workers",
)
