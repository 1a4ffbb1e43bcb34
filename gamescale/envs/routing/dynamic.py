"""The N-player dynamic routing game of arXiv 2110.11943: a batch simulator and a
PettingZoo Parallel env over it.

Model (one time step = `time_step` network time units; steps t = 0 .. horizon-1):
each vehicle has an origin node, a destination node and a departure step. A vehicle that
is *ready* (departed and at a node: its previous link finished) picks one of the links
leaving that node. After all moves of step t, a vehicle entering link l finds
n_l = number of vehicles on l (itself and everyone who entered with it included) and stays

    k_l(n_l) = max(1, floor(t_l(n_l * vehicle_weight) / time_step))   steps,

t_l the BPR cost of the network and vehicle_weight = total demand / N flow units per
vehicle. It is ready again at t + k. A vehicle whose link ends at its destination arrives
then and leaves the network. Cost (who pays what): each vehicle pays its own travel time
(arrival - departure) * time_step; one not arrived by the horizon pays `late_penalty`
(default horizon * time_step). Vehicles are never created or lost: at every step each is
exactly one of pending (not departed), on the network, arrived.

Arrays are `[G, N]` (G independent games, N vehicles) so a mean-field version over
(link, steps-to-exit, destination) can reuse `link_steps` and the network's CSR arrays.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import numpy as np

from gamescale.envs.routing.network import Demand, Network, link_cost, link_cost_at

PENDING, ON_NETWORK, ARRIVED = 0, 1, 2


def link_steps(
    net: Network, vehicles_on_link: np.ndarray, vehicle_weight: float, time_step: float, links: np.ndarray | None = None
) -> np.ndarray:
    """Steps a vehicle entering a link waits (int32), from vehicle counts: `[..., L]` per
    link, or any shape with `links` (same shape) naming the link of each count."""
    flow = np.asarray(vehicles_on_link, np.float64) * vehicle_weight
    tt = link_cost(net, flow) if links is None else link_cost_at(net, links, flow)
    return np.maximum(1, np.floor(tt / time_step + 1e-9)).astype(np.int32)


def departure_steps(demand: Demand, time_step: float, horizon: int) -> np.ndarray:
    """Departure step of each OD row (int64); a one-line error naming the row of a departure
    before 0 or at/after the horizon."""
    steps = np.floor(demand.departure_time / time_step + 1e-9).astype(np.int64)
    late = np.flatnonzero((steps >= horizon) | (demand.departure_time < 0))
    if len(late):
        r = int(late[0])
        raise ValueError(
            f"{demand.where(r)}: departure time {demand.departure_time[r]:g} is outside [0, horizon "
            f"{horizon} x {time_step:g})"
        )
    return steps


def apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to `total`, proportional to `weights` (largest remainders)."""
    share = weights / weights.sum() * total
    counts = np.floor(share).astype(np.int64)
    rest = total - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:rest]] += 1
    return counts


@dataclass
class SimState:
    """State of G games of N vehicles; every array `[G, N]` except `time`.

    status: PENDING / ON_NETWORK / ARRIVED (int8). node: node the vehicle is at or heading
    to (int32). link: link it is on, -1 when not on the network. wait: steps left until it
    reaches `node` (0 = ready). hops: links taken so far. arrival_step: -1 until arrived.
    time: steps played so far (same for all games).
    """

    status: np.ndarray
    node: np.ndarray
    link: np.ndarray
    wait: np.ndarray
    hops: np.ndarray
    arrival_step: np.ndarray
    time: int = 0


