"""Fictitious play for the N-player routing game (gamescale/algorithms/routing/n_player.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest

from gamescale.algorithms.base import LocalShardRunner, StepContext, make_shard_tasks
from gamescale.algorithms.registry import algorithm_config, build_algorithm
from gamescale.algorithms.routing.n_player import (
    RoutingFictitiousPlay,
    deviation_shard,
    entrant_counts,
    hop_exits,
    play_routes,
    replay_costs,
    sample_routes,
    simulate_shard,
)
from gamescale.envs.registry import make_env
from gamescale.envs.routing.dynamic import ARRIVED

PIGOU_ROUTES = np.array([[0], [1]], np.int32)  # constant link, x link
BRAESS_ROUTES = np.array([[0, 3, -1], [1, 4, -1], [0, 2, 4]], np.int32)  # ABD, ACD, ABCD


def learn(net: str, n: int, iterations: int, shards: int = 4):
    env = make_env("routing_n_player", net=net, num_vehicles=n)
    alg = build_algorithm(algorithm_config({"name": "routing_fictitious_play"}), env)
    state, history = alg.init(0), []
    for i in range(iterations):
        state, m = alg.step(state, StepContext(iteration=i, seed=0, shards=LocalShardRunner(env), num_shards=shards))
        history.append(m)
    return state, history


def exact_regret(game, routes: np.ndarray, probs: np.ndarray, alternatives: np.ndarray) -> np.ndarray:
    """Each vehicle's gain from its best unilateral deviation `[N]`, exact by enumeration of
    every joint pure profile (small N only): expected cost under `probs [N, K]` over the
    pool `routes [OD, K, M]`, minus the best expected cost of a route in `alternatives
    [R, M]` against the others' mixed strategies."""
    n = probs.shape[0]
    pools = routes[game.od_row]  # [N, K, M]
    support = [np.flatnonzero(p > 0) for p in probs]  # unused pool slots hold no route
    profiles = np.array(list(itertools.product(*support)))  # [P, N]
    weight = np.prod(probs[np.arange(n), profiles], axis=1)  # [P]
    played = pools[np.arange(n), profiles]  # [P, N, M]
    cost = game.travel_time(game.simulate_routes(played)[0])  # [P, N]
    regret = np.empty(n)
    alternatives = np.pad(alternatives, ((0, 0), (0, pools.shape[2] - alternatives.shape[1])), constant_values=-1)
    for i in range(n):
        best = np.inf
        for route in alternatives:
            deviated = played.copy()
            deviated[:, i] = route
            best = min(best, float(weight @ game.travel_time(game.simulate_routes(deviated)[0])[:, i]))
        regret[i] = weight @ cost[:, i] - best
    return regret


def test_braess_learned_outcome_matches_closed_form_and_paradox():
    _, h = learn("braess", 1000, 30)
    avg = np.mean([m["avg_travel_time"] for m in h[-10:]])
    assert avg == pytest.approx(3.75, abs=0.05)
    assert h[-1]["exploitability"] < 0.2 < h[0]["exploitability"] + 0.2
    _, h2 = learn("braess_no_middle", 1000, 20)
    avg2 = np.mean([m["avg_travel_time"] for m in h2[-10:]])
    assert avg2 == pytest.approx(3.5, abs=0.05)
    assert avg > avg2


def test_pigou_learned_outcome():
    # fictitious play moves its average strategy at rate 1/k: after 20 iterations a few
    # percent of the mass is still on the constant link, and the regret is near zero
    _, h = learn("pigou", 500, 20)
    assert 0.88 <= np.mean([m["avg_travel_time"] for m in h[-5:]]) <= 1.0 + 1e-9
    assert np.mean([m["exploitability"] for m in h[-5:]]) < 0.03


