"""The mixed-integer separation oracle of induced subgraph games and MC-nets against
enumeration (largest excess, its proof by infeasibility, the bracket under a time limit),
and every family's single-flip neighbourhood values against full evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.envs.coalitions import (
    CoalitionGame,
    all_coalitions,
    random_induced_subgraph,
    random_mc_net,
    random_weighted_voting,
)

GAMES = {
    "isg": lambda s: random_induced_subgraph(12, seed=s, edge_probability=0.6),
    # negative rule values and up to two negative literals: both linearisations are exercised
    "mcnet": lambda s: random_mc_net(12, seed=s, max_negative=2, min_value=-1.0, max_value=1.0),
}


def payoff_of(game, seed):
    x = np.random.default_rng(seed).normal(size=game.num_players) * 2.0
    return x + (game.grand_value() - x.sum()) / game.num_players


@pytest.mark.parametrize("family", sorted(GAMES))
@pytest.mark.parametrize("seed", [0, 1])
def test_milp_finds_the_largest_excess(family, seed):
    game = GAMES[family](seed)
    x = payoff_of(game, seed)
    rows = all_coalitions(12)[1:-1]
    excess = game.values(rows) - rows @ x
    best = excess.max()
    found = game.separate(x, k=5)
    assert found.optimal
    assert found.excess[0] == pytest.approx(best, abs=1e-9)
    assert found.upper_bound == pytest.approx(best, abs=1e-7)
    np.testing.assert_allclose(game.values(found.coalitions) - found.coalitions @ x, found.excess, atol=1e-12)
    sizes = found.coalitions.sum(axis=1)
    assert np.all((sizes > 0) & (sizes < 12)) and np.all(np.diff(found.excess) <= 1e-12)
    rows_mv, ex_mv = game.most_violated(x, 1)
    assert ex_mv[0] == pytest.approx(best, abs=1e-9)
    # asked only for coalitions above a level: none above the maximum (proved), some below it
    above = game.separate(x, k=5, at_least=best + 1e-3)
    assert above.optimal and len(above.excess) == 0 and above.upper_bound == pytest.approx(best + 1e-3)
    below = game.separate(x, k=5, at_least=best - 1.0, max_solutions=2)
    assert len(below.excess) >= 1 and np.all(below.excess >= best - 1.0 - 1e-6)


def test_time_limited_milp_is_a_bracket():
    game = random_mc_net(120, seed=4)
    x = payoff_of(game, 4)
    found = game.separate(x, k=3, time_limit=0.05)
    assert len(found.excess) == 0 or found.upper_bound >= found.excess[0] - 1e-9
    exact = game.separate(x, k=1)
    assert exact.optimal and found.upper_bound >= exact.excess[0] - 1e-7
    if len(found.excess):
        assert found.excess[0] <= exact.excess[0] + 1e-9


@pytest.mark.parametrize(
    "game",
    [
        random_induced_subgraph(25, seed=1),
        random_mc_net(25, seed=2, max_negative=2, min_value=-1.0),
        random_weighted_voting(25, seed=3),
    ],
    ids=lambda g: g.name,
)
def test_flip_values_match_full_evaluation(game):
    c = np.random.default_rng(0).random((9, 25)) < 0.4
    np.testing.assert_allclose(game.flip_values(c), CoalitionGame.flip_values(game, c), atol=1e-12)


def test_odd_cycle_inequalities_hold_for_every_coalition_and_bound_the_excess():
    from gamescale.envs.coalitions.cycles import CycleCuts, cycle_bound, edge_columns

    game = random_induced_subgraph(12, seed=1, edge_probability=0.5)
    x = game.shapley_closed_form()  # the excess is minus half the cut weight: a max-cut problem
    cuts = CycleCuts()
    bound = cycle_bound(game.weights, x, cuts)
    rows = all_coalitions(12)[1:-1]
    best = float((game.values(rows) - rows @ x).max())
    assert best - 1e-9 <= bound
    assert len(cuts.rows) > 0  # the triangles alone left violated cycles
    # every inequality is valid: at each coalition's cut vector (s, y = s_i xor s_j) it holds
    ei, ej = edge_columns(game.weights)
    point = np.concatenate([rows, rows[:, ei] ^ rows[:, ej]], axis=1).astype(float)
    for cols, coef, lower in cuts.rows:
        assert np.all(point[:, cols] @ coef >= lower - 1e-12)
    # and they tighten the plain relaxation (triangles only) at this payoff
    assert bound < cycle_bound(game.weights, x, CycleCuts(), time_limit=0.0) - 1.0


def test_voting_oracle_with_random_ties_returns_distinct_tight_rows():
    game = random_weighted_voting(12, seed=2)
    x = game.weights / game.weights.sum()  # proportional: many coalitions share the largest excess
    rows = all_coalitions(12)[1:-1]
    best = float((game.values(rows) - rows @ x).max())
    found, ex = game.most_violated(x, 30, rng=np.random.default_rng(0))
    assert ex[0] == pytest.approx(best, abs=1e-12)
    np.testing.assert_allclose(ex[1:], game.values(found[1:]) - found[1:] @ x, atol=1e-12)
    assert len(np.unique(np.packbits(found, axis=1), axis=0)) == len(found)
    tied = np.isclose(ex, best, atol=1e-9).sum()
    assert tied > 1 and tied >= np.isclose(game.most_violated(x, 30)[1], best, atol=1e-9).sum()


@pytest.mark.parametrize("limit", [0.0, 0.05, None])
def test_induced_subgraph_bound_contains_the_largest_excess_at_any_time_limit(limit):
    game = random_induced_subgraph(14, seed=7, edge_probability=0.4)
    x = game.shapley_closed_form() + np.random.default_rng(7).normal(size=14)
    x += (game.grand_value() - x.sum()) / 14
    rows = all_coalitions(14)[1:-1]
    best = float((game.values(rows) - rows @ x).max())
    found = game.separate(x, k=2, time_limit=limit)  # the cycle LP's bound, then the MILP's
    assert found.upper_bound >= best - 1e-9
    if len(found.excess):
        assert found.excess[0] <= best + 1e-9
    if limit is None:
        assert found.optimal and found.upper_bound == pytest.approx(best, abs=1e-7)
