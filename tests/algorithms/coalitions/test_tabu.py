"""Tabu search for the largest excess: exact on small games (against enumeration), at least
as good as the greedy single-flip ascent it replaced, reproducible for a seed; the best-known
kinds of cutting planes (exact, LP value + long search, bracket) mean what they say."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.algorithms.coalitions.cutting import certify_by_search, solve_cutting_planes
from gamescale.algorithms.coalitions.lp import exact_least_core, max_excess_enumerated
from gamescale.algorithms.coalitions.sampling import sample_coalitions
from gamescale.algorithms.coalitions.tabu import TabuSettings, tabu_search
from gamescale.envs.coalitions import random_induced_subgraph, random_mc_net
from gamescale.envs.coalitions.game import CoalitionGame, all_coalitions

FAMILIES = {"induced_subgraph": random_induced_subgraph, "mc_net": random_mc_net}


def search_excess(
    game: CoalitionGame, payoff: np.ndarray, start: np.ndarray, start_values: np.ndarray, rounds: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """The greedy single-flip ascent tabu search replaced (the baseline it must beat): climbs
    from `start` `[m, n]` (values `[m]`) while a flip raises the excess.

    Returns (coalitions `[m, n]`, values `[m]`, number of game evaluations).
    """
    m, n = start.shape
    current, values = start.copy(), start_values.copy()
    excess = values - current @ payoff
    flips = np.eye(n, dtype=bool)
    active = np.ones(m, bool)
    evaluations = 0
    for _ in range(rounds):
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            break
        rows = current[idx]
        cand = rows[:, None, :] ^ flips[None]  # [a, n, n]
        size = rows.sum(axis=1, keepdims=True)
        sizes = size + np.where(rows, -1, 1)  # [a, n]
        valid = (sizes > 0) & (sizes < n)
        vals = np.where(valid, game.flip_values(rows), -np.inf)
        evaluations += int(valid.sum())
        cost = (rows @ payoff)[:, None] + np.where(rows, -payoff, payoff)
        ex = np.where(valid, vals - cost, -np.inf)
        best = np.argmax(ex, axis=1)
        gain = ex[np.arange(len(idx)), best]
        better = gain > excess[idx] + 1e-12
        upd = idx[better]
        current[upd] = cand[better, best[better]]
        values[upd] = vals[better, best[better]]
        excess[upd] = gain[better]
        active[idx[~better]] = False
    return current, values, evaluations


def random_payoff(game, rng):
    """An efficient payoff: equal split plus noise of the games' value scale."""
    n = game.num_players
    scale = max(1.0, float(np.abs(game.flip_deltas(np.zeros((1, n), bool))).max()))
    x = rng.normal(size=n) * scale
    return x + (game.grand_value() - x.sum()) / n


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_flip_deltas_match_full_evaluations(family):
    game = FAMILIES[family](40, seed=2)
    rows = sample_coalitions(np.random.default_rng(0), 40, 32)
    generic = CoalitionGame.flip_values(game, rows) - game.values(rows)[:, None]
    np.testing.assert_allclose(game.flip_deltas(rows), generic, atol=1e-12)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_tabu_finds_the_exact_largest_excess_of_small_games(family):
    for seed in range(6):
        n = 12 + seed % 3
        game = FAMILIES[family](n, seed=seed)
        rows = all_coalitions(n)[1:-1]
        values = game.values(rows)
        rng = np.random.default_rng(seed)
        for _ in range(5):
            x = random_payoff(game, rng)
            truth = float(np.max(values - rows @ x))
            found = tabu_search(game, x, sample_coalitions(rng, n, 8), rng, TabuSettings(iterations=60))
            assert found.best == pytest.approx(truth, abs=1e-9), (seed, found.best, truth)
            # what it returns is what it says: distinct proper coalitions with their true excess
            np.testing.assert_allclose(found.excess, game.values(found.coalitions) - found.coalitions @ x, atol=1e-9)
            sizes = found.coalitions.sum(axis=1)
            assert np.all((sizes > 0) & (sizes < n))
            assert len(np.unique(np.packbits(found.coalitions, axis=1), axis=0)) == len(found.excess)


