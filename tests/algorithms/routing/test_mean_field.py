"""Mean-field routing FP and OMD (gamescale/algorithms/routing/mean_field.py): closed
forms on Pigou and Braess, exploitability bounds, agreement with the engine's solvers,
Sioux Falls at full demand, tables and plots."""

from __future__ import annotations

import time

import numpy as np
import pytest

from gamescale.algorithms.base import LocalShardRunner, StepContext
from gamescale.algorithms.mfg.evaluation import exploitability
from gamescale.algorithms.registry import algorithm_config, build_algorithm
from gamescale.envs.registry import make_env
from gamescale.framework.pictures import draw_table


def learn(env, name: str, iterations: int, **kwargs):
    alg = build_algorithm(algorithm_config({"name": name, **kwargs}), env)
    state, history = alg.init(0), []
    for i in range(iterations):
        ctx = StepContext(iteration=i, seed=0, shards=LocalShardRunner(env), num_shards=4)
        state, metrics = alg.step(state, ctx)
        history.append(metrics)
    return alg, state, history


@pytest.mark.parametrize("name", ["routing_mean_field_omd", "routing_mean_field_fp"])
def test_pigou_everyone_on_x_link(name):
    """Closed form: all mass on the x link, travel time 1. The step rule floor(t / dt)
    makes the x link 1 - dt long at any mass in [1 - dt, 1), and the learned mass tends
    to 1 from below, so the learned time is within one time step (0.05) below 1."""
    env = make_env("routing_mean_field", net="pigou", time_step=0.05, horizon=60)
    _, state, history = learn(env, name, 40)
    flow = env.model.flow(state["policy"])
    x_link = 1  # link 0 is the constant one
    assert flow.enter[0, x_link].sum() > 0.97
    assert 1.0 - 0.05 - 1e-9 <= history[-1]["avg_travel_time"] <= 1.0 + 1e-9
    assert history[-1]["exploitability"] < 5e-3 < history[0]["exploitability"] + 5e-3


def test_braess_paradox_omd():
    """3.75 with the middle link, 3.5 without: every driver is worse off with it."""
    with_mid = make_env("routing_mean_field", net="braess", horizon=100)
    _, s1, h1 = learn(with_mid, "routing_mean_field_omd", 30)
    without = make_env("routing_mean_field", net="braess_no_middle", horizon=100)
    _, s2, h2 = learn(without, "routing_mean_field_omd", 30)
    assert h1[-1]["avg_travel_time"] == pytest.approx(3.75, abs=1e-6)
    assert h2[-1]["avg_travel_time"] == pytest.approx(3.5, abs=1e-6)
    assert h1[-1]["exploitability"] < 1e-4 and h2[-1]["exploitability"] < 1e-4
    # every driver (all used routes) pays 3.75 > 3.5: the best response value is the equilibrium cost
    for env, state, cost in ((with_mid, s1, 3.75), (without, s2, 3.5)):
        m = env.model
        br_value, _ = m.values(m.flow(state["policy"]).steps)
        assert -m.start_values(br_value)[0] == pytest.approx(cost, abs=1e-9)
    assert h1[0]["exploitability"] > 0.1  # it started away from equilibrium


def test_braess_fictitious_play():
    env = make_env("routing_mean_field", net="braess", horizon=100)
    _, _, h = learn(env, "routing_mean_field_fp", 60)
    assert np.mean([m["avg_travel_time"] for m in h[-10:]]) == pytest.approx(3.75, abs=0.05)
    assert min(m["exploitability"] for m in h[-10:]) < 0.03


