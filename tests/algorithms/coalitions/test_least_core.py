"""Least core: closed forms of classic games, the LP's payoff against every constraint,
cutting planes and iterative coalition sampling against the full LP, efficiency of every
payoff, the stop rules, and identical numbers on one and two rollout workers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from gamescale.algorithms.base import LocalShardRunner, StepContext
from gamescale.algorithms.coalitions.config import LeastCoreLPConfig, LeastCoreSamplingConfig
from gamescale.algorithms.coalitions.cutting import solve_cutting_planes
from gamescale.algorithms.coalitions.lp import (
    IncrementalLeastCoreLP,
    exact_least_core,
    initial_coalitions,
    max_excess_enumerated,
    proper_coalitions,
    solve_least_core_lp,
)
from gamescale.algorithms.coalitions.solvers import LeastCoreLP, LeastCoreSampling, cutting_planes
from gamescale.envs.coalitions import (
    GloveGame,
    InducedSubgraphGame,
    MajorityGame,
    WeightedVotingGame,
    random_induced_subgraph,
    random_mc_net,
    random_weighted_voting,
)


def run(algorithm, game, iterations, runner=None, shards=4):
    state = algorithm.init(0)
    runner = runner or LocalShardRunner(game)
    rows = []
    for i in range(iterations):
        state, metrics = algorithm.step(state, StepContext(i, 0, runner, shards))
        rows.append(metrics)
        assert abs(state["payoff"].sum() - game.grand_value()) <= 1e-9 * max(1.0, abs(game.grand_value()))
        stop = algorithm.should_stop(state, metrics)
        if stop is not None:
            return state, rows, stop
    return state, rows, None


def check_least_core(game, payoff, epsilon, tol=1e-9):
    """x(N) = v(N) and x(S) + eps >= v(S) for every proper non-empty S."""
    rows = proper_coalitions(game.num_players)
    assert payoff.sum() == pytest.approx(game.grand_value(), abs=1e-9)
    assert np.all(rows @ payoff + epsilon >= game.values(rows) - tol)


def test_glove_core_is_the_known_allocation():
    for left, right in ((3, 2), (2, 4)):
        game = GloveGame(left, right)
        res = exact_least_core(game)
        assert res.epsilon <= 1e-9  # the core is not empty
        np.testing.assert_allclose(res.payoff, game.core_allocation(), atol=1e-9)
        # the core is that single point: no core payoff gives any scarce holder less than 1
        n = game.num_players
        rows = proper_coalitions(n)
        for i in range(n):
            c = np.zeros(n)
            c[i] = 1.0
            lo = linprog(
                c,
                A_ub=-rows.astype(float),
                b_ub=-game.values(rows),
                A_eq=np.ones((1, n)),
                b_eq=[game.grand_value()],
                bounds=[(None, None)] * n,
                method="highs",
            )
            assert lo.fun == pytest.approx(game.core_allocation()[i], abs=1e-9)


@pytest.mark.parametrize("n", [3, 4, 5, 8, 9])
def test_majority_game_has_empty_core_and_known_least_core(n):
    game = MajorityGame(n)
    res = exact_least_core(game)
    assert res.epsilon == pytest.approx(1 - (n // 2 + 1) / n, abs=1e-9)
    assert res.epsilon > 0
    check_least_core(game, res.payoff, res.epsilon)


def test_veto_player_is_in_every_core_allocation():
    game = WeightedVotingGame([6, 1, 2, 1, 1, 2], 8)  # player 0 is needed: total without him is 7
    res = exact_least_core(game)
    assert res.epsilon == pytest.approx(0.0, abs=1e-9)
    # over the whole core, no other player can get anything
    n, rows = game.num_players, proper_coalitions(6)
    for j in range(1, n):
        c = np.zeros(n)
        c[j] = -1.0
        hi = linprog(
            c,
            A_ub=-rows.astype(float),
            b_ub=-game.values(rows),
            A_eq=np.ones((1, n)),
            b_eq=[1.0],
            bounds=[(None, None)] * n,
            method="highs",
        )
        assert -hi.fun == pytest.approx(0.0, abs=1e-9)
    assert res.payoff[0] == pytest.approx(1.0, abs=1e-9)


def test_nonnegative_definition_differs_on_negative_edges():
    # a triangle 0-1-2 of weight 10 each, and player 3 tied to 0 by a -8 edge
    game = InducedSubgraphGame.from_edges(4, [(0, 1, 10), (1, 2, 10), (0, 2, 10), (0, 3, -8)])
    free, nonneg = exact_least_core(game), exact_least_core(game, nonnegative=True)
    assert nonneg.epsilon > free.epsilon + 1e-6
    assert np.all(nonneg.payoff >= -1e-12) and free.payoff.min() < 0
    check_least_core(game, free.payoff, free.epsilon)


GAMES = {
    "wvg": lambda s: random_weighted_voting(12, seed=s, quota_fraction=0.6),
    "isg": lambda s: random_induced_subgraph(12, seed=s),
    "mcnet": lambda s: random_mc_net(12, seed=s),
}


@pytest.mark.parametrize("family", sorted(GAMES))
@pytest.mark.parametrize("seed", [0, 1])
def test_lp_payoff_satisfies_every_constraint_and_cutting_planes_agree(family, seed):
    game = GAMES[family](seed)
    res = exact_least_core(game)
    check_least_core(game, res.payoff, res.epsilon)
    _, top = max_excess_enumerated(game, res.payoff)
    assert top[0] == pytest.approx(res.epsilon, abs=1e-8)  # and some constraint is tight
    x, eps, _ = cutting_planes(game, cuts=20)
    assert eps == pytest.approx(res.epsilon, abs=1e-8)
    check_least_core(game, x, eps, tol=1e-8)


@pytest.mark.parametrize("nonnegative", [False, True])
def test_warm_started_lp_matches_a_fresh_solve(nonnegative):
    game = random_induced_subgraph(9, seed=1, min_weight=-3)
    rows = proper_coalitions(9)
    values = game.values(rows)
    fresh = solve_least_core_lp(rows, values, game.grand_value(), nonnegative)
    lp = IncrementalLeastCoreLP(9, game.grand_value(), nonnegative)
    start = initial_coalitions(9)  # singletons and their complements: the first LP is bounded
    lp.add(start, game.values(start))
    partial = lp.solve()
    lp.add(rows, values)
    warm = lp.solve()
    assert partial.epsilon <= warm.epsilon + 1e-12  # fewer constraints: a lower bound
    assert warm.epsilon == pytest.approx(fresh.epsilon, abs=1e-9)
    check_least_core(game, warm.payoff, warm.epsilon, tol=1e-8)
    assert warm.duals.sum() == pytest.approx(1.0) and np.all(warm.duals >= -1e-12)


MILP_GAMES = {
    "isg": lambda s: random_induced_subgraph(14, seed=s, edge_probability=0.5),
    "mcnet": lambda s: random_mc_net(14, seed=s, max_negative=2, min_value=-0.5),
}


@pytest.mark.parametrize("family", sorted(MILP_GAMES))
@pytest.mark.parametrize("seed", [0, 1])
def test_cutting_planes_with_the_milp_oracle_equal_the_full_lp(family, seed):
    game = MILP_GAMES[family](seed)
    exact = exact_least_core(game)
    # enumeration_limit below n: every proof comes from the mixed-integer program
    found = solve_cutting_planes(game, enumeration_limit=4)
    assert found.exact and found.oracle_calls >= 1
    # the MILP proves "no excess above epsilon (1 + 1e-6)": the bracket is that tight
    scale = max(1.0, abs(exact.epsilon))
    assert exact.epsilon - 1e-6 * scale <= found.lower <= exact.epsilon + 1e-9
    assert exact.epsilon - 1e-9 <= found.upper <= exact.epsilon + 2e-6 * scale
    check_least_core(game, found.payoff, found.upper, tol=1e-9)


def test_cutting_planes_out_of_time_give_a_proven_bracket():
    game = random_induced_subgraph(14, seed=3)
    exact = exact_least_core(game).epsilon
    for limit in (0.0, 0.2):
        found = solve_cutting_planes(game, enumeration_limit=4, time_limit=limit)
        assert found.lower <= exact + 1e-9 <= found.upper + 2e-9
        width = (found.upper - found.lower) / max(1.0, abs(found.lower))
        # exact means the bracket closed to the MILP's tolerance (1e-6 relative, plus round-off)
        assert width <= 2e-6 if found.exact else width > 1e-6, (found.exact, width)


def test_sampling_stop_is_proven_by_the_milp_oracle():
    game = random_mc_net(22, seed=1)
    best = solve_cutting_planes(game)
    assert best.exact
    exact = best.upper
    config = LeastCoreSamplingConfig(update="lp", shapley="none", samples=1024, target_epsilon=exact, stop_within=0.01)
    algo = LeastCoreSampling(config, game)
    state, rows, stop = run(algo, game, 40)
    assert stop is not None and stop.reason == "target" and state["certification"] == "exact"
    assert rows[-1]["best_epsilon"] <= exact * 1.01 + 1e-12
    truth = game.separate(state["best_payoff"]).excess[0]  # the largest excess of the answer
    assert best.lower - 1e-9 <= truth <= exact * 1.01 + 1e-9


@pytest.mark.parametrize("family", sorted(GAMES))
@pytest.mark.parametrize("seed", [0, 1])
def test_iterative_sampling_matches_lp(family, seed):
    game = GAMES[family](seed)
    exact = exact_least_core(game).epsilon
    algo = LeastCoreSampling(LeastCoreSamplingConfig(update="lp", shapley="none", samples=1024), game)
    state, rows, stop = run(algo, game, 40)
    assert rows[-1]["lp_epsilon"] == pytest.approx(exact, abs=1e-9)
    assert abs(rows[-1]["certified_epsilon"] - exact) <= 1e-3 * max(abs(exact), 1e-9)
    assert stop is not None and stop.reason == "converged"
    check_least_core(game, state["payoff"], rows[-1]["certified_epsilon"], tol=1e-8)


@pytest.mark.parametrize("update", ["saddle_point", "penalty"])
def test_first_order_updates_approach_lp(update):
    game = random_mc_net(10, seed=2)
    exact = exact_least_core(game).epsilon
    algo = LeastCoreSampling(
        LeastCoreSamplingConfig(update=update, shapley="none", samples=512, inner_iterations=1000), game
    )
    _, rows, _ = run(algo, game, 12)
    first, last = rows[0]["certified_epsilon"], rows[-1]["best_epsilon"]
    assert last >= exact - 1e-9  # a real payoff cannot beat the least core
    assert last - exact <= 0.01 * abs(exact)
    assert last - exact < first - exact


@pytest.mark.parametrize("family", sorted(GAMES))
@pytest.mark.parametrize("start", ["equal_split", "best_guess"])
def test_bundle_update_reaches_the_lp_value(family, start):
    game = GAMES[family](1)
    exact = exact_least_core(game).epsilon
    config = LeastCoreSamplingConfig(update="bundle", shapley="none", samples=256, start=start)
    state, rows, _ = run(LeastCoreSampling(config, game), game, 25)
    assert state["certification"] == "exact"  # 12 players: every excess is enumerated
    best = [row["best_epsilon"] for row in rows]
    assert all(b <= a + 1e-12 for a, b in zip(best, best[1:], strict=False))  # the centre only improves
    assert abs(best[-1] - exact) <= 1e-3 * max(abs(exact), 1e-9)
    check_least_core(game, state["best_payoff"], best[-1], tol=1e-8)


@pytest.mark.parametrize("nonnegative", [False, True])
def test_proximal_master_meets_its_optimality_conditions(nonnegative):
    from gamescale.algorithms.coalitions.first_order import project_efficient, proximal_master

    rng = np.random.default_rng(4)
    a = (rng.random((80, 15)) < 0.4).astype(np.float64)
    v = a.sum(axis=1) + 3.0 * rng.normal(size=80)
    total, t = 9.0, 0.3
    centre = project_efficient(rng.normal(size=15), total, nonnegative)
    x, lam = proximal_master(a, v, centre, t, np.zeros(80), total, nonnegative, tolerance=1e-9, iterations=50_000)
    # x = argmin max_k (v_k - A_k x) + |x - centre|^2 / 2t: the multipliers are a distribution on
    # the coalitions of largest excess at x, and x is the projected step from the centre along them
    assert lam.min() >= 0 and lam.sum() == pytest.approx(1.0, abs=1e-12)
    excess = v - a @ x
    assert np.all(excess[lam > 1e-6] >= excess.max() - 1e-6)
    np.testing.assert_allclose(x, project_efficient(centre + t * a.T @ lam, total, nonnegative), atol=1e-6)
    assert x.sum() == pytest.approx(total, abs=1e-9) and (not nonnegative or x.min() >= -1e-12)
    # and it beats any other efficient payoff on the proximal objective
    objective = lambda y: np.max(v - a @ y) + np.sum((y - centre) ** 2) / (2 * t)  # noqa: E731
    for _ in range(50):
        y = project_efficient(x + 0.05 * rng.normal(size=15), total, nonnegative)
        assert objective(x) <= objective(y) + 1e-7


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_induced_subgraph_shapley_is_in_the_least_core(seed):
    # At the Shapley payoff (half the incident weight) the excess of S is -w(cut(S)) / 2, the same
    # for S and its complement, while any efficient payoff has e(S) + e(N \ S) = -w(cut(S)): so no
    # payoff does better, and the least-core value is max_S -w(cut(S)) / 2 (negative edges: > 0)
    game = random_induced_subgraph(11, seed=seed, edge_probability=0.5)
    assert game.weights.min() < 0  # negative edges: the core can be empty
    exact = exact_least_core(game).epsilon
    rows = proper_coalitions(11)
    shapley = game.shapley_closed_form()
    assert np.max(game.values(rows) - rows @ shapley) == pytest.approx(exact, abs=1e-9)
    cut = np.einsum("ki,ij,kj->k", rows.astype(float), game.weights, 1.0 - rows)
    assert np.max(-cut / 2) == pytest.approx(exact, abs=1e-9)


def test_lp_algorithm_full_and_cutting_planes_stop_converged():
    game = random_weighted_voting(30, seed=1, quota_fraction=0.7)
    algo = LeastCoreLP(LeastCoreLPConfig(shapley="none"), game)
    assert algo.method == "cutting_planes"
    state, rows, stop = run(algo, game, 200)
    assert stop is not None and stop.reason == "converged"
    assert rows[-1]["max_violation"] <= 1e-9 and state["certification"] == "exact"
    small = random_mc_net(9, seed=3)
    algo = LeastCoreLP(LeastCoreLPConfig(shapley="none"), small)
    state, rows, stop = run(algo, small, 5)
    assert len(rows) == 1 and stop.reason == "converged"
    assert rows[0]["epsilon"] == pytest.approx(exact_least_core(small).epsilon, abs=1e-12)


def test_should_stop_at_target():
    game = random_weighted_voting(25, seed=3, quota_fraction=0.65)
    exact = cutting_planes(game)[1]
    config = LeastCoreSamplingConfig(
        update="saddle_point", shapley="none", stop_within=0.01, samples=512, inner_iterations=300
    )
    algo = LeastCoreSampling(config, game)
    state = {"certification": "exact", "lp_epsilon": exact}
    assert algo.should_stop(state, {"best_epsilon": exact * 1.02}) is None
    stop = algo.should_stop(state, {"best_epsilon": exact * 1.005})
    assert stop is not None and stop.reason == "target"
    explicit = LeastCoreSampling(config.model_copy(update={"target_epsilon": 0.5}), game)
    assert explicit.should_stop(state, {"best_epsilon": 0.504}).reason == "target"
    assert explicit.should_stop(state, {"best_epsilon": 0.51}) is None
    _, rows, stop = run(algo, game, 60)
    assert stop is not None and stop.reason == "target"
    assert rows[-1]["best_epsilon"] <= exact * 1.01 + 1e-12


def test_bad_payoff_and_bad_stop_config():
    game = random_induced_subgraph(20, seed=0)
    with pytest.raises(ValueError, match="stop_within needs target_epsilon"):
        LeastCoreSampling(LeastCoreSamplingConfig(stop_within=0.01), game)
    with pytest.raises(ValueError, match="payoff has shape"):
        random_weighted_voting(6).most_violated(np.ones(5))
    with pytest.raises(ValueError, match="cooperative game"):
        LeastCoreSampling(LeastCoreSamplingConfig(), object())


@pytest.mark.parametrize("update", ["lp", "bundle"])
def test_one_and_two_workers_give_identical_runs(ray_cluster, update):
    from gamescale.framework.actors import RolloutPool

    env = {"name": "mc_net", "num_players": 24, "seed": 5}
    game = random_mc_net(24, seed=5)
    results = []
    for workers in (1, 2):
        pool = RolloutPool(env, workers)
        try:
            config = LeastCoreSamplingConfig(update=update, shapley="sampled", shapley_permutations=64)
            algo = LeastCoreSampling(config, game)
            state, rows, _ = run(algo, game, 3, runner=pool)
        finally:
            pool.shutdown()
        results.append((state, rows))
    (s1, r1), (s2, r2) = results
    assert r1 == r2
    np.testing.assert_array_equal(s1["payoff"], s2["payoff"])
    np.testing.assert_array_equal(s1["ws_packed"], s2["ws_packed"])
    np.testing.assert_array_equal(s1["shapley"], s2["shapley"])


def test_scaling_voting_games_are_not_solved_by_proportional_payoffs():
    # the warning: with many small weights the weight-proportional payoff is already in
    # the least core; the coop-scaling council games (5 heavy players) are chosen where it is not
    from gamescale.algorithms.coalitions.lp import most_violated_exact
    from gamescale.algorithms.coalitions.scaling import FAMILIES

    for n in (10, 25, 50, 100):
        game = FAMILIES["weighted_voting"](n, 0)
        found = solve_cutting_planes(game)
        proportional = game.weights / game.weights.sum()
        assert found.exact
        assert most_violated_exact(game, proportional, 1, 16)[1][0] >= 1.04 * found.upper
    uniform = random_weighted_voting(50, 0, quota_fraction=0.7)  # the default generator: exact
    eps = solve_cutting_planes(uniform).upper
    assert most_violated_exact(uniform, uniform.weights / uniform.weights.sum(), 1, 16)[1][0] <= eps + 1e-9