def test_tabu_is_at_least_as_good_as_the_greedy_ascent_from_the_same_starts():
    wins = 0
    for family in sorted(FAMILIES):
        for seed in range(4):
            game = FAMILIES[family](60, seed=seed)
            rng = np.random.default_rng(seed)
            x = game.start_payoffs()[1]  # closed-form Shapley: many coalitions of similar excess
            starts = sample_coalitions(rng, 60, 32)
            rows, values, _ = search_excess(game, x, starts, game.values(starts), 60)
            greedy = float(np.max(values - rows @ x))
            tabu = tabu_search(game, x, starts, rng, TabuSettings(iterations=60)).best
            assert tabu >= greedy - 1e-9, (family, seed)
            wins += tabu > greedy + 1e-9
    assert wins >= 2  # and strictly better on some: the ascent stops at the first local optimum


def test_tabu_is_reproducible_for_a_seed():
    game = random_mc_net(50, seed=0)
    x = random_payoff(game, np.random.default_rng(1))
    starts = sample_coalitions(np.random.default_rng(2), 50, 16)

    def once(seed):
        return tabu_search(game, x, starts, np.random.default_rng(seed), TabuSettings(iterations=80), above=0.0)

    a, b, c = once(7), once(7), once(8)
    np.testing.assert_array_equal(a.coalitions, b.coalitions)
    np.testing.assert_array_equal(a.excess, b.excess)
    assert a.coalitions.shape != c.coalitions.shape or not np.array_equal(a.coalitions, c.coalitions)


def test_long_search_certifies_the_largest_excess_at_small_n():
    for seed in range(3):
        game = random_induced_subgraph(14, seed=seed)
        x = random_payoff(game, np.random.default_rng(seed))
        _, ex = certify_by_search(game, x, seed, iterations=100)
        assert ex[0] == pytest.approx(max_excess_enumerated(game, x)[1][0], abs=1e-9)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_best_known_kinds_say_what_is_known(family):
    # enumeration_limit below n: the MILP path, which an instant time limit leaves unproven
    game = FAMILIES[family](14, seed=4)
    exact = exact_least_core(game).epsilon
    kinds = set()
    for limit, rounds in ((None, 0), (0.0, 0), (0.0, 30)):
        found = solve_cutting_planes(
            game, enumeration_limit=4, time_limit=limit, certify_rounds=rounds, certify_iterations=150
        )
        kinds.add(found.kind)
        assert found.lower <= exact + 1e-9 <= found.upper + 2e-9  # the proven bracket always holds
        if found.kind == "exact":
            assert found.best_known == pytest.approx(exact, rel=2e-6, abs=1e-9)
        elif found.kind == "lp_and_heuristic_search":
            # the LP value with nothing above it at the LP payoff: at n = 14 the search is right,
            # so the LP payoff is in the least core and the value is exact
            assert found.best_known == found.lower
            assert max_excess_enumerated(game, found.lp_payoff)[1][0] <= found.lower + 1e-9
            assert found.best_known == pytest.approx(exact, abs=1e-9)
        else:
            assert found.kind == "bracket" and found.best_known == found.upper
    assert kinds == {"exact", "bracket", "lp_and_heuristic_search"}


def test_timed_run_stops_when_the_long_search_agrees():
    from gamescale.algorithms.coalitions.config import LeastCoreSamplingConfig
    from gamescale.algorithms.coalitions.scaling import timed_iterative

    game = random_mc_net(14, seed=3)
    exact = exact_least_core(game).epsilon
    bound = exact * 1.01
    config = LeastCoreSamplingConfig(update="lp", shapley="none", reference="none", samples=256, enumeration_limit=4)
    run = timed_iterative(game, config, 0, 2, 30.0, bound, check_seed=0, check_iterations=200, check_every=0.0)
    assert run.seconds < 30.0 and run.checked <= bound
    # at 14 players the search is exact: the payoff it passed really is within 1%
    assert exact - 1e-9 <= max_excess_enumerated(game, run.state["payoff"])[1][0] <= bound + 1e-9
