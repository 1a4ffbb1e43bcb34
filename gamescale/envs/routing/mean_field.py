"""The mean-field dynamic routing game of arXiv 2110.11943, in two equivalent array forms.

Model (the N-player game of `dynamic.py` with N -> infinity, and OpenSpiel's
`python_mfg_dynamic_routing` on the same network): one time step is `time_step` network
time units, decisions at steps t = 0 .. T-1 (T = `horizon`). The population is a mixture
of OD classes (origin, destination, departure step) weighted by their demand. A vehicle
ready at node v at step t (its previous link finished, or it departs) picks a link l
leaving v; with m_t(l) the population fraction on l after the moves of step t (entering
vehicles included) it stays

    k_t(l) = max(1, floor(t_l(num_vehicles * m_t(l)) / time_step))   steps,

t_l the network's BPR cost, and is ready at the head of l at step t + k. Reaching the
destination node ends the trip. Cost (maximised reward = -cost): time_step per step from
departure to arrival; a vehicle not arrived at the horizon pays its steps so far plus
`late_penalty` (default one time_step, OpenSpiel's -(T + 1) time steps). A vehicle ready
at its destination exactly at step T counts as arrived (as in the N-player simulator).

Two forms of the same game:

* `MeanFieldRoutingGame` (a `gamescale.envs.mfg.MeanFieldGame`): states are
  (location, steps-to-exit w, destination) plus `arrived` and `stuck` sinks; locations are
  the L links then one "origin" entry per node (waiting to depart, w = steps to
  departure); w = -1 means "just entered, travel time not yet assigned" (assigned from
  mu_t, as OpenSpiel does at its mean-field node). The kernel depends on mu
  (`transition_depends_on_mu = True`), so the engine's generic evaluators and solvers run
  on it. Its state count is (L + nodes) x (T + 2) x D, which is too large for Sioux Falls.
* `RoutingFlowModel`: the same dynamics collapsed to decision points (step, node,
  destination) plus per-link entry flows; forward and backward passes are O(T x L x D),
  used by the routing solvers in `gamescale.algorithms.routing.mean_field`. Tests check
  that both forms give the same flows, values and exploitability.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from gamescale.envs.mfg.game import MeanFieldGame
from gamescale.envs.registry import EnvConfig
from gamescale.envs.routing.dynamic import departure_steps, link_steps
from gamescale.envs.routing.network import Network


@dataclass(frozen=True)
class Flow:
    """The population flow of one policy; masses are population fractions.

    ready `[T + 1, n, D]`: mass ready at node v at step t with destination d (at its
      destination: arriving; otherwise about to pick a link).
    enter `[T, L, D]`: mass entering link l at step t.  on_link `[T, L]`: mass on l after
      the moves of step t.  steps `[T, L]`: k_t(l), steps spent by a vehicle entering l at t.
    arrived, en_route, waiting `[T + 1]`: at step t (before its moves), mass already
      arrived, on a link (or stuck at a dead end), not yet departed; they sum to 1.
    """

    ready: np.ndarray
    enter: np.ndarray
    on_link: np.ndarray
    steps: np.ndarray
    arrived: np.ndarray
    en_route: np.ndarray
    waiting: np.ndarray


@dataclass(frozen=True)
class RoutingFlowModel:
    """Decision-point form of the mean-field routing game (see the module docstring).

    Policies are `[T, n, D, A]`: probability of taking the a-th link leaving node v
    (`network.out_links[out_ptr[v] + a]`) at step t towards destination `destinations[d]`;
    rows where no choice exists (at the destination, dead end) put 1 on slot 0.
    time_step: network time units per step; late_penalty: network time units.
    """

    network: Network
    time_step: float
    horizon: int
    num_vehicles: float
    late_penalty: float
    destinations: np.ndarray = field(init=False, repr=False)  # [D] node indices
    od_dest: np.ndarray = field(init=False, repr=False)  # [OD] destination index
    od_dep: np.ndarray = field(init=False, repr=False)  # [OD] departure step
    od_frac: np.ndarray = field(init=False, repr=False)  # [OD] population fraction
    slot_link: np.ndarray = field(init=False, repr=False)  # [n, A] link id, -1 padded
    link_slot: np.ndarray = field(init=False, repr=False)  # [L] slot of each link at its tail
    legal: np.ndarray = field(init=False, repr=False)  # [n, D, A] bool
    movable: np.ndarray = field(init=False, repr=False)  # [n, D] a choice is made there
    at_dest: np.ndarray = field(init=False, repr=False)  # [n, D] node is the destination
    dead: np.ndarray = field(init=False, repr=False)  # [n, D] dead end, not the destination
    departures: np.ndarray = field(init=False, repr=False)  # [T + 1, n, D] departing mass
    # Precomputed for the passes (speed only): node order for the per-node backward pass
    # (heads before tails; None when the network has a cycle), destination cells, BPR terms.
    backward_order: tuple[int, ...] | None = field(init=False, repr=False)
    dest_cells: np.ndarray = field(init=False, repr=False)  # [D] flat (node, destination) cells

    def __post_init__(self) -> None:
        net, d = self.network, self.network.demand
        set_ = object.__setattr__
        if d.num_od == 0 or d.total <= 0:
            raise ValueError(f"{d.source}: network {net.name} has no demand")
        if self.time_step <= 0 or self.horizon < 1:
            raise ValueError(f"time_step must be > 0 and horizon >= 1, got {self.time_step:g} and {self.horizon}")
        if self.num_vehicles <= 0 or self.late_penalty < 0:
            raise ValueError("num_vehicles must be > 0 and late_penalty >= 0")
        dep = departure_steps(d, self.time_step, self.horizon)
        destinations, od_dest = np.unique(d.destination, return_inverse=True)
        n, D, L = net.num_nodes, len(destinations), net.num_links
        deg = net.out_degree()
        A = max(1, int(deg.max()))
        slots = np.arange(A)
        slot_link = np.where(
            slots[None] < deg[:, None], net.out_links[np.minimum(net.out_ptr[:-1, None] + slots, L - 1)], -1
        )
        link_slot = np.empty(L, np.int64)
        link_slot[net.out_links] = np.arange(L) - net.out_ptr[net.init_node[net.out_links]]
        at_dest = np.arange(n)[:, None] == destinations[None, :]
        dead = (deg[:, None] == 0) & ~at_dest
        movable = ~at_dest & ~dead
        legal = (movable[..., None] & (slots < deg[:, None, None])) | (~movable[..., None] & (slots == 0))
        frac = d.flow / d.total
        departures = np.zeros((self.horizon + 1, n, D))
        np.add.at(departures, (dep, d.origin, od_dest), frac)
        for name, value in dict(
            destinations=destinations.astype(np.int64),
            od_dest=od_dest.astype(np.int64),
            od_dep=dep,
            od_frac=frac,
            slot_link=slot_link.astype(np.int64),
            link_slot=link_slot,
            legal=legal,
            movable=movable,
            at_dest=at_dest,
            dead=dead,
            departures=departures,
            backward_order=_backward_order(net),
            dest_cells=(destinations * D + np.arange(D)).astype(np.int64),
        ).items():
            set_(self, name, value)

    @property
    def num_actions(self) -> int:
        return self.slot_link.shape[1]

    @property
    def num_destinations(self) -> int:
        return len(self.destinations)

    @property
    def policy_shape(self) -> tuple[int, int, int, int]:
        return (self.horizon, self.network.num_nodes, self.num_destinations, self.num_actions)

    def uniform_policy(self) -> np.ndarray:
        """Uniform over legal links, `[T, n, D, A]`."""
        p = self.legal / self.legal.sum(axis=-1, keepdims=True)
        return np.broadcast_to(p, self.policy_shape).copy()

    def flow(self, policy: np.ndarray) -> Flow:
        """Forward pass: the population flow of `policy [T, n, D, A]` (loop over steps).

        Only "event" steps, where some mass is ready at a node, do work: at any other step
        nothing enters or leaves a link, so the link masses and times are those of the
        step before (the skipped steps are filled in afterwards; results are the same as
        doing every step)."""
        net = self.network
        T, L, D = self.horizon, net.num_links, self.num_destinations
        tail, head = net.init_node, net.term_node
        links = np.arange(L)
        ready = self.departures.copy()
        ready_flat = ready.reshape(T + 1, -1)
        enter = np.zeros((T, L, D))
        on_link = np.zeros((T, L))
        steps = np.zeros((T, L), np.int64)
        leave = np.zeros((T + 2, L))
        arrived_in = np.zeros(T)  # mass arriving at step t
        stuck = np.zeros(T + 1)
        current = np.zeros(L)
        # [T, L, D]: probability that a vehicle at link l's tail at step t picks l
        pick = policy[:, tail[:, None], np.arange(D)[None, :], self.link_slot[:, None]]
        movable_tail = self.movable[tail]  # [L, D]
        has_dead = bool(self.dead.any())
        event = self.departures.reshape(T + 1, -1).any(axis=1)
        event_rows = []
        for t in range(T):
            if not event[t]:
                continue
            event_rows.append(t)
            r = ready[t]
            arrived_in[t] = ready_flat[t, self.dest_cells].sum()
            if has_dead:
                stuck_mass = r * self.dead
                ready[t + 1] += stuck_mass
                stuck[t] = stuck_mass.sum()
                event[t + 1] |= stuck[t] > 0
            e = enter[t]
            np.multiply(r[tail] * movable_tail, pick[t], out=e)  # [L, D]
            total = e.sum(axis=1)
            current = current - leave[t] + total
            on_link[t] = current
            k = link_steps(net, current, self.num_vehicles, self.time_step)
            steps[t] = k
            exit_t = t + k
            ok = exit_t <= T
            np.add.at(ready, (exit_t[ok], head[ok]), e[ok])
            leave[np.minimum(exit_t, T + 1), links] += total  # one entry per link
            event[exit_t[ok & (total > 0)]] = True
        # skipped steps: the link state of the last event step (of an empty network before the first)
        last = np.full(T, -1)
        last[event_rows] = event_rows
        last = np.maximum.accumulate(last)
        if len(event_rows) < T:
            idle = last < 0
            on_link = on_link[np.maximum(last, 0)]
            steps = steps[np.maximum(last, 0)]
            on_link[idle] = 0.0
            steps[idle] = link_steps(net, np.zeros(L), self.num_vehicles, self.time_step)
        arrived = np.concatenate([[0.0], np.cumsum(arrived_in)])
        stuck[T] = (ready[T] * self.dead).sum()
        waiting = 1.0 - np.cumsum(self.departures.sum(axis=(1, 2)))[:-1]
        waiting = np.concatenate([[1.0], waiting]) if T >= 0 else waiting
        en_route = np.concatenate([[0.0], on_link.sum(axis=1)]) + stuck
        return Flow(ready, enter, on_link, steps, arrived, en_route, np.clip(waiting, 0.0, None))

    def values(self, steps: np.ndarray, policy: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Backward pass against link times `steps [T, L]`: `(value [T + 1, n, D],
        q [T, n, D, A])`, optimal if `policy` is None, else of `policy`. Rewards are
        -time units; q is -inf on illegal slots (slot 0 holds the value where no choice)."""
        return self.values_pair(steps, policy, optimal=policy is None)[0]

    def values_pair(
        self, steps: np.ndarray, policy: np.ndarray | None, optimal: bool = True
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`values` for the optimal policy (if `optimal`) and then for `policy` (if given),
        sharing the set-up: a list of `(value, q)` in that order."""
        net = self.network
        T, dt = self.horizon, self.time_step
        n, D = net.num_nodes, self.num_destinations
        policies = ([None] if optimal else []) + ([policy] if policy is not None else [])
        end = np.where(self.at_dest, 0.0, -self.late_penalty)
        if self.backward_order is None:
            return [self._values_by_step(steps, p, end) for p in policies]
        # acyclic network: one node at a time over all steps, heads before tails
        t_col = np.arange(T)[:, None]
        exit_t = t_col + steps  # [T, L]
        ok = exit_t <= T
        exit_t = np.minimum(exit_t, T)
        cost = -dt * steps  # [T, L] time units of the link, as a reward
        lost = -(T - np.arange(T)) * dt - self.late_penalty  # [T] value of never arriving
        fixed = np.where(self.at_dest, 0.0, lost[:, None, None])  # [T, n, D] where no choice
        q_fixed = np.where(self.legal, fixed[..., None], -np.inf)  # [T, n, D, A]
        out = []
        for p in policies:
            value = np.empty((T + 1, n, D))
            value[:T] = fixed
            value[T] = end
            q = q_fixed.copy()
            for v in self.backward_order:
                slots = self.slot_link[v]
                lk = slots[slots >= 0]
                cont = np.where(
                    ok[:, lk, None], cost[:, lk, None] + value[exit_t[:, lk], net.term_node[lk]], lost[:, None, None]
                )  # [T, A_v, D]
                q_v = np.where(self.movable[v][None, :, None], np.transpose(cont, (0, 2, 1)), fixed[:, v, :, None])
                q[:, v, :, : len(lk)] = q_v
                q_v = q[:, v]  # [T, D, A]
                if p is None:
                    best = q_v.max(axis=-1)
                else:
                    best = (p[:, v] * np.where(self.legal[v], q_v, 0.0)).sum(axis=-1)
                value[:T, v] = np.where(self.movable[v], best, fixed[:, v])
            out.append((value, q))
        return out

    def _values_by_step(
        self, steps: np.ndarray, policy: np.ndarray | None, end: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`values` as a loop over steps (any network, cycles included)."""
        net = self.network
        T, dt = self.horizon, self.time_step
        value = np.empty((T + 1, net.num_nodes, self.num_destinations))
        q = np.empty((T, *value.shape[1:], self.num_actions))
        value[T] = end
        head = net.term_node
        safe_slot = np.maximum(self.slot_link, 0)
        for t in range(T - 1, -1, -1):
            k = steps[t]
            exit_t = t + k
            ok = exit_t <= T
            lost = -(T - t) * dt - self.late_penalty
            cont = np.full((net.num_links, self.num_destinations), lost)
            cont[ok] = -dt * k[ok, None] + value[exit_t[ok], head[ok]]
            q_t = np.transpose(cont[safe_slot], (0, 2, 1))  # [n, D, A]
            fixed = np.where(self.at_dest, 0.0, lost)  # value where no choice is made
            q_t = np.where(self.movable[..., None], q_t, fixed[..., None])
            q_t = np.where(self.legal, q_t, -np.inf)
            v = q_t.max(axis=-1) if policy is None else (policy[t] * np.where(self.legal, q_t, 0.0)).sum(axis=-1)
            value[t] = np.where(self.movable, v, fixed)
            q[t] = q_t
        return value, q

    def start_values(self, value: np.ndarray) -> np.ndarray:
        """Value of each OD class at its departure `[OD]` (waiting before departure is free)."""
        d = self.network.demand
        return value[self.od_dep, d.origin, self.od_dest]

    def expected(self, value: np.ndarray) -> float:
        """Demand-weighted mean of the OD classes' start values."""
        return float(self.od_frac @ self.start_values(value))


def _backward_order(net: Network) -> tuple[int, ...] | None:
    """Nodes with out-links, each after every node its links lead to (None if cyclic)."""
    n = net.num_nodes
    out_deg = net.out_degree().astype(np.int64)
    pending = out_deg.copy()
    into = [[] for _ in range(n)]
    for tail, head in zip(net.init_node.tolist(), net.term_node.tolist(), strict=True):
        into[head].append(tail)
    queue = [v for v in range(n) if pending[v] == 0]
    order = []
    while queue:
        v = queue.pop()
        order.append(v)
        for u in into[v]:
            pending[u] -= 1
            if pending[u] == 0:
                queue.append(u)
    if len(order) < n:
        return None
    return tuple(v for v in order if out_deg[v] > 0)


def make_flow_model(
    network: Network,
    time_step: float | None = None,
    horizon: int | None = None,
    num_vehicles: float | None = None,
    late_penalty: float | None = None,
) -> RoutingFlowModel:
    """Defaults: the network's time step and horizon, its total demand as vehicle count,
    one time step of late penalty (OpenSpiel's convention)."""
    dt = network.time_step if time_step is None else float(time_step)
    return RoutingFlowModel(
        network,
        dt,
        network.horizon if horizon is None else int(horizon),
        network.demand.total if num_vehicles is None else float(num_vehicles),
        dt if late_penalty is None else float(late_penalty),
    )


class MeanFieldRoutingGame(MeanFieldGame):
    """Explicit-state form (see the module docstring); `model` is the decision-point form.

    State index of (location, w, d): `(loc * (T + 2) + w + 1) * D + d` for loc in
    [0, L + n) (links, then the origin entry of each node), w in [-1, T]; then `arrived`
    (S - 2) and `stuck` (S - 1). Actions: slot a = the a-th link leaving the node reached.
    """

    transition_depends_on_mu = True

    def __init__(self, model: RoutingFlowModel):
        self.model = model
        net, T, D = model.network, model.horizon, model.num_destinations
        self.num_locations = net.num_links + net.num_nodes
        S = self.num_locations * (T + 2) * D + 2
        self.arrived_state, self.stuck_state = S - 2, S - 1
        init = np.zeros(S)
        d = net.demand
        np.add.at(init, self.index(net.num_links + d.origin, model.od_dep, model.od_dest), model.od_frac)
        self._tables: dict[str, np.ndarray] | None = None
        super().__init__(
            S,
            model.num_actions,
            T,
            init,
            legal_actions=self._build()["legal"],
            name=f"routing_mean_field/{net.name}",
        )

    def index(self, loc, w, d):
        T, D = self.model.horizon, self.model.num_destinations
        return (np.asarray(loc) * (T + 2) + np.asarray(w) + 1) * D + np.asarray(d)

    def _build(self) -> dict[str, np.ndarray]:
        """Static rows of the kernel and rewards; the (link, -1, d) rows depend on mu."""
        if self._tables is not None:
            return self._tables
        m, net = self.model, self.model.network
        T, D, A, L, dt = m.horizon, m.num_destinations, m.num_actions, net.num_links, m.time_step
        S = self.num_locations * (T + 2) * D + 2
        loc, w, d = (
            a.ravel()
            for a in np.meshgrid(np.arange(self.num_locations), np.arange(-1, T + 1), np.arange(D), indexing="ij")
        )
        origin = loc >= L
        node = np.where(origin, loc - L, net.term_node[np.minimum(loc, L - 1)])
        at_dest = (node == m.destinations[d]) & ~origin
        decide = ((w == 0) | ((w == -1) & ~origin)) & ~at_dest
        dead = decide & (net.out_degree()[node] == 0)
        choose = decide & ~dead
        own = np.arange(len(loc))
        nxt = np.repeat(own[:, None], A, axis=1)
        rew = np.zeros((len(loc), A))
        legal = np.zeros((len(loc), A), bool)
        legal[:, 0] = True
        # choices: slot a -> (link, -1, d)
        links = m.slot_link[node]  # [rows, A]
        ok = choose[:, None] & (links >= 0)
        nxt = np.where(ok, self.index(np.maximum(links, 0), -1, d[:, None]), nxt)
        rew = np.where(ok, -dt, rew)
        legal = np.where(choose[:, None], ok, legal)
        # arrivals, dead ends, countdowns
        arrive = at_dest & (w <= 0)
        nxt[arrive] = self.arrived_state
        nxt[dead] = self.stuck_state
        rew[dead] = -dt
        count = w >= 1
        nxt[count] = self.index(loc[count], w[count] - 1, d[count])[:, None]
        rew[count] = np.where(origin[count], 0.0, -dt)[:, None]
        nxt = np.concatenate([nxt, [[self.arrived_state] * A, [self.stuck_state] * A]])
        rew = np.concatenate([rew, np.zeros((1, A)), np.full((1, A), -dt)])
        legal = np.concatenate([legal, np.eye(1, A, dtype=bool), np.eye(1, A, dtype=bool)])
        assert nxt.shape == (S, A)
        rows = self.index(np.arange(L)[:, None], -1, np.arange(D)[None]).ravel()  # (link, -1, d)
        self._tables = {
            "next": nxt,
            "reward": rew,
            "legal": legal,
            "entry_rows": rows,
            "entry_link": np.repeat(np.arange(L), D),
            "entry_dest": np.tile(np.arange(D), L),
            "entry_at_dest": net.term_node[np.repeat(np.arange(L), D)] == m.destinations[np.tile(np.arange(D), L)],
        }
        return self._tables

    def link_mass(self, mu: np.ndarray) -> np.ndarray:
        """Population fraction on each link `[L]` in distribution `mu [S]`."""
        T, D, L = self.model.horizon, self.model.num_destinations, self.model.network.num_links
        return mu[: self.num_locations * (T + 2) * D].reshape(self.num_locations, -1)[:L].sum(axis=1)

    def _entry_steps(self, mu: np.ndarray) -> np.ndarray:
        m = self.model
        k = link_steps(m.network, self.link_mass(mu), m.num_vehicles, m.time_step)
        return k[self._build()["entry_link"]]

    def transition(self, t: int, mu: np.ndarray):
        tb, m = self._build(), self.model
        k = self._entry_steps(mu)
        nxt = tb["next"].copy()
        rows = tb["entry_rows"]
        stay = k > 1  # travel time not over at the next step: count down
        target = self.index(tb["entry_link"], np.minimum(k - 2, m.horizon), tb["entry_dest"])
        decision = self.index(tb["entry_link"], 0, tb["entry_dest"])
        nxt[rows] = np.where(stay[:, None], target[:, None], tb["next"][decision])
        return nxt[..., None], np.ones((*nxt.shape, 1))

    def reward(self, t: int, mu: np.ndarray) -> np.ndarray:
        tb = self._build()
        k = self._entry_steps(mu)
        rew = tb["reward"].copy()
        rows = tb["entry_rows"]
        decision = self.index(tb["entry_link"], 0, tb["entry_dest"])
        rew[rows] = np.where((k > 1)[:, None], -self.model.time_step, tb["reward"][decision])
        return rew

    def terminal_reward(self, mu: np.ndarray) -> np.ndarray:
        tb, m = self._build(), self.model
        out = np.full(self.num_states, -m.late_penalty)
        out[self.arrived_state] = 0.0
        L, D = m.network.num_links, m.num_destinations
        done = self.index(tb["entry_link"], 0, tb["entry_dest"])[tb["entry_at_dest"]]
        out[done] = 0.0
        k = self._entry_steps(mu)
        out[tb["entry_rows"][tb["entry_at_dest"] & (k == 1)]] = 0.0
        del L, D
        return out

    def lift_policy(self, policy: np.ndarray) -> np.ndarray:
        """A decision-point policy `[T, n, D, A]` as an explicit one `[T, S, A]`."""
        m, net = self.model, self.model.network
        T, D, A, L = m.horizon, m.num_destinations, m.num_actions, net.num_links
        out = np.zeros((T, self.num_states, A))
        out[:, :, 0] = 1.0
        for w in (-1, 0):
            loc = np.arange(self.num_locations)
            if w == -1:
                loc = loc[:L]
            node = np.where(loc >= L, loc - L, net.term_node[np.minimum(loc, L - 1)])
            rows = self.index(loc[:, None], w, np.arange(D)[None])  # [locs, D]
            out[:, rows] = policy[:, node]
        return np.where(self.legal_actions[None], out, 0.0)

    def mass_breakdown(self, mu: np.ndarray) -> dict[str, np.ndarray]:
        """`arrived`, `en_route` (on links or stuck), `waiting` (at origin) masses of `mu [..., S]`."""
        T, D, L = self.model.horizon, self.model.num_destinations, self.model.network.num_links
        body = mu[..., : self.num_locations * (T + 2) * D].reshape(*mu.shape[:-1], self.num_locations, -1)
        return {
            "arrived": mu[..., self.arrived_state],
            "en_route": body[..., :L, :].sum(axis=(-1, -2)) + mu[..., self.stuck_state],
            "waiting": body[..., L:, :].sum(axis=(-1, -2)),
        }


class RoutingMeanFieldConfig(EnvConfig):
    """The mean-field routing game on `net` (built-in name or TNTP `_net` path, with
    `trips`). time_step (network time units per step) and horizon (steps) default to the
    network's own; num_vehicles: vehicle count behind the congestion function (volume on a
    link = num_vehicles x population fraction on it; default: the network's total demand);
    late_penalty: extra cost, time units, of a vehicle not arrived at the horizon
    (default: one time_step)."""

    name: str = "routing_mean_field"
    net: str = "braess"
    trips: str | None = None
    time_step: float | None = Field(default=None, gt=0)
    horizon: int | None = Field(default=None, ge=1)
    num_vehicles: float | None = Field(default=None, gt=0)
    late_penalty: float | None = Field(default=None, ge=0)


def build_mean_field(config: RoutingMeanFieldConfig) -> MeanFieldRoutingGame:
    from gamescale.envs.routing.network import load_network

    network = load_network(config.net, config.trips)
    model = make_flow_model(network, config.time_step, config.horizon, config.num_vehicles, config.late_penalty)
    return MeanFieldRoutingGame(model)
