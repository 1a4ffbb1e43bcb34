"""The mean-field routing game (gamescale/envs/routing/mean_field.py): the explicit
MeanFieldGame and the decision-point flow model agree; mass is conserved; closed forms."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gamescale.algorithms.mfg.evaluation import exploitability, policy_value, propagate
from gamescale.envs.registry import make_env
from gamescale.envs.routing.mean_field import MeanFieldRoutingGame, make_flow_model
from gamescale.envs.routing.network import Demand, braess


def random_policy(model, seed: int) -> np.ndarray:
    p = np.random.default_rng(seed).random(model.policy_shape) * model.legal
    return p / p.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("net", ["pigou", "braess", "braess_no_middle"])
@pytest.mark.parametrize("seed", [None, 1])
def test_explicit_game_and_flow_model_agree(net, seed):
    """Same link masses, mass breakdown, values and exploitability (engine vs routing)."""
    game = make_env("routing_mean_field", net=net, horizon=100)
    model = game.model
    policy = model.uniform_policy() if seed is None else random_policy(model, seed)
    flow = model.flow(policy)
    explicit = game.lift_policy(policy)
    mu = propagate(game, explicit)
    links = np.array([game.link_mass(mu[t]) for t in range(1, model.horizon + 1)])
    np.testing.assert_allclose(links, flow.on_link, atol=1e-12)
    parts = game.mass_breakdown(mu)
    np.testing.assert_allclose(parts["arrived"], flow.arrived, atol=1e-12)
    np.testing.assert_allclose(parts["en_route"], flow.en_route, atol=1e-12)
    np.testing.assert_allclose(parts["waiting"], flow.waiting, atol=1e-12)
    br_value, _ = model.values(flow.steps)
    pi_value, _ = model.values(flow.steps, policy)
    assert model.expected(br_value) - model.expected(pi_value) == pytest.approx(
        exploitability(game, explicit), abs=1e-9
    )
    engine_value = game.initial_distribution @ policy_value(game, explicit)[0]
    assert model.expected(pi_value) == pytest.approx(engine_value, abs=1e-9)


def test_uniform_braess_matches_openspiel_numbers():
    """OpenSpiel 2.0.2, Braess, 100 steps of 0.05, uniform policy: nash_conv 0.5, value -3.5."""
    model = make_env("routing_mean_field", net="braess", horizon=100, time_step=0.05).model
    policy = model.uniform_policy()
    flow = model.flow(policy)
    assert -model.expected(model.values(flow.steps, policy)[0]) == pytest.approx(3.5)
    assert model.expected(model.values(flow.steps)[0]) - model.expected(model.values(flow.steps, policy)[0]) == (
        pytest.approx(0.5)
    )


@pytest.mark.parametrize("net", ["braess", "sioux_falls"])
def test_mass_conservation(net):
    """Arrived + en route + waiting = 1 at every step; the explicit distribution sums to 1."""
    kwargs = {"num_vehicles": 14000} if net == "sioux_falls" else {}
    game = make_env("routing_mean_field", net=net, **kwargs)
    model = game.model
    for seed in (0, 1):
        flow = model.flow(random_policy(model, seed))
        total = flow.arrived + flow.en_route + flow.waiting
        np.testing.assert_allclose(total, 1.0, atol=1e-12)
        assert np.all(np.diff(flow.arrived) >= -1e-15)
        assert np.all(flow.on_link >= -1e-12)
    if net == "braess":
        mu = propagate(game, game.lift_policy(random_policy(model, 3)))
        np.testing.assert_allclose(mu.sum(axis=1), 1.0, atol=1e-12)
        parts = game.mass_breakdown(mu)
        np.testing.assert_allclose(parts["arrived"] + parts["en_route"] + parts["waiting"], 1.0, atol=1e-12)


def test_departure_times_and_waiting_mass():
    """Two classes, one departing at step 10: waiting mass 1/2 until then, conserved."""
    base = braess()
    demand = Demand(origin=[0, 0], destination=[3, 3], flow=[0.5, 0.5], departure_time=[0.0, 0.5])
    net = replace(base, demand=demand)
    game = MeanFieldRoutingGame(make_flow_model(net, 0.05, 100))
    flow = game.model.flow(game.model.uniform_policy())
    assert flow.waiting[:11].tolist() == [1.0] + [0.5] * 10
    assert flow.waiting[11] == 0.0
    np.testing.assert_allclose(flow.arrived + flow.en_route + flow.waiting, 1.0, atol=1e-12)
    mu = propagate(game, game.lift_policy(game.model.uniform_policy()))
    np.testing.assert_allclose(game.mass_breakdown(mu)["waiting"], flow.waiting, atol=1e-12)


def test_bad_input_errors():
    base = braess()
    late = Demand(origin=[0], destination=[3], flow=[1.0], departure_time=[7.0])
    net = replace(base, demand=late)
    with pytest.raises(ValueError, match="departure time 7 is outside"):
        make_flow_model(net, 0.05, 100)
    with pytest.raises(ValueError, match="unknown network"):
        make_env("routing_mean_field", net="atlantis")
    with pytest.raises(ValueError):
        make_env("routing_mean_field", net="braess", num_vehicles=-1)


def test_sioux_falls_loads():
    game = make_env("routing_mean_field", net="sioux_falls", num_vehicles=14000)
    m = game.model
    assert (m.network.num_links, m.num_destinations, m.horizon, m.num_vehicles) == (76, 24, 100, 14000)
    assert m.network.demand.num_od == 528
    assert m.od_frac.sum() == pytest.approx(1.0)
