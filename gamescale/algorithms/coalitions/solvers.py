"""The least-core algorithms in the step interface: exact LP / cutting planes, and iterative
coalition sampling (arXiv 2402.03928) with LP, saddle-point or penalty payoff updates.

Both keep a working set of coalitions (rows and values, so no coalition is evaluated
twice) and report, every iteration,

    epsilon            the solver's least-core value (restricted LP / working-set value)
    max_violation      max over ALL proper coalitions of max(0, v(S) - x(S) - epsilon) at the
                       current payoff x: exact by enumeration or the game's oracle when
                       possible, else on a large fresh sample climbed by local search
                       (then a lower bound; the summary says which)
    certified_epsilon  the largest excess of x, epsilon + max_violation (what x achieves)
    best_epsilon       the smallest certified_epsilon so far; its payoff (best_payoff) is the answer
    lp_epsilon         the exact least-core value, where it can be computed (a line on the plots)

State (numpy arrays and scalars): payoff `[n]` (current iterate), best_payoff `[n]`, epsilon, ws_packed `[K, ceil(n/8)]` uint8,
ws_values `[K]`, ws_log_mu `[K]` (saddle point: log-multipliers; penalty and lp: multipliers), history_* `[iterations]`,
shapley `[n]` and shapley_half_width `[n]`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import LearnerSpec, State, StepContext, Stop, make_shard_tasks
from gamescale.algorithms.coalitions import first_order
from gamescale.algorithms.coalitions.config import LeastCoreLPConfig, LeastCoreSamplingConfig
from gamescale.algorithms.coalitions.cutting import solve_cutting_planes
from gamescale.algorithms.coalitions.lp import (
    IncrementalLeastCoreLP,
    LPResult,
    exact_least_core,
    has_exact_separation,
    initial_coalitions,
    most_violated_exact,
    solve_least_core_lp,
)
from gamescale.algorithms.coalitions.sampling import evaluations_of, read_coalitions, sample_coalitions, sample_shard
from gamescale.algorithms.coalitions.shapley import shapley_values
from gamescale.algorithms.tables import annotate
from gamescale.envs.coalitions.game import CoalitionGame, check_payoff, pack, unpack

STARTS = 64  # tight coalitions the local search restarts from per iteration (all shards)
ORACLE_CUTS = 50  # coalitions a cheap exact oracle adds to the sampler's working set per iteration
SERIOUS = 0.1  # bundle: the centre moves when the excess falls by this share of the model's promise
PROX_GROWTH, PROX_SHRINK, PROX_RANGE = 1.5, 0.8, 1e4  # bundle: t after serious / null steps, and its range
MAX_EFFORT = 32  # bundle: the longest search, in multiples of `rounds`
BUNDLE_COLUMNS = 1000  # bundle: working-set coalitions the master sees (largest excess at the centre and q)
_SHAPLEY_STREAM = 1 << 40  # shard-seed "iteration" of the Shapley sampling, apart from the solver's


def cutting_planes(
    game: CoalitionGame,
    nonnegative: bool = False,
    cuts: int = 50,
    tolerance: float = 1e-9,
    enumeration_limit: int = 16,
) -> tuple[np.ndarray, float, int]:
    """Exact least core by cutting planes with an exact oracle (`cutting.solve_cutting_planes`,
    run until proven); returns (payoff, epsilon, rounds)."""
    found = solve_cutting_planes(game, nonnegative, cuts, tolerance, enumeration_limit)
    if not found.exact:
        raise RuntimeError(f"cutting planes stopped with the bracket [{found.lower:.9g}, {found.upper:.9g}]")
    return found.payoff, found.upper, found.rounds


def reference_value(game: CoalitionGame, nonnegative: bool, full_limit: int = 16, enumeration_limit: int = 16) -> float:
    """The exact least-core value where it is computable (full LP or exact cutting planes), else NaN."""
    if game.num_players <= full_limit:
        return exact_least_core(game, nonnegative).epsilon
    if game.has_exact_oracle and game.cheap_oracle:  # MILP oracles can take minutes: not by default
        return cutting_planes(game, nonnegative, enumeration_limit=enumeration_limit)[1]
    return math.nan


def unique_rows(packed: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct packed row."""
    view = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first = np.unique(view, return_index=True)
    return np.sort(first)


