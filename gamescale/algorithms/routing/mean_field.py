"""Fictitious play and online mirror descent for the mean-field routing game, on the
decision-point flow model (`gamescale.envs.routing.mean_field.RoutingFlowModel`), with
the routing metrics: exploitability, average travel time, link flows over time.

The engine's generic `fictitious_play` / `mirror_descent` also run on the explicit
`MeanFieldRoutingGame` (same values, tested), but its state space carries a
steps-to-exit axis of length T + 2, so one iteration on Sioux Falls (245k states) takes
seconds; here a step is O(T x L x D) and the policy lives on (step, node, destination).

Metrics every iteration (policy after the update):
  exploitability: demand-weighted gain of a best response over the policy, both against
    the policy's flow (OpenSpiel's nash_conv; time units);
  avg_travel_time: demand-weighted expected cost of a vehicle from its departure, time
    units (a vehicle not arrived at the horizon counts its time so far + late_penalty);
  arrived_fraction: population fraction arrived by the horizon.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field

from gamescale.algorithms.base import LearnerSpec, Metrics, State, StepContext
from gamescale.algorithms.registry import AlgorithmConfig
from gamescale.algorithms.tables import annotate
from gamescale.envs.routing.mean_field import Flow, MeanFieldRoutingGame, RoutingFlowModel


class RoutingMeanFieldFPConfig(AlgorithmConfig):
    """Fictitious play: best response to the average policy's flow, then average the
    policies weighted by their decision-point masses with weight 1 / (k + 1)."""

    name: str = "routing_mean_field_fp"


class RoutingMeanFieldOMDConfig(AlgorithmConfig):
    """Online mirror descent: y += learning_rate * Q^pi(mu^pi), pi = softmax(y).
    learning_rate is per time unit of travel (Q is in -time units)."""

    name: str = "routing_mean_field_omd"
    learning_rate: float = Field(default=1.0, gt=0)


def model_of(env: Any) -> RoutingFlowModel:
    if isinstance(env, RoutingFlowModel):
        return env
    if isinstance(env, MeanFieldRoutingGame):
        return env.model
    raise ValueError(f"the mean-field routing algorithms need the routing_mean_field env, got {type(env).__name__}")


def evaluate(model: RoutingFlowModel, policy: np.ndarray) -> dict[str, Any]:
    """Flow, Q-values (policy and best response) and the metrics of `policy [T, n, D, A]`."""
    flow = model.flow(policy)
    (br_value, br_q), (pi_value, pi_q) = model.values_pair(flow.steps, policy)
    pi_start = model.expected(pi_value)
    return {
        "flow": flow,
        "br_q": br_q,
        "pi_q": pi_q,
        "exploitability": max(0.0, model.expected(br_value) - pi_start),
        "avg_travel_time": -pi_start,
        "arrived_fraction": float(flow.arrived[-1] + (flow.ready[-1] * model.at_dest).sum()),
    }


def avg_travel_time(model: RoutingFlowModel, policy: np.ndarray) -> float:
    """Expected travel time of a vehicle under `policy` (time units, demand-weighted)."""
    flow = model.flow(policy)
    value, _ = model.values(flow.steps, policy)
    return -model.expected(value)


def greedy(q: np.ndarray) -> np.ndarray:
    """One-hot argmax over the last axis (-inf on illegal slots; ties -> lowest slot)."""
    out = np.zeros(q.shape)
    np.put_along_axis(out, np.argmax(q, axis=-1)[..., None], 1.0, axis=-1)
    return out


def softmax(logits: np.ndarray, legal: np.ndarray) -> np.ndarray:
    z = np.where(legal, logits, -np.inf)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def link_flow_table(model: RoutingFlowModel, flow: Flow) -> pa.Table:
    """One row per (step, link): vehicles on the link after the moves of that step
    (num_vehicles x population fraction) and the steps a vehicle entering then stays;
    annotated with the network's name (the report draws plots/link_flows.png from it)."""
    net = model.network
    T, L = flow.on_link.shape
    step = np.repeat(np.arange(T), L)
    link = np.tile(np.arange(L), T)
    table = pa.table(
        {
            "step": pa.array(step, pa.int32()),
            "time": pa.array(step * model.time_step),
            "link": pa.array(link, pa.int32()),
            "init_node": pa.array(net.node_ids[net.init_node[link]]),
            "term_node": pa.array(net.node_ids[net.term_node[link]]),
            "vehicles": pa.array(flow.on_link.ravel() * model.num_vehicles),
            "travel_steps": pa.array(flow.steps.ravel(), pa.int32()),
        }
    )
    return annotate(table, network=net.name)


