"""Static user equilibrium (gamescale/algorithms/routing/static_ue.py): closed forms and
Sioux Falls against the published best-known solution."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.algorithms.base import LocalShardRunner, StepContext
from gamescale.algorithms.registry import algorithm_config, build_algorithm
from gamescale.envs.registry import make_env

# Best-known Sioux Falls UE (TransportationNetworks SiouxFalls_flow.tntp, gap ~1e-14):
# TSTT = 7,480,225 (vehicle-hours x 100, or vehicle-minutes read as minutes)
SIOUX_FALLS_TSTT = 7.480225e6


def run(net: str, iterations: int, **algo):
    env = make_env("routing_network", net=net)
    algorithm = build_algorithm(
        algorithm_config({"name": "static_user_equilibrium", "max_iterations": iterations, **algo}), env
    )
    state = algorithm.init(0)
    metrics = {}
    for i in range(iterations):
        state, metrics = algorithm.step(
            state, StepContext(iteration=i, seed=0, shards=LocalShardRunner(env), num_shards=4)
        )
    return algorithm, state, metrics


@pytest.mark.parametrize("method", ["gradient_projection", "conjugate_frank_wolfe"])
def test_pigou_and_braess_closed_forms(method):
    _, state, _ = run("pigou", 50, method=method)
    np.testing.assert_allclose(state["flows"], [0.0, 1.0], atol=1e-6)  # all on x, time 1
    _, state, m = run("braess", 300, method=method)
    np.testing.assert_allclose(state["flows"], [0.75, 0.25, 0.5, 0.25, 0.75], atol=2e-3)
    assert m["tstt"] == pytest.approx(3.75, rel=1e-4)  # unit demand: TSTT = travel time
    _, state, m = run("braess_no_middle", 50, method=method)
    assert m["tstt"] == pytest.approx(3.5, rel=1e-6)
    _, _, m = run("braess_tntp", 300, method=method)  # 6 trips at 92 each
    assert m["tstt"] == pytest.approx(6 * 92, rel=1e-4)


def test_braess_middle_link_makes_every_route_slower():
    alg, state, _ = run("braess", 100)
    cost = alg.tables(state)["link_flows"].column("cost").to_numpy()
    used = [cost[0] + cost[3], cost[1] + cost[4], cost[0] + cost[2] + cost[4]]
    alg2, state2, _ = run("braess_no_middle", 20)
    cost2 = alg2.tables(state2)["link_flows"].column("cost").to_numpy()
    assert min(used) > max(cost2[0] + cost2[2], cost2[1] + cost2[3])


def test_sioux_falls_reaches_gap_1e_4_in_200_iterations_with_tables():
    alg, state, m = run("sioux_falls", 200)
    assert m["relative_gap"] < 1e-4
    assert m["tstt"] == pytest.approx(SIOUX_FALLS_TSTT, rel=1e-3)
    table = alg.tables(state)["link_flows"]
    assert table.column_names == ["init_node", "term_node", "flow", "cost"] and table.num_rows == 76


@pytest.mark.slow
def test_sioux_falls_tstt_stable_to_four_digits_as_gap_tightens():
    env = make_env("routing_network", net="sioux_falls")
    alg = build_algorithm(algorithm_config({"name": "static_user_equilibrium", "max_iterations": 5000}), env)
    state, seen = alg.init(0), {}
    for i in range(5000):
        state, m = alg.step(state, StepContext(iteration=i, seed=0, shards=LocalShardRunner(env)))
        for gap in (1e-6, 1e-7, 1e-8):
            if m["relative_gap"] < gap and gap not in seen:
                seen[gap] = m["tstt"]
        if len(seen) == 3:
            break
    assert len(seen) == 3
    rounded = {float(f"{t:.4g}") for t in seen.values()}
    assert rounded == {7.480e6}
    assert seen[1e-8] == pytest.approx(SIOUX_FALLS_TSTT, rel=1e-6)
