"""The least core by linear programming (HiGHS through scipy).

    minimise eps  over (x, eps)
    subject to  x(S) + eps >= v(S)   for every proper non-empty coalition S (or a subset of them)
                x(N) = v(N),   and x >= 0 when `nonnegative`

`solve_least_core_lp` solves it over the coalitions it is given (all 2^n - 2 for small n:
the exact least core); over a subset it is a relaxation, so its value is a LOWER bound on
the least-core value. `max_excess` measures a payoff against every coalition (exactly, by
enumeration in chunks or the game's own oracle), which gives the matching UPPER bound.
`cutting_planes` alternates the two until they meet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, hstack, vstack

from gamescale.envs.coalitions.game import CoalitionGame, all_coalitions, check_payoff

ENUMERATION_CHUNK = 1 << 16


@dataclass(frozen=True)
class LPResult:
    """payoff `[n]`, epsilon (the LP value), duals `[K]` (>= 0, one per coalition row)."""

    payoff: np.ndarray
    epsilon: float
    duals: np.ndarray


def proper_coalitions(num_players: int) -> np.ndarray:
    """All 2^n - 2 proper non-empty coalitions `[2^n - 2, n]` (bitmasks 1 .. 2^n - 2)."""
    return all_coalitions(num_players, 1, (1 << num_players) - 1)


def solve_least_core_lp(
    coalitions: np.ndarray, values: np.ndarray, grand_value: float, nonnegative: bool = False
) -> LPResult:
    """The least-core LP over the given coalition rows `[K, n]` with values `[K]`.

    HiGHS solves the dual, which has n + 1 rows instead of K (much faster for K >> n):

        maximise v^T y + v(N) z   over y >= 0 `[K]`, z free
        subject to  sum y = 1,   A^T y + z 1 = 0   (<= 0 when x >= 0)

    and the payoff x is read off the multipliers of the n player rows.
    """
    k, n = coalitions.shape
    if nonnegative and grand_value < 0:
        raise ValueError(f"nonnegative payoffs need v(N) >= 0, got {grand_value:g}")
    if k == 0:
        raise ValueError("the least-core LP needs at least one coalition")
    vals = np.asarray(values, np.float64)
    players = hstack([csr_matrix(coalitions.T.astype(np.float64)), csr_matrix(np.ones((n, 1)))], format="csr")
    simplex = csr_matrix(np.concatenate([np.ones(k), [0.0]])[None, :])
    cost = -np.concatenate([vals, [grand_value]])
    bounds = [(0.0, None)] * k + [(None, None)]
    if nonnegative:
        res = linprog(cost, A_ub=players, b_ub=np.zeros(n), A_eq=simplex, b_eq=[1.0], bounds=bounds, method="highs")
    else:
        a_eq = vstack([players, simplex], format="csr")
        res = linprog(cost, A_eq=a_eq, b_eq=np.concatenate([np.zeros(n), [1.0]]), bounds=bounds, method="highs")
    if res.status == 2:
        raise ValueError(
            "the least-core LP is unbounded: the coalitions given do not bound epsilon (include every singleton)"
        )
    if res.status != 0:
        raise ValueError(f"the least-core LP failed: {res.message}")
    x = -(res.ineqlin.marginals if nonnegative else res.eqlin.marginals[:n])
    x = np.asarray(x, np.float64)
    if nonnegative:
        x = np.maximum(x, 0.0)
    x = x + (grand_value - x.sum()) / n  # exact efficiency (HiGHS duals are accurate to ~1e-12)
    return LPResult(x, float(-res.fun), np.asarray(res.x[:k], np.float64))


def exact_least_core(game: CoalitionGame, nonnegative: bool = False) -> LPResult:
    """The least core over all 2^n - 2 proper coalitions (small n only)."""
    if game.num_players > 22:
        raise ValueError(
            f"the full least-core LP over 2^{game.num_players} coalitions is too large; use cutting planes"
        )
    c = proper_coalitions(game.num_players)
    return solve_least_core_lp(c, game.values(c), game.grand_value(), nonnegative)


def max_excess_enumerated(game: CoalitionGame, payoff: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The k proper non-empty coalitions of largest excess v(S) - x(S), by enumeration in chunks.

    Returns (coalitions `[k, n]` bool, excess `[k]`), largest first.
    """
    n = game.num_players
    x = check_payoff(payoff, n)
    last = (1 << n) - 1
    best_rows, best_ex = np.zeros((0, n), bool), np.zeros(0)
    for start in range(1, last, ENUMERATION_CHUNK):
        c = all_coalitions(n, start, min(start + ENUMERATION_CHUNK, last))
        ex = game.values(c) - c @ x
        top = np.argsort(-ex, kind="stable")[:k]
        rows = np.concatenate([best_rows, c[top]])
        exs = np.concatenate([best_ex, ex[top]])
        keep = np.argsort(-exs, kind="stable")[:k]
        best_rows, best_ex = rows[keep], exs[keep]
    return best_rows, best_ex


