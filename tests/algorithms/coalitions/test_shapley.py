"""Shapley values: enumeration against every closed form, and permutation sampling
against the exact values through its confidence intervals."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.algorithms.coalitions.shapley import exact_shapley, sampled_shapley, shapley_values
from gamescale.envs.coalitions import (
    GloveGame,
    MajorityGame,
    random_airport,
    random_induced_subgraph,
    random_mc_net,
    random_weighted_voting,
)


def test_induced_subgraph_shapley_is_half_the_incident_weight():
    game = random_induced_subgraph(11, seed=7)
    np.testing.assert_allclose(exact_shapley(game), 0.5 * game.weights.sum(axis=1), atol=1e-10)


@pytest.mark.parametrize(
    "game",
    [random_mc_net(10, seed=1, max_negative=2), random_airport(9, seed=2), MajorityGame(7)],
    ids=lambda g: g.name,
)
def test_closed_forms_match_enumeration(game):
    np.testing.assert_allclose(exact_shapley(game), game.shapley_closed_form(), atol=1e-10)


def test_glove_game_shapley():
    np.testing.assert_allclose(exact_shapley(GloveGame(2, 1)), [1 / 6, 1 / 6, 2 / 3], atol=1e-12)


def test_efficiency():
    for game in (random_weighted_voting(10, seed=1), random_mc_net(10, seed=4)):
        assert exact_shapley(game).sum() == pytest.approx(game.grand_value(), abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_permutation_sampling_covers_the_exact_values(seed):
    hits, total = 0, 0
    for game in (random_weighted_voting(10, seed=seed, quota_fraction=0.6), random_mc_net(10, seed=seed)):
        exact = exact_shapley(game)
        est = sampled_shapley(game, permutations=3000, seed=seed, confidence=0.99)
        assert np.all(est.half_width > 0)
        assert np.all(np.abs(est.values - exact) <= 2 * est.half_width)  # far outside never
        hits += int(np.sum(np.abs(est.values - exact) <= est.half_width))
        total += game.num_players
        # half-widths shrink like 1/sqrt(permutations)
        small = sampled_shapley(game, permutations=750, seed=seed + 10, confidence=0.99)
        assert np.median(small.half_width / est.half_width) == pytest.approx(2.0, rel=0.2)
    assert hits >= 0.9 * total


def test_auto_method():
    assert shapley_values(random_induced_subgraph(30)).method == "closed_form"
    assert shapley_values(random_weighted_voting(8)).method == "exact"
    assert shapley_values(random_weighted_voting(30), permutations=50).method == "sampled"