def test_exact_regret_closed_forms_on_pigou():
    """The enumerating evaluator against Pigou at N = 2 (each vehicle 1/2 of the flow): x
    costs 0.5 alone, 1.0 shared, the constant link 1.0. A vehicle on the constant link with
    probability p, the other on x with probability q, regrets p (1 - q) / 2."""
    env = make_env("routing_n_player", net="pigou", num_vehicles=2)
    game = env.game
    routes = np.array([[[0], [1]]], np.int32)  # slot 0: constant link, slot 1: x link
    both_x = np.array([[0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(exact_regret(game, routes, both_x, routes[0]), 0.0, atol=1e-12)
    mixed = np.array([[0.6, 0.4], [0.3, 0.7]])
    expected = [0.6 * (1 - 0.7) / 2, 0.3 * (1 - 0.4) / 2]
    np.testing.assert_allclose(exact_regret(game, routes, mixed, routes[0]), expected, atol=1e-12)


@pytest.mark.parametrize("n", [2, 3])
def test_pigou_few_vehicles_reach_an_equilibrium(n):
    """Issue 14: at N = 2 and 3 every vehicle sharing the x link pays 1.0 at most, as on the
    constant link, so all on x is an equilibrium; FP finds it (the deviator no longer counts
    itself twice) and its exploitability metric agrees with the exact regret: 0."""
    state, h = learn("pigou", n, 10)
    env = make_env("routing_n_player", net="pigou", num_vehicles=n)
    regret = exact_regret(env.game, state["routes"], state["probs"], PIGOU_ROUTES)
    assert regret.max() < 1e-12
    assert max(m["exploitability"] for m in h) < 1e-12


def pool_state(fp: RoutingFictitiousPlay, routes: np.ndarray, mix: list[float]) -> dict:
    """A state whose one OD row has pool `routes` `[K, M]` and every vehicle plays `mix`."""
    pool = np.full((1, len(routes), fp.width), -1, np.int32)
    pool[0, :, : routes.shape[1]] = routes
    probs = np.tile(np.asarray(mix, np.float64), (fp.game.num_vehicles, 1))
    return {"routes": pool, "route_count": np.array([len(routes)], np.int32), "probs": probs, "iteration": 3}


@pytest.mark.parametrize(
    ("net", "n", "mix"),
    [("pigou", 2, [0.6, 0.4]), ("pigou", 3, [0.3, 0.7]), ("braess", 3, [0.2, 0.3, 0.5]), ("braess", 4, [0.1, 0.1, 0.8])],
)
def test_exploitability_metric_agrees_with_exact_regret(net, n, mix):
    """The metric of one step (4,096 sampled games, deviations simulated) against the
    enumeration, on mixed strategies whose pools hold every route. Measured |difference|
    <= 0.006 over 3 seeds; exact regrets here are 0.05 - 0.25."""
    env = make_env("routing_n_player", net=net, num_vehicles=n)
    fp = RoutingFictitiousPlay(env, games_per_shard=1024)
    routes = PIGOU_ROUTES if net == "pigou" else BRAESS_ROUTES
    state = pool_state(fp, routes, mix)
    _, m = fp.step(state, StepContext(iteration=0, seed=5, shards=LocalShardRunner(env), num_shards=4))
    exact = exact_regret(env.game, state["routes"], state["probs"], routes).mean()
    assert exact > 0.04
    assert m["exploitability"] == pytest.approx(exact, abs=0.015)


def test_replayed_deviations_are_exact_on_parallel_links():
    """On Pigou a deviation cannot change when the others reach a link the deviator uses
    later, so walking a route through the sampled counts costs what playing the deviated
    game does: both modes give the same metrics from the same draws."""
    env = make_env("routing_n_player", net="pigou", num_vehicles=7)
    ctx = StepContext(iteration=0, seed=1, shards=LocalShardRunner(env), num_shards=2)
    out = []
    for mode in ("replay", "simulate"):
        fp = RoutingFictitiousPlay(env, games_per_shard=64, deviations=mode)
        out.append(fp.step(pool_state(fp, PIGOU_ROUTES, [0.4, 0.6]), ctx)[1])
    assert out[0]["exploitability"] > 0.05
    for key in out[0]:
        assert out[0][key] == pytest.approx(out[1][key], rel=1e-12)


@pytest.mark.parametrize("net", ["braess", "sioux_falls"])
def test_entrant_counts_reproduce_every_travel_time(net):
    """play_routes (quiet steps skipped) ends where the step-by-step simulator does, and
    walking each vehicle's own route through the entrant counts with itself removed gives
    back its travel time: the counts are what the simulator charged."""
    game = make_env("routing_n_player", net=net, num_vehicles=60).game
    fp = RoutingFictitiousPlay(game)
    state = fp.init(0)
    if net == "braess":
        state = pool_state(fp, BRAESS_ROUTES, [0.3, 0.3, 0.4])
    chosen = sample_routes(game, state["routes"], state["probs"], 3, np.random.default_rng(2))
    final, entry = play_routes(game, chosen)
    reference, _ = game.simulate_routes(chosen)
    np.testing.assert_array_equal(final.arrival_step, reference.arrival_step)
    np.testing.assert_array_equal(final.hops, reference.hops)
    exits = hop_exits(entry, final.arrival_step, game.horizon)
    counts = entrant_counts(game, chosen, entry, exits)
    own = (chosen, entry, exits)  # every vehicle its own "class"
    cost = replay_costs(game, counts, own, chosen[0][:, None], game.departure_step)  # vehicle i on game 0's route
    np.testing.assert_allclose(cost[0, :, 0], game.travel_time(final)[0])


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
    pool = pool_state(alg, BRAESS_ROUTES, [0.3, 0.3, 0.4])["routes"][0]
    shared |= {"pair_class": np.array([0, 0]), "pair_route": pool[1:]}
    c = [deviation_shard(env, shared, t) for t in reversed(tasks)][::-1]
    d = [deviation_shard(env, shared, t) for t in tasks]
    assert all(x.equals(y) for x, y in zip(c, d, strict=True)) and c[0].num_columns == 1


def test_sioux_falls_runs_with_thousands_of_vehicles():
    """2,000 vehicles, 528 OD pairs: the regret falls several-fold in three iterations, the
    route pools grow past one route per OD pair, and in games sampled from the learned
    strategies every vehicle arrives before the horizon."""
    state, h = learn("sioux_falls", 2000, 3, shards=2)
    assert all(np.isfinite(list(m.values())).all() for m in h)
    regret = [m["exploitability"] for m in h]
    assert regret[2] < regret[1] < regret[0] / 4
    routes = [m["num_routes"] for m in h]
    assert 528 < routes[0] < routes[1] < routes[2] == state["route_count"].sum()
    game = make_env("routing_n_player", net="sioux_falls", num_vehicles=2000).game
    final, _ = game.simulate_routes(sample_routes(game, state["routes"], state["probs"], 2, np.random.default_rng(0)))
    assert np.all(final.status == ARRIVED)
    assert game.travel_time(final).max() < game.late_penalty