def has_exact_separation(game: CoalitionGame, enumeration_limit: int) -> bool:
    return game.num_players <= enumeration_limit or game.has_exact_oracle


def most_violated_exact(
    game: CoalitionGame, payoff: np.ndarray, k: int, enumeration_limit: int = 16, rng: np.random.Generator | None = None
):
    """Exact top-k excess coalitions: the game's own oracle when it is cheap (subset-sum; with
    `rng` it breaks ties at random, so equally violated coalitions vary), else enumeration up to
    `enumeration_limit` players, else its mixed-integer program. The first row is always a
    coalition of largest excess."""
    if game.has_exact_oracle and game.cheap_oracle:
        return game.most_violated(payoff, k) if rng is None else game.most_violated(payoff, k, rng=rng)
    if game.num_players <= enumeration_limit:
        return max_excess_enumerated(game, payoff, k)
    if game.has_exact_oracle:
        return game.most_violated(payoff, k)
    raise ValueError(f"{game.name} with {game.num_players} players has no exact separation oracle")


def initial_coalitions(num_players: int) -> np.ndarray:
    """Singletons and their complements `[2n, n]`: enough to keep every restricted LP bounded."""
    eye = np.eye(num_players, dtype=bool)
    return np.concatenate([eye, ~eye])


class IncrementalLeastCoreLP:
    """The dual of the restricted least-core LP (as in `solve_least_core_lp`) kept in one HiGHS
    model: each coalition is a column, so adding coalitions keeps the last basis primal
    feasible and the next solve warm-starts from it (a few pivots, not a fresh solve).

    rows 0..n-1: A^T y + z 1 = 0 (<= 0 when x >= 0), row n: sum y = 1; the payoff x is
    the duals of the player rows (HiGHS signs them for the maximisation).
    """

    def __init__(self, num_players: int, grand_value: float, nonnegative: bool = False):
        import highspy

        if nonnegative and grand_value < 0:
            raise ValueError(f"nonnegative payoffs need v(N) >= 0, got {grand_value:g}")
        self.n, self.total, self.nonnegative = num_players, float(grand_value), nonnegative
        self._ok = highspy.HighsModelStatus.kOptimal
        # this model is the dual: an infeasible dual is an unbounded least-core LP
        self._unbounded = (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        # new columns keep the basis primal feasible: primal simplex resumes from it, where the
        # default dual simplex first repairs dual infeasibility (measured 2x slower per round);
        # presolve would discard the warm basis
        h.setOptionValue("simplex_strategy", 4)
        h.setOptionValue("presolve", "off")
        n = num_players
        lower = np.full(n + 1, -np.inf if nonnegative else 0.0)
        lower[n] = 1.0
        upper = np.zeros(n + 1)
        upper[n] = 1.0
        h.addRows(n + 1, lower, upper, 0, np.zeros(1, np.int32), np.zeros(0, np.int32), np.zeros(0))
        h.addCols(
            1, np.array([grand_value]), np.array([-np.inf]), np.array([np.inf]), n,
            np.zeros(1, np.int32), np.arange(n, dtype=np.int32), np.ones(n),
        )  # fmt: skip
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        self._highs = h
        self.num_coalitions = 0

    def add(self, coalitions: np.ndarray, values: np.ndarray) -> None:
        """Add coalition columns `[k, n]` bool with values `[k]`."""
        c = np.asarray(coalitions, bool)
        if len(c) == 0:
            return
        members = c.sum(axis=1) + 1
        starts = np.concatenate([[0], np.cumsum(members)[:-1]]).astype(np.int32)
        rows_of = [np.append(np.flatnonzero(row), self.n) for row in c]
        index = np.concatenate(rows_of).astype(np.int32)
        k = len(c)
        self._highs.addCols(
            k, np.asarray(values, np.float64), np.zeros(k), np.full(k, np.inf), len(index),
            starts, index, np.ones(len(index)),
        )  # fmt: skip
        self.num_coalitions += k

    def delete(self, columns: np.ndarray) -> None:
        """Remove coalition columns (indices in the order they were added, as in `duals`); the
        basis survives where they are nonbasic, so the next solve still warm-starts."""
        idx = np.asarray(columns, np.int32)
        if len(idx) == 0:
            return
        self._highs.deleteCols(len(idx), np.sort(idx) + 1)  # column 0 is z
        self.num_coalitions -= len(idx)

    def solve(self) -> LPResult:
        h = self._highs
        h.run()
        status = h.getModelStatus()
        if status in self._unbounded:
            raise ValueError(
                "the least-core LP is unbounded: the coalitions given do not bound epsilon (include every singleton)"
            )
        if status != self._ok:
            raise ValueError(f"the least-core LP failed: {h.modelStatusToString(status)}")
        sol = h.getSolution()
        x = np.asarray(sol.row_dual[: self.n], np.float64)
        if self.nonnegative:
            x = np.maximum(x, 0.0)
        x = x + (self.total - x.sum()) / self.n
        duals = np.asarray(sol.col_value[1:], np.float64)
        return LPResult(x, float(h.getInfo().objective_function_value), duals)
