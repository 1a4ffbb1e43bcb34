"""Exact least core by cutting planes at large n: a warm-started restricted LP (HiGHS) and a
separation oracle, with a cheap search in front of expensive oracles.

Each round solves the restricted LP over the coalitions found so far (its value is a LOWER
bound on the least-core value epsilon) and looks for coalitions whose excess at its payoff
exceeds that value. Where the family's exact oracle is a mixed-integer program (induced
subgraph games, MC-nets), a local search from sampled and recently cut coalitions is asked
first, and the oracle only when the search finds nothing; every oracle call proves an UPPER
bound on epsilon (the largest excess of that payoff, or the MILP's dual bound when its time
limit hits). The run ends when the bounds meet (exact) or its time runs out (a proven
bracket [lower, upper]).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from gamescale.algorithms.coalitions.first_order import project_efficient
from gamescale.algorithms.coalitions.lp import (
    IncrementalLeastCoreLP,
    has_exact_separation,
    initial_coalitions,
    most_violated_exact,
)
from gamescale.algorithms.coalitions.sampling import sample_coalitions
from gamescale.algorithms.coalitions.tabu import TabuSettings, perturb, tabu_search
from gamescale.envs.coalitions.game import CoalitionGame

TIGHT_STARTS = 64  # the LP's tight coalitions (largest multipliers) the search restarts from
AVERAGED = 20  # LP payoffs averaged into a candidate for the final bound
MILP_SOLUTIONS = 4  # improving coalitions after which a separation MILP returns its cuts
MILP_CALL_SHARE = 0.25  # of the time limit, at most, for one MILP call inside the loop
SEARCH_ITERATIONS = 50  # tabu moves per chain in a round's search for cuts
CHAINS_FROM_RECENT = 64  # the last round's cuts a search restarts from, at most
CERTIFY_CHAINS = 64  # the long search standing in for a proof: chains x moves
CERTIFY_ITERATIONS = 3000
CERTIFY_STREAM = 0x5EA7C4  # its random stream, apart from every measured run's
CERTIFY_ROUNDS = 5  # long searches after the time limit that may still find cuts
NEAR = 0.2  # also add unseen coalitions within this fraction of |LP value| below it (MILP families)
MILP_TOLERANCE = 1e-6  # relative: a MILP proof is "no excess above epsilon (1 + 1e-6)"


@dataclass(frozen=True)
class CuttingPlanes:
    """payoff `[n]` with the smallest proven largest excess (`upper`); `lower` the last
    restricted LP value; both bound the least-core value: lower <= epsilon <= upper."""

    payoff: np.ndarray
    lower: float
    upper: float
    rounds: int
    oracle_calls: int
    coalitions: int
    seconds: float
    exact: bool
    lp_payoff: np.ndarray | None = None  # the last restricted LP's payoff (its value is `lower`)
    searched: bool = False  # not exact, and the long tabu search found no excess above `lower` at lp_payoff

    @property
    def epsilon(self) -> float:
        return self.upper if self.exact else math.nan

    @property
    def kind(self) -> str:
        """How the best known value is known: exact (the bounds met), lp_and_heuristic_search
        (the LP value `lower`, proven below the least-core value, and a long tabu search found
        no coalition above it at the LP payoff: a heuristic upper bound equal to it, as in
        max-cut / QUBO benchmarks), bracket (only the proven [lower, upper])."""
        return "exact" if self.exact else "lp_and_heuristic_search" if self.searched else "bracket"

    @property
    def best_known(self) -> float:
        return self.upper if self.exact else self.lower if self.searched else self.upper


def search_cuts(
    game: CoalitionGame,
    payoff: np.ndarray,
    recent: np.ndarray,
    rng: np.random.Generator,
    samples: int = 256,
    climbers: int = 16,
    iterations: int = SEARCH_ITERATIONS,
    tight: np.ndarray | None = None,
    above: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Large-excess coalitions by tabu search (`tabu.tabu_search`, `iterations` moves per chain)
    from the last cuts `recent` `[m, n]`, the LP's `tight` coalitions with 1-3 players flipped,
    and the best `climbers` of `samples` random coalitions; returns distinct (coalitions `[k, n]`,
    excess `[k]`), best first: every chain's best and every coalition met above `above`."""
    drawn = sample_coalitions(rng, game.num_players, samples)
    drawn_values = game.values(drawn)
    top = np.argsort(-(drawn_values - drawn @ payoff), kind="stable")[:climbers]
    kicked = np.zeros((0, game.num_players), bool) if tight is None else perturb(rng, tight)
    start = np.concatenate([recent[-CHAINS_FROM_RECENT:], kicked, drawn[top]])
    found = tabu_search(game, payoff, start, rng, TabuSettings(iterations=iterations), above=above, keep=None)
    return found.coalitions, found.excess