@dataclass(frozen=True)
class DynamicRoutingGame:
    """N vehicles on a network; vehicles' OD rows are apportioned to the demand.

    od_row, origin, destination, departure_step: `[N]`. time_step in network time units,
    horizon in steps, late_penalty in time units.
    """

    network: Network
    num_vehicles: int
    time_step: float
    horizon: int
    late_penalty: float
    od_row: np.ndarray = field(init=False, repr=False)
    origin: np.ndarray = field(init=False, repr=False)
    destination: np.ndarray = field(init=False, repr=False)
    departure_step: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        d, n = self.network.demand, self.num_vehicles
        if n < 1:
            raise ValueError(f"num_vehicles must be >= 1, got {n}")
        if self.time_step <= 0 or self.horizon < 1:
            raise ValueError("time_step must be > 0 and horizon >= 1")
        if d.num_od == 0:
            raise ValueError(f"{d.source}: network {self.network.name} has no demand")
        dep = departure_steps(d, self.time_step, self.horizon).astype(np.int32)
        row = np.repeat(np.arange(d.num_od), apportion(d.flow, n)).astype(np.int32)
        object.__setattr__(self, "od_row", row)
        object.__setattr__(self, "origin", d.origin[row])
        object.__setattr__(self, "destination", d.destination[row])
        object.__setattr__(self, "departure_step", dep[row])

    @property
    def vehicle_weight(self) -> float:
        """Flow units one vehicle stands for."""
        return self.network.demand.total / self.num_vehicles

    def reset(self, num_games: int = 1) -> SimState:
        shape = (num_games, self.num_vehicles)
        return SimState(
            status=np.zeros(shape, np.int8),
            node=np.broadcast_to(self.origin, shape).astype(np.int32),
            link=np.full(shape, -1, np.int32),
            wait=np.zeros(shape, np.int32),
            hops=np.zeros(shape, np.int32),
            arrival_step=np.full(shape, -1, np.int32),
        )

    def ready(self, state: SimState) -> np.ndarray:
        """`[G, N]` vehicles that must choose a link this step."""
        departed = (state.status == PENDING) & (self.departure_step <= state.time)
        free = (state.status == ON_NETWORK) & (state.wait == 0)
        return departed | free

    def legal_links(self, node: int) -> np.ndarray:
        net = self.network
        return net.out_links[net.out_ptr[node] : net.out_ptr[node + 1]]

    def done(self, state: SimState) -> bool:
        return state.time >= self.horizon or bool(np.all(state.status == ARRIVED))

    def step(self, state: SimState, actions: np.ndarray) -> SimState:
        """Advance every game one step. `actions` `[G, N]`: a link id for ready vehicles at a
        node with outgoing links, anything (e.g. -1) for the others."""
        net = self.network
        if state.time >= self.horizon:
            raise ValueError("the game is over (horizon reached)")
        actions = np.asarray(actions)
        g_count = state.status.shape[0]
        move = self.ready(state) & (net.out_degree()[state.node] > 0)
        chosen = np.where(move, actions, 0)
        bad = move & ((chosen < 0) | (chosen >= net.num_links))
        bad |= move & (net.init_node[np.clip(chosen, 0, net.num_links - 1)] != state.node)
        if bad.any():
            g, i = np.argwhere(bad)[0]
            raise ValueError(
                f"game {g} vehicle {i}: action {actions[g, i]} is not a link leaving node {state.node[g, i]}"
            )
        status = np.where(move, ON_NETWORK, state.status).astype(np.int8)
        link = np.where(move, chosen, state.link).astype(np.int32)
        node = np.where(move, net.term_node[chosen], state.node).astype(np.int32)
        on = status == ON_NETWORK
        occupancy = self.occupancy_of(on, link, g_count)
        here = np.maximum(link, 0)
        steps = link_steps(net, np.take_along_axis(occupancy, here, axis=1), self.vehicle_weight, self.time_step, here)
        wait = np.where(move, steps, state.wait)
        wait = np.where(on, wait - 1, wait).astype(np.int32)
        arrive = on & (wait == 0) & (node == self.destination)
        t = state.time + 1
        return SimState(
            status=np.where(arrive, ARRIVED, status).astype(np.int8),
            node=node,
            link=np.where(arrive, -1, link).astype(np.int32),
            wait=wait,
            hops=state.hops + move,
            arrival_step=np.where(arrive, t, state.arrival_step).astype(np.int32),
            time=t,
        )

    def skip_quiet_steps(self, state: SimState) -> SimState:
        """The state after the coming steps in which no vehicle is ready, departs or arrives
        (each of them only counts the waits down), as stepping through them would give."""
        on = state.status == ON_NETWORK
        pending = state.status == PENDING
        quiet = self.horizon - state.time
        if on.any():
            quiet = min(quiet, int(state.wait[on].min()) - 1)
        if pending.any():
            quiet = min(quiet, int(np.broadcast_to(self.departure_step, pending.shape)[pending].min()) - state.time)
        if quiet <= 0:
            return state
        return replace(state, wait=np.where(on, state.wait - quiet, state.wait).astype(np.int32), time=state.time + quiet)

    def occupancy_of(self, on: np.ndarray, link: np.ndarray, num_games: int) -> np.ndarray:
        """Vehicles on each link `[G, L]` (float64)."""
        L = self.network.num_links
        g_idx = np.broadcast_to(np.arange(num_games)[:, None], on.shape)
        return np.bincount((g_idx * L + link)[on], minlength=num_games * L).reshape(num_games, L).astype(np.float64)

    def occupancy(self, state: SimState) -> np.ndarray:
        return self.occupancy_of(state.status == ON_NETWORK, state.link, state.status.shape[0])

    def travel_time(self, state: SimState) -> np.ndarray:
        """Each vehicle's cost `[G, N]` in time units (late_penalty if not arrived)."""
        arrived = state.status == ARRIVED
        tt = (state.arrival_step - self.departure_step) * self.time_step
        return np.where(arrived, tt, self.late_penalty)

    def simulate_routes(self, routes: np.ndarray) -> tuple[SimState, np.ndarray]:
        """Play G games where vehicle i follows route `routes[g, i]` (link ids `[G, N, M]`,
        -1 padded). Returns (final state, occupancy trace `[G, horizon, L]`, vehicles on
        each link after the moves of each step)."""
        g_count = routes.shape[0]
        state = self.reset(g_count)
        trace = np.zeros((g_count, self.horizon, self.network.num_links))
        m = routes.shape[2]
        while not self.done(state):
            hop = np.minimum(state.hops, m - 1)
            actions = np.take_along_axis(routes, hop[..., None], axis=2)[..., 0]
            state = self.step(state, actions)
            trace[:, state.time - 1] = self.occupancy(state)
        return state, trace