def test_omd_exploitability_decreases_and_matches_engine():
    """The collapsed routing OMD and the engine's generic mirror_descent on the explicit
    game are the same computation: equal exploitability at every iteration, equal flows
    (link masses, arrived and en-route mass over time) at the last one."""
    env = make_env("routing_mean_field", net="braess", horizon=100)
    _, state, h = learn(env, "routing_mean_field_omd", 10)
    _, engine_state, eh = learn(env, "mirror_descent", 10, learning_rate=1.0)
    ex = [m["exploitability"] for m in h]
    assert ex[-1] < 0.02 < ex[0]
    np.testing.assert_allclose(ex, [m["exploitability"] for m in eh], rtol=0, atol=1e-12)
    assert exploitability(env, env.lift_policy(state["policy"])) == pytest.approx(ex[-1], abs=1e-12)
    flow, mu = env.model.flow(state["policy"]), engine_state["mu"][0]
    np.testing.assert_allclose(np.array([env.link_mass(m) for m in mu[1:]]), flow.on_link, atol=1e-12)
    breakdown = env.mass_breakdown(mu)
    np.testing.assert_allclose(breakdown["arrived"], flow.arrived, atol=1e-12)
    np.testing.assert_allclose(breakdown["en_route"], flow.en_route, atol=1e-12)


def test_tables_and_plots(tmp_path):
    env = make_env("routing_mean_field", net="braess", horizon=100)
    alg, state, _ = learn(env, "routing_mean_field_omd", 3)
    table = alg.tables(state)["link_flows_over_time"]
    assert table.num_rows == 100 * 5
    assert set(table.column_names) >= {"step", "time", "link", "init_node", "term_node", "vehicles"}
    assert max(table.column("vehicles").to_pylist()) <= 1.0 + 1e-9
    assert draw_table("link_flows_over_time", table, tmp_path) == [tmp_path / "link_flows.png"]
    assert (tmp_path / "link_flows.png").stat().st_size > 0


def test_sioux_falls_full_demand_iteration_under_one_second():
    """528 OD pairs, 14,000 vehicles, 100 steps: one OMD iteration in < 1 s (measured ~30 ms)."""
    env = make_env("routing_mean_field", net="sioux_falls", num_vehicles=14000, horizon=100)
    alg = build_algorithm(algorithm_config({"name": "routing_mean_field_omd"}), env)
    state = alg.init(0)
    start = time.perf_counter()
    state, m = alg.step(state, StepContext(iteration=0, seed=0, shards=LocalShardRunner(env)))
    assert time.perf_counter() - start < 1.0
    assert np.isfinite(m["exploitability"]) and m["avg_travel_time"] > 0
    for i in range(1, 10):
        state, m2 = alg.step(state, StepContext(iteration=i, seed=0, shards=LocalShardRunner(env)))
    assert m2["exploitability"] < m["exploitability"]
    assert m2["arrived_fraction"] == pytest.approx(1.0)


def test_openspiel_form_passes_agree_with_the_model():
    """The compatible form's pieces against the model's own passes (no OpenSpiel needed):
    its walk reaches every decision point the flow reaches (and only reachable ones), its
    Q with no read-ahead is the policy's Q, and the node-ordered and by-step Q agree."""
    from gamescale.algorithms.routing.mean_field import _openspiel_q_by_step, openspiel_q, openspiel_visits, softmax

    env = make_env("routing_mean_field", net="braess", time_step=0.05, horizon=100)
    m = env.model
    rng = np.random.default_rng(0)
    logits = rng.normal(size=m.policy_shape)
    policy = softmax(logits, m.legal)
    flow = m.flow(policy)
    visited, first = openspiel_visits(m, flow.steps)
    reached = (flow.ready[:-1] > 0) & m.movable
    assert np.array_equal(visited & m.movable, reached)  # full support: reached iff walked
    mixed = rng.random(first.shape) < 0.5
    finite = np.isfinite(m.values(flow.steps, policy)[1])
    by_node = openspiel_q(m, flow.steps, logits, 0.7, mixed)
    np.testing.assert_allclose(by_node[finite], _openspiel_q_by_step(m, flow.steps, logits, 0.7, mixed)[finite])
    held = openspiel_q(m, flow.steps, logits, 0.7, np.ones_like(first))
    np.testing.assert_allclose(held[finite], m.values(flow.steps, policy)[1][finite], atol=1e-12)
    assert not np.allclose(by_node[finite], held[finite])  # the read-ahead changes something