class _LeastCoreBase:
    """What both algorithms share: the working set, certification, Shapley, result tables."""

    config: Any

    def __init__(self, config: Any, game: CoalitionGame):
        if not isinstance(game, CoalitionGame):
            raise ValueError(f"{config.name} needs a cooperative game (weighted_voting, induced_subgraph, ...)")
        self.config, self.game = config, game
        self.n = game.num_players
        self.total = game.grand_value()
        if config.nonnegative and self.total < 0:
            raise ValueError(f"nonnegative payoffs need v(N) >= 0, got {self.total:g}")
        if config.stop_within is not None and config.target_epsilon is None and not self._has_reference():
            raise ValueError("stop_within needs target_epsilon (no exact reference for this game)")

    def _has_reference(self) -> bool:
        return True

    def learner_specs(self) -> dict[str, LearnerSpec]:
        return {}

    # -- working set ------------------------------------------------------------------------
    def _start_state(self, x: np.ndarray, reference: float) -> State:
        c = initial_coalitions(self.n)
        first = unique_rows(pack(c))
        c = c[first]
        return {
            "payoff": x,
            "epsilon": float(np.max(self.game.values(c) - c @ x)),
            "ws_packed": pack(c),
            "ws_values": self.game.values(c),
            "ws_log_mu": np.zeros(len(c)),
            "pinned": len(c),
            "evaluations": len(c),
            "lp_epsilon": reference,
            "certification": "none",
            "history_epsilon": np.zeros(0),
            "history_max_violation": np.zeros(0),
            "history_lp_epsilon": np.zeros(0),
            "best_epsilon": math.inf,
            "best_payoff": x,
            "shapley": np.full(self.n, np.nan),
            "shapley_half_width": np.full(self.n, np.nan),
            "shapley_method": "none",
        }

    def _merge(self, state: State, rows: np.ndarray, values: np.ndarray, cap: int) -> State:
        packed = np.concatenate([state["ws_packed"], pack(rows)])
        vals = np.concatenate([state["ws_values"], values])
        # saddle point: log-multipliers, newcomers start light; penalty and lp: multipliers, newcomers at 0
        update = getattr(self.config, "update", "lp")
        fresh = state["ws_log_mu"].max(initial=0.0) - 5.0 if update == "saddle_point" else 0.0
        log_mu = np.concatenate([state["ws_log_mu"], np.full(len(rows), fresh)])
        keep = unique_rows(packed)
        packed, vals, log_mu = packed[keep], vals[keep], log_mu[keep]
        pinned = int(state["pinned"])
        if len(packed) > cap:
            c = unpack(packed[pinned:], self.n)
            ex = vals[pinned:] - c @ state["payoff"]
            if update in ("lp", "bundle"):  # the last master's support (positive multipliers) is never dropped
                ex = np.where(log_mu[pinned:] > 0, np.inf, ex)
            top = pinned + np.sort(np.argsort(-ex, kind="stable")[: cap - pinned])
            idx = np.concatenate([np.arange(pinned), top])
            packed, vals, log_mu = packed[idx], vals[idx], log_mu[idx]
        return {**state, "ws_packed": packed, "ws_values": vals, "ws_log_mu": log_mu}

    def _sample(self, state: State, ctx: StepContext, samples: int | None = None, keep: int | None = None):
        c = self.config
        shared = {
            "payoff": state["query"] if getattr(c, "update", None) == "bundle" else state["payoff"],
            "samples": samples or c.samples,
            "climbers": c.climbers,
            "rounds": c.rounds * int(state.get("effort", 1)),
            "keep": keep or c.keep,
            # the search keeps what it meets above the working set's value (bundle: its model at the payoff)
            "above": float(state["model"] if getattr(c, "update", None) == "bundle" else state["epsilon"]),
            # the LP's tight coalitions (positive multipliers), perturbed, are searched from again:
            # the violated coalitions of the next payoff are mostly near them
            "starts": self._tight(state, STARTS),
        }
        batches = ctx.shards.submit(sample_shard, ctx.shard_tasks(), shared).result()
        rows, values = read_coalitions(batches, self.n)
        return rows, values, evaluations_of(batches)

    def _tight(self, state: State, most: int) -> np.ndarray | None:
        if getattr(self.config, "update", None) not in ("lp", "bundle") or self.n <= self.config.enumeration_limit:
            return None
        mu = state["ws_log_mu"]
        top = np.argsort(-mu, kind="stable")[:most]
        top = top[mu[top] > 0]
        return state["ws_packed"][top] if len(top) else None

    # -- measurement ------------------------------------------------------------------------
    def _exact_certification(self) -> bool:
        """Exact max_violation every iteration: by enumeration or a cheap oracle under `auto`, also by
        a MILP oracle under `exact` (otherwise a MILP only confirms a run that seems to meet its target)."""
        mode = getattr(self.config, "certify", "auto")
        exact_possible = has_exact_separation(self.game, self.config.enumeration_limit)
        if mode == "exact" and not exact_possible:
            raise ValueError(f"certify: exact is impossible for {self.game.name} with {self.n} players")
        if mode == "auto":
            return self.n <= self.config.enumeration_limit or (exact_possible and self.game.cheap_oracle)
        return exact_possible and mode != "sampled"

    def _max_excess(self, x: np.ndarray, seen: tuple[np.ndarray, np.ndarray] | None) -> float:
        if self._exact_certification():
            _, ex = most_violated_exact(self.game, x, 1, self.config.enumeration_limit)
            return float(ex[0])
        rows, values = seen
        return float(np.max(values - rows @ x))

    def _metrics(
        self, state: State, x: np.ndarray, eps: float, max_excess: float, exact: bool | None = None
    ) -> tuple[State, dict[str, float]]:
        exact = self._exact_certification() if exact is None else exact
        violation = max(0.0, max_excess - eps)
        ref = state["lp_epsilon"]
        certified = max(max_excess, eps)
        if certified < state["best_epsilon"]:
            state = {**state, "best_epsilon": certified, "best_payoff": x}
        state = {
            **state,
            "payoff": x,
            "epsilon": eps,
            "certified_epsilon": max(max_excess, eps),
            "certification": "exact" if exact else "sampled",
            "history_epsilon": np.append(state["history_epsilon"], eps),
            "history_max_violation": np.append(state["history_max_violation"], violation),
            "history_lp_epsilon": np.append(state["history_lp_epsilon"], ref),
        }
        metrics = {
            "epsilon": eps,
            "max_violation": violation,
            "certified_epsilon": certified,
            "best_epsilon": float(state["best_epsilon"]),
            "working_set": float(len(state["ws_values"])),
            "evaluations": float(state["evaluations"]),
        }
        if np.isfinite(ref):
            metrics["lp_epsilon"] = float(ref)
        return state, metrics

    def _shapley(self, state: State, ctx: StepContext) -> State:
        method = self.config.shapley
        if method == "none" or state["shapley_method"] != "none":
            return state
        tasks = make_shard_tasks(ctx.seed, _SHAPLEY_STREAM, ctx.num_shards)
        est = shapley_values(self.game, method, self.config.shapley_permutations, ctx.seed, 0.95, ctx.shards, tasks)
        return {**state, "shapley": est.values, "shapley_half_width": est.half_width, "shapley_method": est.method}

    def target(self, state: State) -> float | None:
        if self.config.target_epsilon is not None:
            return float(self.config.target_epsilon)
        ref = float(state.get("lp_epsilon", math.nan))
        return ref if np.isfinite(ref) else None

    def should_stop(self, state: State, metrics: dict[str, float]) -> Stop | None:
        target = self.target(state)
        if self.config.stop_within is not None and target is not None:
            bound = target + self.config.stop_within * max(abs(target), 1e-12)
            if metrics["best_epsilon"] <= bound:
                how = "exactly" if state["certification"] == "exact" else "on sampled coalitions"
                return Stop(
                    "target",
                    f"certified epsilon {metrics['best_epsilon']:.6g} ({how}) is within "
                    f"{self.config.stop_within:g} of the target {target:.6g}",
                )
        return None

    def summary(self, state: State) -> dict[str, Any]:
        out = {
            "num_players": self.n,
            "grand_value": self.total,
            "epsilon": float(state["epsilon"]),
            "certified_epsilon": float(state["best_epsilon"]),
            "certification": state["certification"],
            "payoff": [float(v) for v in state["best_payoff"]],
            "evaluations": int(state["evaluations"]),
            "game": self.game.describe(),
        }
        if np.isfinite(state["lp_epsilon"]):
            out["lp_epsilon"] = float(state["lp_epsilon"])
        if state["shapley_method"] != "none":
            out["shapley"] = [float(v) for v in state["shapley"]]
            out["shapley_method"] = state["shapley_method"]
        return out

    def tables(self, state: State) -> dict[str, pa.Table]:
        """allocations: player, least_core (payoff), shapley, shapley_half_width (95% interval),
        name (where the game names its players), annotated with the Shapley method;
        least_core_convergence: iteration, epsilon, max_violation, lp_epsilon (the exact value
        where known), annotated with the run's title. The report draws plots/allocations.png
        (up to 40 players) and plots/least_core_convergence.png from them."""
        allocations = {
            "player": np.arange(self.n),
            "least_core": state["best_payoff"],
            "shapley": state["shapley"],
            "shapley_half_width": state["shapley_half_width"],
        }
        names = getattr(self.game, "feature_names", None)
        if names is not None:
            allocations["name"] = [str(name) for name in names]
        eps = state["history_epsilon"]
        convergence = {
            "iteration": np.arange(len(eps)),
            "epsilon": eps,
            "max_violation": state["history_max_violation"],
            "lp_epsilon": state["history_lp_epsilon"],
        }
        return {
            "allocations": annotate(pa.table(allocations), shapley_method=str(state["shapley_method"])),
            "least_core_convergence": annotate(pa.table(convergence), title=self.config.name),
        }


