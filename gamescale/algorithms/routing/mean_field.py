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

OpenSpiel's mirror descent (`openspiel_compatible: true`). The game model is OpenSpiel's
(its policies evaluate to the same exploitability here, to round-off), but its
`MirrorDescent.iteration` is not the textbook update. It walks the game tree depth-first
(chance outcomes in demand order, links in action-id order, each state once per
iteration) and adds lr x value to the cumulative value of each post-decision state it
reaches, so:

  1. y[t, v, d] grows only at the decision points the walk reaches, i.e. those reachable
     under the current flow's travel times (a zero-probability link still counts); a
     point first reached at a later iteration starts from the sum of fewer terms. The
     default form adds Q everywhere, including at points the flow never reaches.
  2. From the second iteration on, its evaluation policy reads the cumulative values
     while the walk updates them. OpenSpiel keys a decision state by the link the vehicle
     came in on, so when a second incoming link reaches the same (step, node,
     destination), that node's links have already been updated and the vehicle there is
     evaluated with softmax(y + lr Q) instead of softmax(y). `openspiel_visits` replays
     the walk (which incoming link comes first), `openspiel_q` evaluates the mixed policy.
  3. The first iteration evaluates the uniform policy as is (no read-ahead).

The default form is the update of Perolat et al. (2021) for the policy actually played:
every decision point learns from every iteration and the evaluation is one consistent
policy. On Braess (100 steps of 0.05, lr 1) it reaches exploitability 0.014 at iteration
9, where OpenSpiel's order is at 0.136; both reach the equilibrium (travel time 3.75).
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
    learning_rate is per time unit of travel (Q is in -time units).

    openspiel_compatible: reproduce OpenSpiel's `MirrorDescent` on its
    `python_mfg_dynamic_routing` iterate by iterate (see "OpenSpiel's mirror descent" in
    the module docstring); the default is the textbook update above."""

    name: str = "routing_mean_field_omd"
    learning_rate: float = Field(default=1.0, gt=0)
    openspiel_compatible: bool = False


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


def openspiel_visits(model: RoutingFlowModel, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replay OpenSpiel's depth-first walk of `python_mfg_dynamic_routing` under link
    times `steps [T, L]` (any full-support policy: the walk enters every legal link).

    Returns `visited [T, n, D]`: decision points the walk reaches, and `first [T, L, D]`:
    the vehicle that came in on link l is the first the walk evaluates at l's head at
    step t (else that head's cumulative values were already updated this iteration).
    The walk starts from each demand row in order at (origin, departure step), as if on
    its own entry link (OpenSpiel's dummy origin links), and follows links in slot order
    (action-id order for a network translated from OpenSpiel). A Python loop over the
    reachable (entry, step, destination) triples: this is the slow part of the form."""
    net = model.network
    T, L, n, D = model.horizon, net.num_links, net.num_nodes, model.num_destinations
    head = np.concatenate([net.term_node, np.arange(n)]).tolist()  # entries: links, then origin entries
    out = [[int(lk) for lk in model.slot_link[v] if lk >= 0] for v in range(n)]
    movable = model.movable.tolist()
    steps_list = steps.tolist()
    seen_entry = np.zeros((T, L + n, D), bool)
    visited = np.zeros((T, n, D), bool)
    first = np.ones((T, L, D), bool)
    d = net.demand
    stack = [(L + int(o), int(t), int(k)) for o, t, k in zip(d.origin, model.od_dep, model.od_dest, strict=True)][::-1]
    while stack:
        e, t, k = stack.pop()
        if seen_entry[t, e, k]:
            continue
        seen_entry[t, e, k] = True
        v = head[e]
        if e < L:
            first[t, e, k] = not visited[t, v, k]
        visited[t, v, k] = True
        if movable[v][k]:
            row = steps_list[t]
            stack.extend((lk, t + row[lk], k) for lk in reversed(out[v]) if t + row[lk] < T)
    return visited, first