def certify_by_search(
    game: CoalitionGame,
    payoff: np.ndarray,
    seed: int,
    starts: np.ndarray | None = None,
    chains: int = CERTIFY_CHAINS,
    iterations: int = CERTIFY_ITERATIONS,
    above: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The long tabu search that stands in for a proof where no MILP finishes (n >= 100): `chains`
    chains for `iterations` moves each, restarting from elite coalitions, from the best random
    coalitions and `starts`, on its own random stream (`seed`, never the measured run's). Returns
    the distinct coalitions of largest excess found, best first (those above `above`, else 64)."""
    rng = np.random.default_rng([seed, CERTIFY_STREAM])
    drawn = sample_coalitions(rng, game.num_players, 16 * chains)
    top = np.argsort(-(game.values(drawn) - drawn @ payoff), kind="stable")[:chains]
    start = drawn[top] if starts is None or len(starts) == 0 else np.concatenate([perturb(rng, starts), drawn[top]])
    settings = TabuSettings(iterations=iterations, patience=max(20, game.num_players // 2))
    found = tabu_search(game, payoff, start[: 2 * chains], rng, settings, chains=chains, above=above, keep=None)
    if above is not None and (found.excess > above).any():
        keep = found.excess > above
        return found.coalitions[keep], found.excess[keep]
    return found.coalitions[:64], found.excess[:64]


def _separate_with_centre(game, centre, res, cuts, enumeration_limit, rng):
    """The exact oracle at the LP payoff (its most violated coalitions, one per weight for voting
    games) and, with a cheap oracle, also at the best payoff proven so far (the centre), where
    ties are broken at random: the centre's many equally violated coalitions are the balanced
    family the LP lacks (in-out separation). Returns (coalitions, oracle calls, the smallest
    proven largest excess met, the payoff that has it)."""
    found, ex = most_violated_exact(game, res.payoff, cuts, enumeration_limit)
    best = (max(float(ex[0]), res.epsilon), res.payoff)
    if centre is None or not game.cheap_oracle:
        return found, 1, *best
    at_centre, ex_centre = most_violated_exact(game, centre, cuts, enumeration_limit, rng)
    found = np.concatenate([found, at_centre])
    _, first = np.unique(np.packbits(found, axis=1), axis=0, return_index=True)
    return found[np.sort(first)], 2, *min(best, (float(ex_centre[0]), centre), key=lambda pair: pair[0])


def _likeliest(game, candidates, pool, rng) -> np.ndarray:
    """The efficient candidate payoff whose largest excess looks smallest to the local search
    (from the LP's coalitions and random ones): the one worth an expensive bound. LP payoffs are
    vertices, often with a large excess somewhere; averages of them are usually better."""
    total = game.grand_value()
    best, best_seen = candidates[0], np.inf
    for x in candidates:
        x = x + (total - x.sum()) / len(x)
        _, ex = search_cuts(game, x, pool[-256:], rng)
        top = float(np.max(game.values(pool) - pool @ x, initial=np.max(ex, initial=-np.inf)))
        if top < best_seen:
            best, best_seen = x, top
    return best


def solve_cutting_planes(
    game: CoalitionGame,
    nonnegative: bool = False,
    cuts: int = 50,
    tolerance: float = 1e-9,
    enumeration_limit: int = 16,
    time_limit: float | None = None,
    seed: int = 0,
    bound_time_limit: float = 0.0,
    certify_rounds: int = 0,
    certify_iterations: int = CERTIFY_ITERATIONS,
) -> CuttingPlanes:
    """Cutting planes until the bounds meet (or `time_limit` seconds pass: a bracket). When time
    runs out before the bounds meet, a MILP oracle family gets up to `certify_rounds` long tabu
    searches at the LP payoff (`certify_by_search`; cuts they find are added) and may spend
    `bound_time_limit` more seconds bounding the largest excess of the likeliest payoff (the
    odd-cycle LP, then the MILP's dual bound)."""
    if not has_exact_separation(game, enumeration_limit):
        raise ValueError(f"{game.name} with {game.num_players} players has no exact separation oracle")
    start = time.perf_counter()
    n, total = game.num_players, game.grand_value()
    milp = hasattr(game, "separate") and n > enumeration_limit
    lp = IncrementalLeastCoreLP(n, total, nonnegative)
    first = initial_coalitions(n)
    lp.add(first, game.values(first))
    rng = np.random.default_rng(seed)
    recent = pool = first  # pool: every coalition column of the LP, in order
    searched = False  # the long search found nothing above the LP value at the LP payoff
    in_lp = {row.tobytes() for row in np.packbits(first, axis=1)}  # packed rows of the LP's columns
    history: list[np.ndarray] = []  # the last LP payoffs (their average is a bound candidate)
    upper, best_x, calls, rounds, lower = math.inf, None, 0, 0, -math.inf
    if not milp:  # the stabilization centre: the best of the family's cheap guesses
        for guess in game.start_payoffs():
            guess = project_efficient(guess, total, nonnegative)
            found, ex = most_violated_exact(game, guess, cuts, enumeration_limit)
            calls += 1
            lp.add(found, game.values(found))
            pool = np.concatenate([pool, found])
            if float(ex[0]) < upper:
                upper, best_x = float(ex[0]), guess
    while True:
        rounds += 1
        res = lp.solve()
        lower = res.epsilon
        history = [*history[1 - AVERAGED :], res.payoff]
        scale = max(1.0, abs(res.epsilon))
        threshold = res.epsilon + tolerance * scale  # a cut must beat the LP value by this
        # a MILP proof is "nothing above proof"; its dual bound may carry round-off of that level
        proof = res.epsilon + MILP_TOLERANCE * scale + 1e-9 * scale
        proven = proof + 1e-12 * scale  # the bound HiGHS returns at "proof" may differ from it in the last bit
        left = None if time_limit is None else time_limit - (time.perf_counter() - start)
        rows = np.zeros((0, n), bool)
        if milp:  # the search is cheap; the MILP only proves what it cannot find
            support = np.flatnonzero(res.duals > 1e-12)  # columns in the order they were added
            tight = pool[support[np.argsort(-res.duals[support], kind="stable")][:TIGHT_STARTS]]
            found, ex = search_cuts(game, res.payoff, recent, rng, tight=tight, above=threshold - NEAR * scale)
            rows = found[ex > threshold][np.argsort(-ex[ex > threshold], kind="stable")][:cuts]
            if NEAR > 0 and len(rows):
                # with violated cuts, also the nearly tight coalitions not in the LP yet: they
                # hold the next LP payoff back from jumping where they would be violated
                keys = [row.tobytes() for row in np.packbits(found, axis=1)]
                fresh = np.array([key not in in_lp for key in keys], bool) & (ex > threshold - NEAR * scale)
                near = found[fresh & (ex <= threshold)]
                rows = np.concatenate([rows, near[:cuts]])
        if len(rows) == 0:
            if left is not None and left <= 0:
                break
            if milp and certify_rounds > 0:
                # the round's search found nothing: the long search looks before a MILP gets its
                # share of the time (cheaper where it finds cuts; where it finds none, a MILP that
                # cannot prove either ends the run with the LP value as best known)
                found, ex = certify_by_search(
                    game, res.payoff, seed + rounds, pool[-TIGHT_STARTS:], iterations=certify_iterations, above=threshold
                )
                rows = found[ex > threshold][:cuts]
                searched = len(rows) == 0
                if not searched:
                    lp.add(rows, game.values(rows))
                    pool = np.concatenate([pool, rows])
                    in_lp.update(row.tobytes() for row in np.packbits(rows, axis=1))
                    recent = rows
                    if time_limit is not None and time.perf_counter() - start > time_limit:
                        break
                    continue
            calls += 1
            if milp:  # look only for violated coalitions, stop after a few: proof or cuts, fast
                # a share of the budget per call: where the MILP can neither find nor prove (large
                # n), the randomised search gets the next turn instead of one call taking all
                cap = left if left is None else min(left, max(MILP_CALL_SHARE * time_limit, 1.0))
                sep = game.separate(res.payoff, cuts, cap, at_least=proof, max_solutions=MILP_SOLUTIONS)
                found, ex, bound = sep.coalitions, sep.excess, sep.upper_bound
                if len(found) and not sep.optimal:
                    bound = math.inf  # violated rows, but no bound on the largest excess
                if len(found) == 0 and not sep.optimal:  # unresolved in its share: search again
                    bound = max(bound, res.epsilon)
                    if bound < upper:
                        upper, best_x = bound, res.payoff
                    if searched:  # nothing found by either: the LP value is the best known
                        break
                    continue
                searched = False
            else:
                found, more, bound, point = _separate_with_centre(game, best_x, res, cuts, enumeration_limit, rng)
                calls += more - 1
                if bound < upper:
                    upper, best_x = bound, point
                values = game.values(found)
                rows = found[values - found @ res.payoff > threshold]  # cuts violated at the LP payoff
                if upper <= threshold or len(rows) == 0:
                    break
                lp.add(rows, values[values - found @ res.payoff > threshold])
                pool = np.concatenate([pool, rows])
                if time_limit is not None and time.perf_counter() - start > time_limit:
                    break
                continue
            bound = max(bound, res.epsilon)  # what this payoff provably achieves
            if bound < upper:
                upper, best_x = bound, res.payoff
            rows = found[ex > threshold]
            if upper <= (proven if milp else threshold) or len(rows) == 0:
                break
        lp.add(rows, game.values(rows))
        pool = np.concatenate([pool, rows])
        in_lp.update(row.tobytes() for row in np.packbits(rows, axis=1))
        recent = rows
        searched = False
        if time_limit is not None and time.perf_counter() - start > time_limit:
            break
    if milp and upper > proven and certify_rounds > 0 and not searched:
        # not exact: the long search at the final LP payoff stands in for the proof the MILP could
        # not give; what it finds is cut and the LP solved again, until it finds nothing (then
        # the LP value, a proven lower bound, is also the heuristic's upper bound) or rounds end
        res = lp.solve()  # the cuts of the last round are in
        lower = res.epsilon
        for attempt in range(certify_rounds):
            threshold = res.epsilon + tolerance * max(1.0, abs(res.epsilon))
            found, ex = certify_by_search(
                game, res.payoff, seed + attempt, pool[-TIGHT_STARTS:], iterations=certify_iterations, above=threshold
            )
            rows = found[ex > threshold][:cuts]
            if len(rows) == 0:
                searched = True
                break
            lp.add(rows, game.values(rows))
            pool = np.concatenate([pool, rows])
            res = lp.solve()
            lower = res.epsilon
            history = [*history[1 - AVERAGED :], res.payoff]
    if milp and upper > proven and bound_time_limit > 0:  # not exact: bound the likeliest payoff
        calls += 1
        candidate = _likeliest(game, [res.payoff, np.mean(history, axis=0), *game.start_payoffs()], pool, rng)
        sep = game.separate(candidate, 1, bound_time_limit)
        if max(sep.upper_bound, res.epsilon) < upper:
            upper, best_x = max(sep.upper_bound, res.epsilon), candidate
    if best_x is None:  # out of time before any proof: the last payoff, unbounded above
        best_x = res.payoff
    exact = upper <= (proven if milp else threshold)
    return CuttingPlanes(
        best_x,
        lower,
        upper,
        rounds,
        calls,
        lp.num_coalitions,
        time.perf_counter() - start,
        bool(exact),
        lp_payoff=res.payoff,
        searched=bool(searched and not exact),
    )