class RoutingMeanFieldSolver:
    """Shared shell; state: `policy [T, n, D, A]`, `iteration`, `exploitability`,
    `avg_travel_time` (+ `cumulative_q` for OMD). Exact: ignores `ctx.shards`."""

    def __init__(self, config: Any, env: Any):
        self.config = config
        self.model = model_of(env)
        self._last: tuple[Any, dict[str, Any]] | None = None  # (policy array, its evaluation)

    def _evaluate(self, policy: np.ndarray) -> dict[str, Any]:
        """`evaluate`, reusing the previous step's result for the same policy array."""
        if self._last is not None and self._last[0] is policy:
            return self._last[1]
        ev = evaluate(self.model, policy)
        self._last = (policy, ev)
        return ev

    def learner_specs(self) -> dict[str, LearnerSpec]:
        return {}

    def extra_state(self) -> State:
        return {}

    def init(self, seed: int) -> State:
        del seed  # exact and deterministic
        policy = self.model.uniform_policy()
        ev = self._evaluate(policy)
        return {"policy": policy, "iteration": 0, **self._scalars(ev), **self.extra_state()}

    @staticmethod
    def _scalars(ev: dict[str, Any]) -> dict[str, float]:
        return {k: float(ev[k]) for k in ("exploitability", "avg_travel_time", "arrived_fraction")}

    def update(self, state: State, ev: dict[str, Any]) -> State:
        raise NotImplementedError

    def step(self, state: State, ctx: StepContext | None = None) -> tuple[State, Metrics]:
        ev = self._evaluate(state["policy"])
        fields = self.update(state, ev)
        new_ev = self._evaluate(fields["policy"])
        metrics = self._scalars(new_ev)
        new_state = {**state, **fields, **metrics, "iteration": int(state["iteration"]) + 1}
        return new_state, metrics

    def summary(self, state: State) -> dict[str, Any]:
        return {
            "exploitability": float(state["exploitability"]),
            "avg_travel_time": float(state["avg_travel_time"]),
            "iterations": int(state["iteration"]),
        }

    def tables(self, state: State) -> dict[str, pa.Table]:
        return {"link_flows_over_time": link_flow_table(self.model, self.model.flow(state["policy"]))}


class RoutingMeanFieldFP(RoutingMeanFieldSolver):
    """Fictitious play on decision points (mass-weighted policy averaging)."""

    def update(self, state: State, ev: dict[str, Any]) -> State:
        k = int(state["iteration"]) + 1
        weight = 1.0 / (k + 1)
        br = greedy(ev["br_q"])
        ready = ev["flow"].ready[:-1, ..., None]
        ready_br = self.model.flow(br).ready[:-1, ..., None]
        d_old, d_new = (1 - weight) * ready, weight * ready_br
        norm = d_old + d_new
        mixed = (1 - weight) * state["policy"] + weight * br  # where neither flow reaches
        merged = np.where(norm > 0, (d_old * state["policy"] + d_new * br) / np.where(norm > 0, norm, 1.0), mixed)
        return {"policy": merged}


class RoutingMeanFieldOMD(RoutingMeanFieldSolver):
    """Online mirror descent on decision points."""

    def extra_state(self) -> State:
        return {"cumulative_q": np.zeros(self.model.policy_shape)}

    def update(self, state: State, ev: dict[str, Any]) -> State:
        legal = self.model.legal
        cumulative = state["cumulative_q"] + self.config.learning_rate * np.where(legal, ev["pi_q"], 0.0)
        return {"policy": softmax(cumulative, legal), "cumulative_q": cumulative}


def build_fp(config: RoutingMeanFieldFPConfig, env: Any) -> RoutingMeanFieldFP:
    return RoutingMeanFieldFP(config, env)


def build_omd(config: RoutingMeanFieldOMDConfig, env: Any) -> RoutingMeanFieldOMD:
    return RoutingMeanFieldOMD(config, env)
