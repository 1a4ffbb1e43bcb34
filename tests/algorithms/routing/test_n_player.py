"""Fictitious play for the N-player routing game (gamescale/algorithms/routing/n_player.py)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from gamescale.algorithms.base import LocalShardRunner, StepContext, make_shard_tasks
from gamescale.algorithms.registry import algorithm_config, build_algorithm
from gamescale.algorithms.routing.n_player import simulate_shard
from gamescale.envs.registry import make_env


def learn(net: str, n: int, iterations: int, shards: int = 4):
    env = make_env("routing_n_player", net=net, num_vehicles=n)
    alg = build_algorithm(algorithm_config({"name": "routing_fictitious_play"}), env)
    state, history = alg.init(0), []
    for i in range(iterations):
        state, m = alg.step(state, StepContext(iteration=i, seed=0, shards=LocalShardRunner(env), num_shards=shards))
        history.append(m)
    return state, history


def test_braess_learned_outcome_matches_closed_form_and_paradox():
    _, h = learn("braess", 1000, 30)
    avg = np.mean([m["avg_travel_time"] for m in h[-10:]])
    assert avg == pytest.approx(3.75, abs=0.05)
    assert h[-1]["exploitability"] < 0.2 < h[0]["exploitability"] + 0.2
    _, h2 = learn("braess_no_middle", 1000, 20)
    avg2 = np.mean([m["avg_travel_time"] for m in h2[-10:]])
    assert avg2 == pytest.approx(3.5, abs=0.05)
    assert avg > avg2


def test_pigou_learned_outcome_and_small_n():
    _, h = learn("pigou", 2, 10)  # N = 2: both on the x link (1.0) or split (0.5 and 1.0)
    assert 0.7 <= h[-1]["avg_travel_time"] <= 1.0 + 1e-9
    # fictitious play moves its average strategy at rate 1/k: after 20 iterations a few
    # percent of the mass is still on the constant link, and the regret is near zero
    _, h = learn("pigou", 500, 20)
    assert 0.88 <= np.mean([m["avg_travel_time"] for m in h[-5:]]) <= 1.0 + 1e-9
    assert np.mean([m["exploitability"] for m in h[-5:]]) < 0.03


def test_shard_results_do_not_depend_on_how_shards_are_run():
    env = make_env("routing_n_player", net="braess", num_vehicles=50)
    alg = build_algorithm(algorithm_config({"name": "routing_fictitious_play"}), env)
    state = alg.init(0)
    shared = {"routes": state["routes"], "probs": state["probs"], "games": 2}
    tasks = make_shard_tasks(seed=3, iteration=1, num_shards=3)
    a = [simulate_shard(env, shared, t) for t in tasks]
    b = [simulate_shard(env, shared, t) for t in reversed(tasks)][::-1]
    assert all(x.equals(y) for x, y in zip(a, b, strict=True))
    assert isinstance(a[0], pa.RecordBatch) and a[0].num_rows == 2


def test_sioux_falls_runs_with_thousands_of_vehicles():
    _, h = learn("sioux_falls", 2000, 3, shards=2)
    assert all(np.isfinite(list(m.values())).all() for m in h)
    assert h[-1]["num_routes"] >= 528
