"""Shared shell of the exact mean-field solvers: the step interface of
`gamescale.algorithms.base` around population-batched policy arrays.

State (checkpointable nested dict): `iteration` int, `policy [P, T, S, A]`, `mu [P, T + 1, S]`
(the flow of `policy`), `br_q [P, T, S, A]` (optimal Q against `mu`), `exploitability` float,
plus solver-specific arrays. Exact solvers ignore `ctx.shards`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import LearnerSpec, Metrics, State, StepContext, Stop
from gamescale.algorithms.mfg.evaluation import (
    AnyGame,
    _exploitability_terms,
    _uniform,
    exploitability_metrics,
)
from gamescale.algorithms.mfg.pictures import mean_field_table
from gamescale.envs.mfg.game import MeanFieldGame, as_multi_population


class ExactSolver:
    """Base of the exact solvers; subclasses implement `update(state) -> policy`."""

    uses_rollout_workers = False  # everything is computed in the run's own process

    def __init__(self, config: Any, game: AnyGame):
        if not isinstance(game, MeanFieldGame) and not hasattr(game, "num_populations"):
            raise TypeError(f"{config.name} needs a mean-field game, got {type(game).__name__}")
        self.config = config
        self.game = game
        self.mgame = as_multi_population(game)

    def learner_specs(self) -> dict[str, LearnerSpec]:
        return {}

    def evaluate(self, policy: np.ndarray) -> State:
        """Flow, best-response Q and exploitability of `policy [P, T, S, A]`."""
        mu, br_q, per_population = _exploitability_terms(self.mgame, policy)
        return {"policy": policy, "mu": mu, "br_q": br_q, "per_population": per_population}

    def init(self, seed: int) -> State:
        del seed  # exact and deterministic
        state = self.evaluate(_uniform(self.mgame))
        state.update(iteration=0, exploitability=float(state["per_population"].sum()))
        state.update(self.extra_state())
        return state

    def extra_state(self) -> State:
        return {}

    def update(self, state: State) -> State:
        """Return the solver-specific fields of the next state, including `policy`."""
        raise NotImplementedError

    def step(self, state: State, ctx: StepContext | None = None) -> tuple[State, Metrics]:
        fields = self.update(state)
        new_state = self.evaluate(fields.pop("policy"))
        new_state.update(fields)
        new_state["iteration"] = int(state["iteration"]) + 1
        metrics = exploitability_metrics(new_state["per_population"])
        new_state["exploitability"] = metrics["exploitability"]
        return new_state, metrics

    def get_policy(self, state: State) -> np.ndarray:
        """The current policy: `[T, S, A]` for single-population games, else `[P, T, S, A]`."""
        return state["policy"][0] if isinstance(self.game, MeanFieldGame) else state["policy"]

    def get_distribution(self, state: State) -> np.ndarray:
        """Its flow: `[T + 1, S]` (or `[P, T + 1, S]`)."""
        return state["mu"][0] if isinstance(self.game, MeanFieldGame) else state["mu"]

    def summary(self, state: State) -> dict[str, Any]:
        return {"exploitability": float(state["exploitability"]), "iterations": int(state["iteration"])}

    def tables(self, state: State) -> dict[str, pa.Table]:
        """The final mean field (`mean_field.parquet`), drawn by the report."""
        return {"mean_field": mean_field_table(self.game, state["mu"])}

    def should_stop(self, state: State, metrics: Metrics) -> Stop | None:
        target = getattr(self.config, "target_exploitability", None)
        if target is not None and metrics["exploitability"] <= target:
            return Stop("target", f"exploitability {metrics['exploitability']:.3g} <= target {target:g}")
        return None