def make_game(
    network: Network,
    num_vehicles: int,
    time_step: float | None = None,
    horizon: int | None = None,
    late_penalty: float | None = None,
) -> DynamicRoutingGame:
    dt = network.time_step if time_step is None else time_step
    h = network.horizon if horizon is None else horizon
    return DynamicRoutingGame(network, num_vehicles, dt, h, h * dt if late_penalty is None else late_penalty)


try:  # PettingZoo is an edge interface; the simulator above works without it
    from gymnasium import spaces
    from pettingzoo import ParallelEnv
except ImportError:  # pragma: no cover
    ParallelEnv = object  # type: ignore[assignment,misc]


class RoutingParallelEnv(ParallelEnv):
    """PettingZoo Parallel env: agents `vehicle_i`, one game.

    Action: Discrete(L + 1); 0 = no choice to make (not ready, or at a dead end), a >= 1 =
    enter link a - 1. Observation: {"observation": float32 [L + 1 + num_nodes + 2] =
    one-hot link (last slot: off network), one-hot destination, wait / horizon,
    time / horizon; "action_mask": int8 [L + 1]}; infos carry the same action_mask.
    Reward: -time_step per step on the network (so an episode sums to -travel time); a
    vehicle truncated at the horizon gets the rest of its late_penalty then.
    """

    metadata = {"name": "routing_n_player_v0", "render_modes": []}

    def __init__(self, game: DynamicRoutingGame):
        self.game = game
        self.network = game.network
        self.possible_agents = [f"vehicle_{i}" for i in range(game.num_vehicles)]
        self.agents: list[str] = []
        L, n = self.network.num_links, self.network.num_nodes
        self._obs_size = L + 1 + n + 2
        self._state = game.reset(1)

    @functools.cache  # noqa: B019 - the spaces must be the same objects
    def observation_space(self, agent: str) -> spaces.Dict:
        L = self.network.num_links
        return spaces.Dict(
            {
                "observation": spaces.Box(0.0, 1.0, (self._obs_size,), np.float32),
                "action_mask": spaces.Box(0, 1, (L + 1,), np.int8),
            }
        )

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Discrete:
        return spaces.Discrete(self.network.num_links + 1)

    def _masks(self) -> np.ndarray:
        s, net = self._state, self.network
        L = net.num_links
        mask = np.zeros((self.game.num_vehicles, L + 1), np.int8)
        ready = self.game.ready(s)[0]
        for i in np.flatnonzero(ready):
            legal = self.game.legal_links(int(s.node[0, i]))
            mask[i, legal + 1] = 1
        mask[:, 0] = (mask[:, 1:].sum(axis=1) == 0).astype(np.int8)
        return mask

    def _observe(self) -> tuple[dict, dict]:
        s, net, game = self._state, self.network, self.game
        L, n = net.num_links, net.num_nodes
        masks = self._masks()
        obs, infos = {}, {}
        for agent in self.agents:
            i = int(agent.split("_")[1])
            v = np.zeros(self._obs_size, np.float32)
            v[s.link[0, i] if s.link[0, i] >= 0 else L] = 1.0
            v[L + 1 + game.destination[i]] = 1.0
            v[L + 1 + n] = min(1.0, s.wait[0, i] / game.horizon)
            v[L + 2 + n] = min(1.0, s.time / game.horizon)
            obs[agent] = {"observation": v, "action_mask": masks[i]}
            infos[agent] = {"action_mask": masks[i]}
        return obs, infos

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self._state = self.game.reset(1)
        self.agents = list(self.possible_agents)
        return self._observe()

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        game = self.game
        a = np.full((1, game.num_vehicles), -1, np.int64)
        for agent, act in actions.items():
            a[0, int(agent.split("_")[1])] = int(act) - 1
        before = self._state
        self._state = game.step(before, a)
        s = self._state
        on_before = before.status[0] == ON_NETWORK
        moved = (before.status[0] == PENDING) & (s.status[0] != PENDING)
        paying = on_before | moved
        truncate = s.time >= game.horizon
        rewards, terms, truncs = {}, {}, {}
        for agent in self.agents:
            i = int(agent.split("_")[1])
            r = -game.time_step if paying[i] else 0.0
            arrived = bool(s.status[0, i] == ARRIVED)
            if truncate and not arrived:
                spent = (s.time - game.departure_step[i]) * game.time_step if s.status[0, i] == ON_NETWORK else 0.0
                r -= game.late_penalty - spent
            rewards[agent] = float(r)
            terms[agent] = arrived
            truncs[agent] = bool(truncate and not arrived)
        obs, infos = self._observe()
        self.agents = [ag for ag in self.agents if not (terms[ag] or truncs[ag])]
        return obs, rewards, terms, truncs, infos

    def state(self) -> np.ndarray:
        return np.concatenate([self._state.link[0], self._state.wait[0], self._state.status[0]]).astype(np.float32)


def replace_horizon(game: DynamicRoutingGame, horizon: int) -> DynamicRoutingGame:
    """The same game with another horizon (late penalty kept)."""
    return replace(game, horizon=horizon)