class LeastCoreLP(_LeastCoreBase):
    """Exact least core: full LP (one step) or cutting planes (one oracle round per step)."""

    def __init__(self, config: LeastCoreLPConfig, game: CoalitionGame):
        super().__init__(config, game)
        method = config.method
        if method == "auto":
            method = "full" if self.n <= config.full_limit else "cutting_planes"
        if method == "full" and self.n > 22:
            raise ValueError(f"the full LP over 2^{self.n} coalitions cannot be built; use method: cutting_planes")
        self.method = method

    def init(self, seed: int) -> State:
        x = np.full(self.n, self.total / self.n)
        if self.config.nonnegative:
            x = first_order.project_efficient(x, self.total, True)
        return {**self._start_state(x, math.nan), "done": False}

    def step(self, state: State, ctx: StepContext) -> tuple[State, dict[str, float]]:
        state = self._shapley(state, ctx)
        if state["done"]:
            return self._metrics(state, state["payoff"], state["epsilon"], state["certified_epsilon"])
        c = self.config
        if self.method == "full":
            res = exact_least_core(self.game, c.nonnegative)
            state = {**state, "lp_epsilon": res.epsilon, "done": True, "evaluations": (1 << self.n) - 2}
            return self._metrics(state, res.payoff, res.epsilon, self._max_excess(res.payoff, None))
        rows = unpack(state["ws_packed"], self.n)
        res = solve_least_core_lp(rows, state["ws_values"], self.total, c.nonnegative)
        if self._exact_certification():
            new, ex = most_violated_exact(self.game, res.payoff, c.cuts, c.enumeration_limit)
            new_values = self.game.values(new)
            evaluations = len(new)
            max_excess = float(max(ex[0], res.epsilon))
        else:
            sampled, values, evaluations = self._sample({**state, "payoff": res.payoff}, ctx)
            ex_all = values - sampled @ res.payoff
            top = np.argsort(-ex_all, kind="stable")[: c.cuts]
            new, ex, new_values = sampled[top], ex_all[top], values[top]
            max_excess = self._max_excess(
                res.payoff, (np.concatenate([rows, sampled]), np.concatenate([state["ws_values"], values]))
            )
        violated = ex > res.epsilon + c.tolerance
        state = {**state, "evaluations": state["evaluations"] + evaluations}
        state = self._merge(state, new[violated], new_values[violated], cap=1 << 30)
        done = bool(not violated.any() and self._exact_certification())
        state = {**state, "done": done, "lp_epsilon": res.epsilon if done else state["lp_epsilon"]}
        return self._metrics(state, res.payoff, res.epsilon, max_excess)

    def should_stop(self, state: State, metrics: dict[str, float]) -> Stop | None:
        if state["done"]:
            return Stop("converged", f"least core found exactly: epsilon = {state['epsilon']:.9g}")
        return super().should_stop(state, metrics)


