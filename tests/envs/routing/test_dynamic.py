"""The N-player dynamic routing game: closed-form equilibria, conservation, PettingZoo API
(gamescale/envs/routing/dynamic.py)."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from gamescale.envs.registry import make_env
from gamescale.envs.routing.dynamic import ARRIVED, ON_NETWORK, PENDING, make_game
from gamescale.envs.routing.network import Demand, braess, load_network

# Braess routes by link id: A-B-D, A-C-D, A-B-C-D (links 0 A->B, 1 A->C, 2 B->C, 3 B->D, 4 C->D)
BRAESS_ROUTES = np.array([[0, 3, -1], [1, 4, -1], [0, 2, 4]])
NO_MIDDLE_ROUTES = np.array([[0, 2], [1, 3]])  # links 0 A->B, 1 A->C, 2 B->D, 3 C->D


def unilateral_deviation_costs(game, routes, profile):
    """cost[i, r]: vehicle i's travel time if it alone switches to route r."""
    n, k = len(profile), len(routes)
    prof = np.repeat(profile[None], n * k, axis=0)
    prof[np.arange(n * k), np.repeat(np.arange(n), k)] = np.tile(np.arange(k), n)
    state, _ = game.simulate_routes(routes[prof])
    tt = game.travel_time(state)
    return tt[np.arange(n * k), np.repeat(np.arange(n), k)].reshape(n, k)


def test_braess_dynamic_equilibrium_matches_closed_form_and_paradox():
    # closed form of this model: splits 1/4, 1/4, 1/2 arrive at C together, everyone 3.75;
    # without the middle link 1/2, 1/2 and 3.5 (the static UE values)
    n = 8
    game = make_env("routing_n_player", net="braess", num_vehicles=n).game
    profile = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    state, _ = game.simulate_routes(BRAESS_ROUTES[profile][None])
    with_middle = game.travel_time(state)[0]
    np.testing.assert_allclose(with_middle, 3.75)
    dev = unilateral_deviation_costs(game, BRAESS_ROUTES, profile)
    assert (dev >= with_middle[:, None] - 1e-9).all()  # a Nash equilibrium

    game2 = make_env("routing_n_player", net="braess_no_middle", num_vehicles=n).game
    profile2 = np.array([0, 1] * 4)
    state2, _ = game2.simulate_routes(NO_MIDDLE_ROUTES[profile2][None])
    without = game2.travel_time(state2)[0]
    np.testing.assert_allclose(without, 3.5)
    assert (unilateral_deviation_costs(game2, NO_MIDDLE_ROUTES, profile2) >= 3.5 - 1e-9).all()
    assert with_middle.min() > without.max()  # every driver is worse off with the middle link


def test_pigou_dynamic_equilibrium_everyone_on_the_congestible_link():
    n = 10
    game = make_env("routing_n_player", net="pigou", num_vehicles=n).game
    routes = np.array([[0], [1]])  # constant link, x link
    profile = np.ones(n, np.int64)
    state, _ = game.simulate_routes(routes[profile][None])
    np.testing.assert_allclose(game.travel_time(state), 1.0)
    assert (unilateral_deviation_costs(game, routes, profile) >= 1.0 - 1e-9).all()


@pytest.mark.parametrize("num_vehicles", [1, 2, 37, 1000])
def test_vehicles_are_conserved_at_every_step(num_vehicles):
    rng = np.random.default_rng(0)
    net = load_network("sioux_falls")
    d = net.demand
    net = type(net)(
        **{
            **{f: getattr(net, f) for f in net.__dataclass_fields__ if f not in ("out_ptr", "out_links")},
            "demand": Demand(d.origin, d.destination, d.flow, rng.uniform(0, 20, d.num_od), d.source, d.source_line),
        }
    )
    game = make_game(net, num_vehicles, horizon=60)
    state = game.reset(num_games=3)
    while not game.done(state):
        ready = game.ready(state)
        actions = np.full(state.node.shape, -1)
        for g, i in np.argwhere(ready):
            actions[g, i] = rng.choice(game.legal_links(state.node[g, i]))
        state = game.step(state, actions)
        counts = [(state.status == s).sum(axis=1) for s in (PENDING, ON_NETWORK, ARRIVED)]
        np.testing.assert_array_equal(sum(counts), num_vehicles)
        np.testing.assert_array_equal(game.occupancy(state).sum(axis=1), counts[1])


def test_departure_past_horizon_is_an_error():
    net = braess()
    late = type(net)(
        **{
            **{f: getattr(net, f) for f in net.__dataclass_fields__ if f not in ("out_ptr", "out_links")},
            "demand": Demand([0], [3], [1.0], [100.0]),
        }
    )
    with pytest.raises(ValueError, match="departure time 100 is outside"):
        make_game(late, 4)


def test_illegal_action_is_an_error():
    game = make_env("routing_n_player", net="braess", num_vehicles=2).game
    with pytest.raises(ValueError, match="not a link leaving node"):
        game.step(game.reset(1), np.array([[3, 0]]))


@pytest.mark.parametrize("net", ["braess", "pigou", "sioux_falls"])
def test_pettingzoo_parallel_api(net):
    env = make_env("routing_n_player", net=net, num_vehicles=12)
    parallel_api_test(env, num_cycles=1000)


def test_episode_rewards_sum_to_minus_travel_time():
    env = make_env("routing_n_player", net="braess", num_vehicles=4)
    obs, _ = env.reset(seed=0)
    total = dict.fromkeys(env.possible_agents, 0.0)
    while env.agents:
        actions = {a: int(np.flatnonzero(obs[a]["action_mask"])[0]) for a in env.agents}
        obs, rew, *_ = env.step(actions)
        for a, r in rew.items():
            total[a] += r
    cost = env.game.travel_time(env._state)[0]
    np.testing.assert_allclose([total[a] for a in env.possible_agents], -cost)
