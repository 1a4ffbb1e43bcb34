"""Elo ratings by maximum likelihood from game results, with confidence intervals.

Model (Bradley-Terry on the Elo scale, draws counted as half points): player `i` scores
against `j` with expectation `E_ij = 1 / (1 + 10 ** ((r_j - r_i) / 400))`, and every game
contributes `s log E_ij + (1 - s) log(1 - E_ij)` with `s` in {0, 1/2, 1}. Only rating
differences are identified, so one reference player's rating is fixed (`anchor`); the
others are fitted by Newton's method on the concave log likelihood, and the covariance
of the free ratings is the inverse of the observed information (the negated Hessian) at
the optimum, which gives the intervals `r +- z * sd`.

A player with a perfect (or zero) score against everyone it met has no finite maximum.
`virtual_draws` adds that many drawn games to every pair that actually met (BayesElo's
prior, in the same spirit), which keeps every rating finite and pulls ratings of lopsided
pairs a little together; 0 gives the plain MLE (an error when it does not exist).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ELO_PER_NAT = 400.0 / np.log(10.0)  # d(rating) / d(logit of the expected score)


@dataclass(frozen=True)
class EloFit:
    """Ratings of `P` players.

    players: list[str] [P]   names, in the order of every array below
    rating:  float64 [P]     Elo (the anchor at its fixed value)
    sd:      float64 [P]     standard error (0 for the anchor)
    lower, upper: float64 [P] the confidence interval `rating -+ z * sd`
    games:   int64 [P]       games played (virtual draws not counted)
    score:   float64 [P]     points scored (win 1, draw 1/2)
    iterations: int          Newton steps taken
    """

    players: list[str]
    rating: np.ndarray
    sd: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    games: np.ndarray
    score: np.ndarray
    iterations: int

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.players, self.rating.tolist(), strict=True))


def pair_counts(first: np.ndarray, second: np.ndarray, score_first: np.ndarray, num_players: int):
    """(games [P, P], points [P, P]): games between i and j (symmetric), and i's points
    against j, from per-game player indices and the first player's score."""
    first, second = np.asarray(first, np.int64), np.asarray(second, np.int64)
    score_first = np.asarray(score_first, np.float64)
    if np.any(first == second):
        raise ValueError("a player cannot play itself")
    games = np.zeros((num_players, num_players))
    points = np.zeros((num_players, num_players))
    np.add.at(games, (first, second), 1.0)
    np.add.at(games, (second, first), 1.0)
    np.add.at(points, (first, second), score_first)
    np.add.at(points, (second, first), 1.0 - score_first)
    return games, points


def _connected_to(games: np.ndarray, start: int) -> np.ndarray:
    reached = np.zeros(len(games), bool)
    reached[start] = True
    while True:
        grown = reached | (games[reached] > 0).any(axis=0)
        if np.array_equal(grown, reached):
            return reached
        reached = grown


def fit_elo(
    players: list[str],
    first: np.ndarray,
    second: np.ndarray,
    score_first: np.ndarray,
    anchor: str,
    anchor_rating: float = 0.0,
    virtual_draws: float = 1.0,
    z: float = 1.96,
    tol: float = 1e-9,
    max_iterations: int = 100,
) -> EloFit:
    """Maximum-likelihood Elo of `players` from games `first[g]` vs `second[g]` (indices into
    `players`) in which `first` scored `score_first[g]`; `anchor` keeps `anchor_rating`."""
    if anchor not in players:
        raise ValueError(f"reference bot {anchor!r} is not among the players {players}")
    if len(set(players)) != len(players):
        raise ValueError(f"player names repeat: {players}")
    n = len(players)
    games, points = pair_counts(first, second, score_first, n)
    ref = players.index(anchor)
    reached = _connected_to(games, ref)
    if not reached.all():
        lost = [p for p, ok in zip(players, reached, strict=True) if not ok]
        raise ValueError(f"no games connect {lost} to the reference bot {anchor!r}: their ratings are undetermined")
    met = games > 0
    n_eff = games + virtual_draws * met
    w_eff = points + 0.5 * virtual_draws * met
    free = np.arange(n) != ref
    x = np.zeros(n)  # ratings in nats (logit units), anchor at 0

    def loglik(v: np.ndarray) -> float:
        d = v[:, None] - v[None, :]
        # w log sigmoid(d) summed over ordered pairs; logaddexp keeps it finite for large |d|
        return float(-(w_eff * np.logaddexp(0.0, -d)).sum())

    steps = 0
    for steps in range(1, max_iterations + 1):  # noqa: B007 (the count is reported)
        p = 1.0 / (1.0 + np.exp(-(x[:, None] - x[None, :])))
        grad = (w_eff - n_eff * p).sum(axis=1)
        info = n_eff * p * (1.0 - p)  # [P, P] off-diagonal information
        hess = info - np.diag(info.sum(axis=1))  # negative semi-definite
        g, h = grad[free], hess[np.ix_(free, free)]
        if not np.all(np.isfinite(g)) or np.linalg.matrix_rank(h) < free.sum():
            raise ValueError("Elo fit failed: a player's rating is unbounded (set virtual_draws > 0)")
        delta = np.linalg.solve(h, -g)
        base, t = loglik(x), 1.0
        while True:  # backtracking: Newton on a concave function, halved until it ascends
            trial = x.copy()
            trial[free] += t * delta
            if loglik(trial) >= base - 1e-12 or t < 1e-6:
                break
            t *= 0.5
        x = trial
        if np.max(np.abs(t * delta)) < tol:
            break
    else:  # no convergence: the likelihood keeps rising as some rating runs off to infinity
        raise ValueError("Elo fit failed: a player's rating is unbounded (set virtual_draws > 0)")
    p = 1.0 / (1.0 + np.exp(-(x[:, None] - x[None, :])))
    info = n_eff * p * (1.0 - p)
    neg_hess = np.diag(info.sum(axis=1)) - info
    cov = np.zeros((n, n))
    cov[np.ix_(free, free)] = np.linalg.inv(neg_hess[np.ix_(free, free)])
    rating = anchor_rating + ELO_PER_NAT * x
    sd = ELO_PER_NAT * np.sqrt(np.maximum(np.diag(cov), 0.0))
    return EloFit(
        players=list(players),
        rating=rating,
        sd=sd,
        lower=rating - z * sd,
        upper=rating + z * sd,
        games=games.sum(axis=1).astype(np.int64),
        score=points.sum(axis=1),
        iterations=steps,
    )


def expected_score(rating_a: np.ndarray | float, rating_b: np.ndarray | float) -> np.ndarray:
    """Expected score of a against b under the Elo model."""
    return 1.0 / (1.0 + 10.0 ** ((np.asarray(rating_b) - np.asarray(rating_a)) / 400.0))