def openspiel_q(
    model: RoutingFlowModel, steps: np.ndarray, logits: np.ndarray, learning_rate: float, first: np.ndarray
) -> np.ndarray:
    """Q-values `[T, n, D, A]` of OpenSpiel's walk against link times `steps [T, L]`: a
    vehicle that came in on link l and is at l's head at step t plays softmax(logits) if
    `first[t, l, d]`, else softmax(logits + learning_rate * Q_t) (the walk already added
    Q_t to that node's cumulative values). With `first` all True this is `values(steps,
    softmax(logits))[1]`. Q is relative to the decision step (the softmax is the same as
    for OpenSpiel's absolute returns). Acyclic networks: one node at a time over all steps
    (heads before tails); otherwise `_openspiel_q_by_step`."""
    if model.backward_order is None:
        return _openspiel_q_by_step(model, steps, logits, learning_rate, first)
    net = model.network
    T, dt, L = model.horizon, model.time_step, net.num_links
    head, legal, movable = net.term_node, model.legal, model.movable
    exit_t = np.arange(T)[:, None] + steps  # [T, L]
    ok = exit_t <= T
    exit_t = np.minimum(exit_t, T)
    cost = -dt * steps
    lost = -(T - np.arange(T)) * dt - model.late_penalty  # [T] value of never arriving
    fixed = np.where(model.at_dest, 0.0, lost[:, None, None])  # [T, n, D] where no choice is made
    entry_value = np.empty((T + 1, L, model.num_destinations))  # value of a vehicle at l's head at step t
    entry_value[:T] = fixed[:, head]
    entry_value[T] = np.where(model.at_dest, 0.0, -model.late_penalty)[head]
    q = np.where(legal, fixed[..., None], -np.inf)
    for v in model.backward_order:
        lk = model.slot_link[v][model.slot_link[v] >= 0]
        cont = np.where(ok[:, lk, None], cost[:, lk, None] + entry_value[exit_t[:, lk], lk], lost[:, None, None])
        q[:, v, :, : len(lk)] = np.where(movable[v][None, :, None], np.transpose(cont, (0, 2, 1)), fixed[:, v, :, None])
        q_legal = np.where(legal[v], q[:, v], 0.0)  # [T, D, A]
        held = softmax(logits[:, v], legal[v])
        ahead = softmax(logits[:, v] + learning_rate * q_legal, legal[v])
        v_held = np.where(movable[v], (held * q_legal).sum(axis=-1), fixed[:, v])  # [T, D]
        v_ahead = np.where(movable[v], (ahead * q_legal).sum(axis=-1), fixed[:, v])
        into = np.flatnonzero(head == v)
        entry_value[:T, into] = np.where(first[:, into], v_held[:, None], v_ahead[:, None])
    return q


def _openspiel_q_by_step(
    model: RoutingFlowModel, steps: np.ndarray, logits: np.ndarray, learning_rate: float, first: np.ndarray
) -> np.ndarray:
    """`openspiel_q` as a loop over steps (any network, cycles included)."""
    net = model.network
    T, dt, L = model.horizon, model.time_step, net.num_links
    head = net.term_node
    legal, movable = model.legal, model.movable
    entry_value = np.empty((T + 1, L, model.num_destinations))  # value of a vehicle at l's head at step t
    entry_value[T] = np.where(model.at_dest, 0.0, -model.late_penalty)[head]
    q = np.empty(model.policy_shape)
    safe_slot = np.maximum(model.slot_link, 0)
    links = np.arange(L)
    for t in range(T - 1, -1, -1):
        k = steps[t]
        exit_t = t + k
        ok = exit_t <= T
        lost = -(T - t) * dt - model.late_penalty
        cont = np.full((L, model.num_destinations), lost)
        cont[ok] = -dt * k[ok, None] + entry_value[exit_t[ok], links[ok]]
        fixed = np.where(model.at_dest, 0.0, lost)  # value where no choice is made
        q_t = np.where(movable[..., None], np.transpose(cont[safe_slot], (0, 2, 1)), fixed[..., None])
        q_legal = np.where(legal, q_t, 0.0)
        held = softmax(logits[t], legal)
        ahead = softmax(logits[t] + learning_rate * q_legal, legal)
        v_held = np.where(movable, (held * q_legal).sum(axis=-1), fixed)
        v_ahead = np.where(movable, (ahead * q_legal).sum(axis=-1), fixed)
        entry_value[t] = np.where(first[t], v_held[head], v_ahead[head])
        q[t] = np.where(legal, q_t, -np.inf)
    return q


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
        legal, lr = self.model.legal, self.config.learning_rate
        if getattr(self.config, "openspiel_compatible", False):
            steps = ev["flow"].steps
            visited, first = openspiel_visits(self.model, steps)
            if int(state["iteration"]) == 0:  # OpenSpiel's first iteration plays a fixed uniform policy
                first[:] = True
            q = openspiel_q(self.model, steps, state["cumulative_q"], lr, first)
            legal = legal & visited[..., None]  # only the points its walk reaches learn
        else:
            q = ev["pi_q"]
        cumulative = state["cumulative_q"] + lr * np.where(legal, q, 0.0)
        return {"policy": softmax(cumulative, self.model.legal), "cumulative_q": cumulative}


def build_fp(config: RoutingMeanFieldFPConfig, env: Any) -> RoutingMeanFieldFP:
    return RoutingMeanFieldFP(config, env)


def build_omd(config: RoutingMeanFieldOMDConfig, env: Any) -> RoutingMeanFieldOMD:
    return RoutingMeanFieldOMD(config, env)
