"""Elo by maximum likelihood (gamescale/algorithms/board/elo.py): closed forms for two
players, recovery of known ratings from simulated tournaments (the 95% intervals cover
the truth about 95% of the time), the anchor, and the errors for undetermined ratings."""

from __future__ import annotations

import numpy as np
import pytest

from gamescale.algorithms.board.elo import ELO_PER_NAT, expected_score, fit_elo


def _simulate(ratings: np.ndarray, games_per_pair: int, rng: np.random.Generator):
    """A round robin with draws: P(draw) = 0.4 min(E, 1 - E), wins so that the expected
    score is the Elo model's E (draws as half points)."""
    a, b = np.triu_indices(len(ratings), 1)
    first, second = np.repeat(a, games_per_pair), np.repeat(b, games_per_pair)
    e = expected_score(ratings[first], ratings[second])
    draw = 0.4 * np.minimum(e, 1 - e)
    u = rng.random(len(e))
    score = np.where(u < e - draw / 2, 1.0, np.where(u < e + draw / 2, 0.5, 0.0))
    return first, second, score


def test_two_players_match_the_closed_form():
    # 7 wins in 10: the MLE difference is 400 log10(7/3), its standard error
    # (400 / ln 10) / sqrt(n p (1 - p)).
    first, second = np.zeros(10, int), np.ones(10, int)
    fit = fit_elo(["a", "b"], first, second, np.array([1.0] * 7 + [0.0] * 3), "b", 1000.0, virtual_draws=0)
    assert fit.rating[0] == pytest.approx(1000 + 400 * np.log10(7 / 3), abs=1e-6)
    assert fit.sd[0] == pytest.approx(ELO_PER_NAT / np.sqrt(10 * 0.21), rel=1e-6)
    assert fit.rating[1] == 1000.0 and fit.sd[1] == 0.0
    assert fit.lower[0] == pytest.approx(fit.rating[0] - 1.96 * fit.sd[0])
    # 10 wins in 10 plus one virtual draw: 10.5 points of 11.
    clean = fit_elo(["a", "b"], first, second, np.ones(10), "b", 0.0, virtual_draws=1.0)
    assert clean.rating[0] == pytest.approx(400 * np.log10(10.5 / 0.5), abs=1e-6)
    assert list(clean.games) == [10, 10] and list(clean.score) == [10.0, 0.0]  # virtual games not counted


def test_recovers_known_ratings_within_their_intervals():
    truth = np.array([0.0, 200.0, -150.0, 400.0, 50.0])
    players = [f"p{i}" for i in range(5)]
    covered, estimates = [], []
    for seed in range(100):
        first, second, score = _simulate(truth, 100, np.random.default_rng(seed))
        fit = fit_elo(players, first, second, score, "p0", 0.0, virtual_draws=0)
        covered.append(np.abs(fit.rating - truth)[1:] <= 1.96 * fit.sd[1:])
        estimates.append(fit.rating)
    coverage = np.mean(covered, axis=0)
    assert np.all(coverage >= 0.88), coverage  # nominal 95% (draws make the intervals a bit wide)
    # Unbiased to within the spread of the mean over 100 tournaments.
    mean, spread = np.mean(estimates, axis=0), np.std(estimates, axis=0) / np.sqrt(100)
    assert np.all(np.abs(mean - truth)[1:] < 4 * spread[1:] + 1.0), (mean, truth)
    # The standard errors match the scatter of the estimates across tournaments.
    assert np.allclose(np.std(estimates, axis=0)[1:], fit.sd[1:], rtol=0.3)


def test_the_anchor_only_shifts_ratings():
    first, second, score = _simulate(np.array([0.0, 100.0, 300.0]), 40, np.random.default_rng(1))
    a = fit_elo(["x", "y", "z"], first, second, score, "x", 0.0)
    b = fit_elo(["x", "y", "z"], first, second, score, "y", 1500.0)
    assert b.rating - a.rating == pytest.approx(np.full(3, 1500.0 - a.rating[1]))
    assert b.sd[1] == 0.0 and a.sd[0] == 0.0


def test_undetermined_ratings_are_one_line_errors():
    first, second = np.zeros(6, int), np.ones(6, int)
    with pytest.raises(ValueError, match="unbounded"):
        fit_elo(["a", "b"], first, second, np.ones(6), "a", virtual_draws=0)
    with pytest.raises(ValueError, match="no games connect \\['c'\\]"):
        fit_elo(["a", "b", "c"], first, second, np.ones(6), "a")
    with pytest.raises(ValueError, match="not among the players"):
        fit_elo(["a", "b"], first, second, np.ones(6), "zz")