class LeastCoreSampling(_LeastCoreBase):
    """Iterative coalition sampling with an LP, saddle-point or penalty update over the working set."""

    def __init__(self, config: LeastCoreSamplingConfig, game: CoalitionGame):
        self._reference_ok = (
            isinstance(game, CoalitionGame)
            and config.reference == "auto"
            and (game.num_players <= 16 or (game.has_exact_oracle and game.cheap_oracle))
        )
        super().__init__(config, game)
        self._lp, self._lp_keys = None, []  # the warm-started working-set LP (`_warm_lp`)

    def _has_reference(self) -> bool:
        return self._reference_ok

    def init(self, seed: int) -> State:
        c = self.config
        ref = reference_value(self.game, c.nonnegative, 16, c.enumeration_limit) if self._reference_ok else math.nan
        x = np.full(self.n, self.total / self.n)
        if c.start == "best_guess":  # the family's best cheap guess (equal split, closed-form Shapley, ...)
            x = self._best_guess(seed)
        if c.nonnegative:
            x = first_order.project_efficient(x, self.total, True)
        bundle = {
            "query": x,  # the bundle's next point to sample at; its centre is `payoff`
            "centre_value": math.inf,
            "model": -math.inf,
            "prox_t": math.nan,
            "prox_t0": math.nan,
            "effort": 1,  # multiplies the search's moves; doubles while the search finds nothing new
        }
        return {**self._start_state(x, ref), "rho": float(c.penalty), **bundle}

    def _best_guess(self, seed: int) -> np.ndarray:
        """Of `game.start_payoffs()`, the one with the smallest largest excess on the first working
        set and a seeded sample of coalitions."""
        rows = np.concatenate(
            [initial_coalitions(self.n), sample_coalitions(np.random.default_rng([seed, 0xB0]), self.n, 2048)]
        )
        values = self.game.values(rows)
        guesses = [first_order.project_efficient(g, self.total, self.config.nonnegative) for g in self.game.start_payoffs()]
        return min(guesses, key=lambda g: float(np.max(values - rows @ g)))

    def step(self, state: State, ctx: StepContext) -> tuple[State, dict[str, float]]:
        c = self.config
        state = self._shapley(state, ctx)
        if c.update == "bundle":
            return self._bundle_step(state, ctx)
        rows, values, evaluations = self._sample(state, ctx)
        state = {**state, "evaluations": state["evaluations"] + evaluations}
        state = self._merge(state, rows, values, c.working_set)
        a = unpack(state["ws_packed"], self.n)
        v = state["ws_values"]
        if c.update == "lp":
            res = self._warm_lp(state["ws_packed"], a, v)
            x, eps = res.payoff, res.epsilon
            state = {**state, "ws_log_mu": res.duals}
        elif c.update == "saddle_point":
            x, log_mu = first_order.saddle_point(
                a.astype(np.float64),
                v,
                state["payoff"],
                state["ws_log_mu"],
                self.total,
                c.nonnegative,
                c.inner_iterations,
                c.step_size,
            )
            state = {**state, "ws_log_mu": log_mu}
            eps = float(np.max(v - a @ x))
        else:
            x, eps, lam = first_order.penalty(
                a,
                v,
                state["payoff"],
                float(state["epsilon"]),
                state["ws_log_mu"],
                self.total,
                c.nonnegative,
                state["rho"],
                c.inner_iterations,
            )
            state = {**state, "rho": state["rho"] * c.penalty_growth, "ws_log_mu": lam}
        seen = (np.concatenate([a, rows]), np.concatenate([v, values]))
        if self._exact_certification() and self.game.cheap_oracle and self.n > c.enumeration_limit:
            # the oracle that certifies x also names the coalitions x violates most: they are the
            # next iteration's best samples (importance sampling at the cost of one DP)
            found, ex = most_violated_exact(self.game, x, ORACLE_CUTS, c.enumeration_limit)
            new = ex > eps
            state = self._merge(state, found[new], self.game.values(found[new]), c.working_set)
            return self._metrics(state, x, eps, float(ex[0]))
        max_excess = self._max_excess(x, seen)
        if self._exact_certification():
            return self._metrics(state, x, eps, max_excess)
        state, max_excess, proven = self._confirm(state, x, max(max_excess, eps))
        return self._metrics(state, x, eps, max_excess, exact=proven)

    def _bundle_step(self, state: State, ctx: StepContext) -> tuple[State, dict[str, float]]:
        """A proximal bundle iteration. `query` is the point q the master chose last time; the
        shards sample and search at q (keeping what beats the model there), and q becomes the
        centre (a serious step) when its excess f(q) is below the centre's by at least `SERIOUS`
        times the model's promised decrease; otherwise the new coalitions only refine the model
        (a null step). The master (`first_order.proximal_master`) then picks the next q. The
        payoff (and best payoff) is the centre, its largest excess as far as the run knows
        (refreshed as the working set grows) the certified and best epsilon; `epsilon` is the
        working set's value there."""
        c = self.config
        q = state["query"]
        rows, values, evaluations = self._sample(state, ctx)
        state = {**state, "evaluations": state["evaluations"] + evaluations}
        exact = self._exact_certification()
        if exact:  # the oracle's answer at q: f(q) exactly, and its most violated coalitions
            found, ex = most_violated_exact(self.game, q, ORACLE_CUTS, c.enumeration_limit)
            rows, values = np.concatenate([rows, found]), np.concatenate([values, self.game.values(found)])
            f_q = float(ex[0])
        state = self._merge(state, rows, values, c.working_set)
        a = unpack(state["ws_packed"], self.n).astype(np.float64)
        v = state["ws_values"]
        centre, f_c = state["payoff"], float(state["centre_value"])
        if not exact:
            # nothing above the model at q: the model is right there as far as this search can tell,
            # so the next search goes longer (up to MAX_EFFORT times); found something: back to short
            model = float(state["model"])
            improving = bool(np.any(values - rows @ q > model + 1e-9 * max(1.0, abs(model))))
            state = {**state, "effort": 1 if improving else min(2 * int(state["effort"]), MAX_EFFORT)}
            # the largest excess known at q, and what the working set now knows of the centre
            f_q = max(float(np.max(v - a @ q)), float(np.max(values - rows @ q, initial=-np.inf)))
            f_c = max(f_c, float(np.max(v - a @ centre)))
        t, t0 = float(state["prox_t"]), float(state["prox_t0"])
        if not np.isfinite(f_c) or f_q <= f_c - SERIOUS * (f_c - float(state["model"])):  # serious (always the first)
            centre, f_c = q, f_q
            t *= PROX_GROWTH
        else:
            t *= PROX_SHRINK
        if not np.isfinite(t0):  # the first step: t moves the most violated coalition's excess by about |f|
            g = a[int(np.argmax(v - a @ centre))]
            g = g - g.mean()
            t = t0 = max(abs(f_c), 1e-9 * max(abs(self.total), 1.0)) / max(float(g @ g), 1e-12)
        t = float(np.clip(t, t0 / PROX_RANGE, t0 * PROX_RANGE))
        if not exact:
            state, f_c, proven = self._confirm(state, centre, f_c)
            if len(state["ws_values"]) != len(v):
                a, v = unpack(state["ws_packed"], self.n).astype(np.float64), state["ws_values"]
            exact = proven
        # the master sees the coalitions that can matter near the centre: its multipliers' support
        # and the largest excess at the centre and at q (the rest of the working set stays for bounds)
        lam = state["ws_log_mu"].copy()
        at_centre, at_q = v - a @ centre, v - a @ q
        cols = np.unique(
            np.concatenate(
                [
                    np.flatnonzero(lam > 0),
                    np.argsort(-at_centre, kind="stable")[:BUNDLE_COLUMNS],
                    np.argsort(-at_q, kind="stable")[: BUNDLE_COLUMNS // 2],
                ]
            )
        )
        x, lam_cols = first_order.proximal_master(a[cols], v[cols], centre, t, lam[cols], self.total, c.nonnegative)
        lam = np.zeros(len(v))
        lam[cols] = lam_cols
        state = {**state, "ws_log_mu": lam, "centre_value": f_c, "prox_t": t, "prox_t0": t0}
        state, metrics = self._metrics(state, centre, float(np.max(at_centre)), f_c, exact)
        # the centre is the answer: an earlier, less known payoff's lower estimate is not better
        state = {**state, "best_payoff": centre, "best_epsilon": f_c, "query": x, "model": float(np.max(v - a @ x))}
        return state, {**metrics, "best_epsilon": f_c}

    def _warm_lp(self, packed: np.ndarray, rows: np.ndarray, values: np.ndarray):
        """The working-set LP in one warm-started HiGHS model kept beside the state: it is synced
        to the working set by adding and deleting columns (by coalition), so each iteration
        pivots from the last basis instead of solving afresh (at n = 200 with 4000 coalitions a
        fresh solve took 1.2-1.3 s CPU). Duals come back in working-set order."""
        keys = [row.tobytes() for row in packed]
        if self._lp is None:
            self._lp, self._lp_keys = IncrementalLeastCoreLP(self.n, self.total, self.config.nonnegative), []
        wanted = set(keys)
        self._lp.delete([i for i, key in enumerate(self._lp_keys) if key not in wanted])
        kept = [key for key in self._lp_keys if key in wanted]
        have = set(kept)
        new = [j for j, key in enumerate(keys) if key not in have]
        self._lp.add(rows[new], values[new])
        self._lp_keys = kept + [keys[j] for j in new]
        res = self._lp.solve()
        column = {key: i for i, key in enumerate(self._lp_keys)}
        return LPResult(res.payoff, res.epsilon, res.duals[[column[key] for key in keys]])

    def _confirm(self, state: State, x: np.ndarray, sampled: float) -> tuple[State, float, bool]:
        """Where sampling says x meets the stop target and the family has a MILP oracle, ask it
        to prove that no coalition's excess exceeds the target bound; a coalition it finds
        instead joins the working set. Returns (state, largest excess known, proven)."""
        target, c = self.target(state), self.config
        if c.stop_within is None or target is None or not hasattr(self.game, "separate") or c.certify == "sampled":
            return state, sampled, False
        bound = target + c.stop_within * max(abs(target), 1e-12)
        if sampled > bound:
            return state, sampled, False
        found = self.game.separate(x, 8, c.oracle_time_limit, at_least=bound, max_solutions=4)
        state = {**state, "evaluations": state["evaluations"] + len(found.excess)}
        if len(found.excess) == 0 and found.optimal:  # proven: every excess is below the bound
            return state, bound, True
        state = self._merge(state, found.coalitions, self.game.values(found.coalitions), c.working_set)
        return state, max(sampled, float(found.excess.max(initial=-np.inf))), False

    def should_stop(self, state: State, metrics: dict[str, float]) -> Stop | None:
        # only the LP update's epsilon is a lower bound: meeting the exact upper bound proves optimality
        if self.config.update == "lp" and state["certification"] == "exact" and metrics["max_violation"] <= 1e-9:
            return Stop("converged", f"least core found exactly: epsilon = {metrics['epsilon']:.9g}")
        return super().should_stop(state, metrics)


def build_lp(config: LeastCoreLPConfig, game: CoalitionGame) -> LeastCoreLP:
    return LeastCoreLP(config, game)


def build_sampling(config: LeastCoreSamplingConfig, game: CoalitionGame) -> LeastCoreSampling:
    return LeastCoreSampling(config, game)


__all__ = ["LeastCoreLP", "LeastCoreSampling", "cutting_planes", "reference_value", "check_payoff"]
