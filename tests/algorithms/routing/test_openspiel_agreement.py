"""`routing_mean_field_omd` with `openspiel_compatible: true` reproduces OpenSpiel's
`MirrorDescent` on `python_mfg_dynamic_routing` iterate by iterate (policy, flow and
nash_conv, live against pyspiel), on Braess and on a network with two origins, two
destinations, departure times and a choice node that two links reach at the same step."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gamescale.algorithms.registry import algorithm_config, build_algorithm
from gamescale.algorithms.routing.mean_field import openspiel_visits
from gamescale.envs.registry import make_env
from gamescale.envs.routing.mean_field import RoutingFlowModel, make_flow_model
from gamescale.envs.routing.network import Demand, Network
from tests.conftest import require_peer

pyspiel = require_peer("pyspiel")  # skips without OpenSpiel; fails under CI=true
from open_spiel.python.games import dynamic_routing_data, dynamic_routing_utils  # noqa: E402
from open_spiel.python.mfg.algorithms import mirror_descent, nash_conv  # noqa: E402
from open_spiel.python.mfg.games import dynamic_routing  # noqa: E402

# Two origins (dummy links O->A and P->B), two destinations (D->E, X->Y: their tails have
# no other way out, as OpenSpiel's exit links), departures at steps 0 and 2; C has two
# links and is reached from A->C and B->C, which OpenSpiel's walk evaluates in turn.
TWO_OD_ADJACENCY = {
    "O": ["A"],
    "P": ["B"],
    "A": ["B", "C"],
    "B": ["C", "D", "X"],
    "C": ["D", "X"],
    "D": ["E"],
    "X": ["Y"],
    "E": [],
    "Y": [],
}
TWO_OD_LINKS = {  # free-flow time, BPR a, BPR b, capacity
    "O->A": (0.0, 0.0, 1.0, 1.0),
    "P->B": (0.0, 0.0, 1.0, 1.0),
    "A->B": (1.0, 1.0, 1.0, 3.0),
    "A->C": (1.6, 0.5, 2.0, 4.0),
    "B->C": (0.3, 2.0, 1.0, 5.0),
    "B->D": (1.9, 0.2, 1.0, 5.0),
    "B->X": (2.3, 0.0, 1.0, 1.0),
    "C->D": (0.9, 1.5, 1.0, 4.0),
    "C->X": (1.1, 1.0, 1.5, 2.0),
    "D->E": (0.0, 0.0, 1.0, 1.0),
    "X->Y": (0.0, 0.0, 1.0, 1.0),
}


def two_od_game(time_step: float, horizon: int):
    fields = ("free_flow_travel_time", "bpr_a_coefficient", "bpr_b_coefficient", "capacity")
    coefficients = {name: {link: c[i] for link, c in TWO_OD_LINKS.items()} for i, name in enumerate(fields)}
    network = dynamic_routing_utils.Network(TWO_OD_ADJACENCY, **coefficients)
    od = [
        dynamic_routing_utils.OriginDestinationDemand("O->A", "D->E", 0.0, 3.0),
        dynamic_routing_utils.OriginDestinationDemand("P->B", "X->Y", 2.0 * time_step, 2.0),
    ]
    return network, od


def flow_model_of(network, od_demand, time_step: float, horizon: int) -> tuple[RoutingFlowModel, list[str]]:
    """gamescale's model of OpenSpiel's routing game: a dummy origin link O->A becomes the
    origin node A, a destination link D->E (D's only link) the destination node D; the
    other links keep OpenSpiel's action-id order, so the slots at a node are in that order.
    Returns the model and OpenSpiel's name of each node."""
    origins = {od.origin for od in od_demand}
    exits = {od.destination for od in od_demand}
    split = [tuple(link.split("->")) for link in network.links()]
    for link in exits:
        tail = link.split("->")[0]
        assert list(network.get_successors(tail)) == [link.split("->")[1]], f"{tail} has another way out"
    for link in origins:
        assert all(head != link.split("->")[0] for _, head in split), f"{link} is not a dummy origin link"
    kept = [(u, v) for u, v in split if f"{u}->{v}" not in origins | exits]
    nodes = sorted({n for pair in kept for n in pair})
    ix = {n: i for i, n in enumerate(nodes)}
    coef = [(network._free_flow_travel_time[f"{u}->{v}"], network._a[f"{u}->{v}"]) for u, v in kept]
    net = Network(
        name="openspiel",
        node_ids=np.arange(len(nodes)),
        init_node=[ix[u] for u, _ in kept],
        term_node=[ix[v] for _, v in kept],
        capacity=[network._capacity[f"{u}->{v}"] for u, v in kept],
        length=np.ones(len(kept)),
        free_flow_time=[fft for fft, _ in coef],
        congestion_time=[fft * a for fft, a in coef],
        power=[network._b[f"{u}->{v}"] for u, v in kept],
        demand=Demand(
            origin=[ix[od.origin.split("->")[1]] for od in od_demand],
            destination=[ix[od.destination.split("->")[0]] for od in od_demand],
            flow=[od.counts for od in od_demand],
            departure_time=[od.departure_time for od in od_demand],
        ),
        time_step=time_step,
        horizon=horizon,
    )
    return make_flow_model(net, time_step, horizon), nodes


def openspiel_policy(game, policy, model: RoutingFlowModel, node_names, od_demand) -> np.ndarray:
    """OpenSpiel's policy as gamescale's `[T, n, D, A]`: asked at a vehicle standing at
    each node (come in on any link: its cumulative values are those of the links out)."""
    net = model.network
    into = {}
    for od in od_demand:
        into.setdefault(od.origin.split("->")[1], od.origin)
    for link in game.network.links():
        into.setdefault(link.split("->")[1], link)
    dest_link = {od.destination.split("->")[0]: od.destination for od in od_demand}
    out = model.uniform_policy()
    start = game.new_initial_state()
    start.apply_action(0)
    for t in range(model.horizon):
        for v, d in zip(*np.nonzero(model.movable), strict=True):
            name = node_names[v]
            state = start.clone()
            state._vehicle_location = into[name]
            state._vehicle_destination = dest_link[node_names[model.destinations[d]]]
            state._current_time_step, state._waiting_time = t, 0
            probs = policy.action_probabilities(state)
            for a, link in enumerate(model.slot_link[v]):
                if link >= 0:
                    u, w = node_names[net.init_node[link]], node_names[net.term_node[link]]
                    out[t, v, d, a] = probs[game.network.get_action_id_from_movement(u, w)]
    return out


LINK_STATE = re.compile(r"Location=(.+), waiting_time=-?\d+, t=(\d+)_mean_field, destination=.*")


def openspiel_link_mass(game, distribution, model: RoutingFlowModel, node_names) -> np.ndarray:
    """`[T, L]`: OpenSpiel's mass on each link at the mean-field node after step t's moves."""
    net = model.network
    link_id = {
        f"{node_names[u]}->{node_names[v]}": i
        for i, (u, v) in enumerate(zip(net.init_node, net.term_node, strict=True))
    }
    mass = np.zeros((model.horizon, net.num_links))
    for state, p in distribution.distribution.items():
        hit = LINK_STATE.fullmatch(state)
        if hit and hit[1] in link_id and 0 < int(hit[2]) <= model.horizon:
            mass[int(hit[2]) - 1, link_id[hit[1]]] += p
    return mass


def compare(game, model, node_names, od_demand, learning_rate: float, iterations: int):
    """Run both for `iterations`; assert nash_conv, policy and link masses agree at each.
    Returns the read-ahead flags seen (to check the test exercised them)."""
    md = mirror_descent.MirrorDescent(game, lr=learning_rate)
    config = {"name": "routing_mean_field_omd", "learning_rate": learning_rate, "openspiel_compatible": True}
    ours = build_algorithm(algorithm_config(config), model)
    state = ours.init(0)
    read_ahead = 0
    for k in range(1, iterations + 1):
        read_ahead += (k > 1) * int((~openspiel_visits(model, model.flow(state["policy"]).steps)[1]).sum())
        md.iteration()
        state, metrics = ours.step(state)
        theirs = openspiel_policy(game, md.get_policy(), model, node_names, od_demand)
        np.testing.assert_allclose(state["policy"], theirs, atol=1e-12, err_msg=f"policy, iteration {k}")
        flow = model.flow(state["policy"])
        np.testing.assert_allclose(
            flow.on_link, openspiel_link_mass(game, md.distribution, model, node_names), atol=1e-12
        )
        expected = nash_conv.NashConv(game, md.get_policy()).nash_conv()
        assert metrics["exploitability"] == pytest.approx(expected, abs=1e-9), f"iteration {k}"
    return read_ahead


def braess_game(time_step: float, horizon: int):
    params = {"max_num_time_step": horizon, "time_step_length": time_step}
    return dynamic_routing.MeanFieldRoutingGame(
        params, dynamic_routing_data.BRAESS_NETWORK, dynamic_routing_data.BRAESS_NETWORK_OD_DEMAND, False
    )


@pytest.mark.parametrize("learning_rate", [1.0, 0.1])
def test_braess_iterates_match_openspiel(learning_rate):
    """The built-in Braess network is OpenSpiel's (5 vehicles, capacity 5 = population
    fraction, capacity 1); 25 steps of 0.2 keep OpenSpiel's tree walk to a second."""
    game = braess_game(0.2, 25)
    env = make_env("routing_mean_field", net="braess", time_step=0.2, horizon=25)
    compare(game, env.model, ["A", "B", "C", "D"], dynamic_routing_data.BRAESS_NETWORK_OD_DEMAND, learning_rate, 10)


@pytest.mark.parametrize("learning_rate", [1.0, 0.3])
def test_two_od_network_iterates_match_openspiel(learning_rate):
    time_step, horizon = 0.25, 30
    network, od = two_od_game(time_step, horizon)
    game = dynamic_routing.MeanFieldRoutingGame(
        {"max_num_time_step": horizon, "time_step_length": time_step}, network, od, False
    )
    model, names = flow_model_of(network, od, time_step, horizon)
    read_ahead = compare(game, model, names, od, learning_rate, 10)
    assert read_ahead > 0  # the walk did reach a choice node a second time


@pytest.mark.slow
def test_braess_issue_case_matches_openspiel():
    """The issue's case: 100 steps of 0.05, lr 1 (0.329, 0.296, 0.227, ..., 0 at 15)."""
    game = braess_game(0.05, 100)
    env = make_env("routing_mean_field", net="braess", time_step=0.05, horizon=100)
    compare(game, env.model, ["A", "B", "C", "D"], dynamic_routing_data.BRAESS_NETWORK_OD_DEMAND, 1.0, 15)
