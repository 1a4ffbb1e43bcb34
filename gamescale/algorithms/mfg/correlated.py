"""Mean-field correlated (MFCE) and coarse-correlated (MFCCE) equilibria: gaps and learners.

Definitions (Muller et al. 2022, arXiv 2208.10138, as implemented alongside the paper in
OpenSpiel's `mfg/algorithms/correlated_equilibrium.py`). Single-population games only.

* A finite population of policies `policies [N, T, S, A]`.
* A correlation device: a distribution `rho [M]` over `M` outcomes; outcome `m` is a
  population recommendation `nus[m] [N]` (a distribution over the policies). A mediator
  samples `m ~ rho`, then every player independently receives a policy `n ~ nus[m]` and
  the population's mean field is the flow `mu_m [T + 1, S]` of that mixed population.
  With `nus = I` (`M = N`, the default) outcome `n` is "everyone plays policy n" and the
  mean field of recommendation n is the flow of policy n itself.
* `J(pi, mu)` is the value of policy `pi` against the fixed flow `mu`:
  `sum_s mu_0(s) V^pi_0(s)` with undiscounted rewards (`policy_value` of the engine).
* The CCE gap (a deviation committed before the recommendation is seen)::

      cce_gap = max_{pi'} sum_m rho_m J(pi', mu_m) - sum_m rho_m sum_n nus[m, n] J(pi_n, mu_m)

  the first term is a best response by backward induction against the rho-mixture of the
  recommended mean fields (rewards mix linearly; the kernel must not depend on mu).
* The CE gap (the deviation may depend on the recommended policy n)::

      ce_gap = sum_n max_{pi'} sum_m rho_m nus[m, n] (J(pi', mu_m) - J(pi_n, mu_m))
             = sum_n P(n) [max_{pi'} E_{m | n} J(pi', mu_m) - E_{m | n} J(pi_n, mu_m)],

  with `P(n) = sum_m rho_m nus[m, n]` and `rho(m | n) = rho_m nus[m, n] / P(n)`: one best
  response per recommendation against the conditional mixture of mean fields.

Both gaps are >= 0, `cce_gap <= ce_gap` (every CE is a CCE), and a device `rho` is an
MFCCE / MFCE exactly when its gap is 0. For a single-point device on policy pi both gaps
equal the Nash exploitability of pi. With `nus = I` the CE gap is `sum_n rho_n expl(pi_n)`
(a CE of single-policy recommendations is a mixture of Nash equilibria); the CCE can be
strictly more.

Learners (`mf_cce`, `mf_ce`): mean-field PSRO with a no-regret meta-solver (the
paper's population method; OpenSpiel's `mf_psro.py` with `regret/hedge.py`). Iteration k:

1. the population plays `nu_k`: Hedge over the current policies on their cumulative
   payoffs (external regret, `mf_cce`) or Blum-Mansour swap-regret Hedge (internal
   regret, `mf_ce`); its flow `mu_k` becomes outcome k of the device;
2. the device `rho` over the outcomes so far is the empirical play (`meta_solver:
   uniform`, the no-regret average) or the linear program that minimises the
   population-restricted gap and then maximises welfare (`meta_solver: lp`, OpenSpiel's
   "compression" / JPSRO's max-welfare (C)CE);
3. the exact gap of `rho` over all policies is measured by best responses, and the best
   response (CCE: the joint one; CE: the one of the recommendation with the largest gain)
   joins the population.

All arrays are kept at a fixed capacity `max_policies` so checkpoints stay plain arrays.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from gamescale.algorithms.base import LearnerSpec, Metrics, State, StepContext
from gamescale.algorithms.mfg.evaluation import exploitability, propagate, uniform_policy
from gamescale.algorithms.registry import AlgorithmConfig, register_algorithm
from gamescale.envs.mfg.game import MeanFieldGame

# --------------------------------------------------------------------------- reward tables


def _require_game(game: Any, joint: bool = True) -> MeanFieldGame:
    if not isinstance(game, MeanFieldGame):
        raise TypeError(f"correlated equilibria need a single-population MeanFieldGame, got {type(game).__name__}")
    if joint and game.transition_depends_on_mu:
        raise ValueError(
            f"{game.name}: best responses against a mixture of mean fields need transitions that do not "
            "depend on mu (as OpenSpiel's JointBestResponse); this game's kernel depends on mu"
        )
    return game


def _kernels(game: MeanFieldGame, mu0: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The mu-independent kernel at each time: T pairs `(next_state, prob)` each `[S, A, K]`."""
    return [game.transition(t, mu0[t]) for t in range(game.horizon)]


def reward_tables(game: MeanFieldGame, mus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rewards against each flow: `(rewards [M, T, S, A], terminal [M, S])` for `mus [M, T + 1, S]`."""
    mus = np.asarray(mus, dtype=np.float64)
    rewards = np.stack([np.stack([game.reward(t, mu[t]) for t in range(game.horizon)]) for mu in mus])
    terminal = np.stack([np.asarray(game.terminal_reward(mu[game.horizon]), dtype=np.float64) for mu in mus])
    return rewards.astype(np.float64), terminal


def _policy_values(game, kernels, rewards, terminal, policies) -> np.ndarray:
    """Root values `[N]` of `policies [N, T, S, A]` under one reward table `[T, S, A]`, `[S]`."""
    legal = game.legal_actions
    value = np.broadcast_to(terminal, (policies.shape[0], game.num_states))
    for t in range(game.horizon - 1, -1, -1):
        next_state, prob = kernels[t]
        continuation = (prob[None] * value[:, next_state]).sum(axis=-1)  # [N, S, A]
        q = np.where(legal, rewards[t][None] + continuation, 0.0)
        value = (policies[:, t] * q).sum(axis=-1)
    return value @ game.initial_distribution


def _joint_best_response(game, kernels, rewards, terminal) -> tuple[np.ndarray, float]:
    """Greedy best response `[T, S, A]` and its root value for one (mixed) reward table."""
    legal = game.legal_actions
    value = terminal
    policy = np.zeros((game.horizon, game.num_states, game.num_actions))
    for t in range(game.horizon - 1, -1, -1):
        next_state, prob = kernels[t]
        q = np.where(legal, rewards[t] + (prob * value[next_state]).sum(axis=-1), -np.inf)
        best = np.argmax(q, axis=-1)  # ties -> lowest action, as the engine's greedy policy
        policy[t, np.arange(game.num_states), best] = 1.0
        value = q[np.arange(game.num_states), best]
    return policy, float(value @ game.initial_distribution)


# --------------------------------------------------------------------------- pure functions


def _device(rho: np.ndarray, nus: np.ndarray | None, num_policies: int) -> tuple[np.ndarray, np.ndarray]:
    rho = np.asarray(rho, dtype=np.float64)
    nus = np.eye(num_policies) if nus is None else np.asarray(nus, dtype=np.float64)
    if nus.ndim != 2 or nus.shape != (rho.shape[0], num_policies):
        raise ValueError(f"nus shape {nus.shape} must be [M={rho.shape[0]}, N={num_policies}]")
    if np.any(rho < -1e-12) or not np.isclose(rho.sum(), 1.0, atol=1e-8):
        raise ValueError(f"rho must be a distribution, sums to {rho.sum():.6g}")
    if np.any(nus < -1e-12) or not np.allclose(nus.sum(axis=1), 1.0, atol=1e-8):
        raise ValueError("each row of nus must be a distribution over the policies")
    return np.clip(rho, 0.0, None), np.clip(nus, 0.0, None)


def policy_flows(game: MeanFieldGame, policies: np.ndarray) -> np.ndarray:
    """Flow of each policy `[N, T + 1, S]` from `policies [N, T, S, A]`."""
    return np.stack([propagate(game, pi) for pi in np.asarray(policies, dtype=np.float64)])


def mean_fields(game: MeanFieldGame, policies: np.ndarray, nus: np.ndarray | None = None) -> np.ndarray:
    """Mean field of each outcome `[M, T + 1, S]`: the flow of the population mixing
    `policies [N, T, S, A]` with weights `nus [M, N]` (default identity: `[N, T + 1, S]`,
    the flow of each policy). Each sub-population moves on its own, so the mixture's flow
    is `nus @ flows` when the kernel does not depend on mu; otherwise the sub-populations
    are pushed together through the kernel of their total distribution.
    """
    game = _require_game(game, joint=False)
    policies = np.asarray(policies, dtype=np.float64)
    nus = np.eye(len(policies)) if nus is None else np.asarray(nus, dtype=np.float64)
    if not game.transition_depends_on_mu:
        return np.einsum("mn,nts->mts", nus, policy_flows(game, policies))
    from gamescale.envs.mfg.game import push_forward

    out = np.empty((nus.shape[0], game.horizon + 1, game.num_states))
    for m, nu in enumerate(nus):
        parts = nu[:, None] * game.initial_distribution[None]  # [N, S] unnormalised masses
        out[m, 0] = parts.sum(axis=0)
        for t in range(game.horizon):
            kernel = game.transition(t, out[m, t])
            parts = np.stack([push_forward(parts[n], policies[n, t], *kernel) for n in range(len(nu))])
            out[m, t + 1] = parts.sum(axis=0)
    return out


def payoff_matrix(game: MeanFieldGame, policies: np.ndarray, mus: np.ndarray) -> np.ndarray:
    """`R [M, N]`: `R[m, n] = J(policies[n], mus[m])`, value of policy n against flow m."""
    game = _require_game(game)
    policies = np.asarray(policies, dtype=np.float64)
    mus = np.asarray(mus, dtype=np.float64)
    kernels = _kernels(game, mus[0])
    rewards, terminal = reward_tables(game, mus)
    return np.stack([_policy_values(game, kernels, rewards[m], terminal[m], policies) for m in range(len(mus))])


def joint_best_response(game: MeanFieldGame, mus: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Best response to a mixture of flows: `argmax_pi sum_m weights[m] J(pi, mus[m])`.

    `mus [M, T + 1, S]`, `weights [M]` (non-negative, need not sum to one). Backward
    induction on the weighted reward `sum_m weights[m] r(t, mu_m,t)`. Returns the greedy
    policy `[T, S, A]` and the maximal weighted value.
    """
    game = _require_game(game)
    mus = np.asarray(mus, dtype=np.float64)
    rewards, terminal = reward_tables(game, mus)
    weights = np.asarray(weights, dtype=np.float64)
    return _joint_best_response(
        game, _kernels(game, mus[0]), np.einsum("m,mtsa->tsa", weights, rewards), weights @ terminal
    )


def cce_best_response(
    game: MeanFieldGame, policies: np.ndarray, rho: np.ndarray, nus: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """The CCE deviation and the gap: `(policy [T, S, A], cce_gap)` (module docstring)."""
    policies = np.asarray(policies, dtype=np.float64)
    rho, nus = _device(rho, nus, len(policies))
    mus = mean_fields(game, policies, nus)
    on_path = float(rho @ (nus * payoff_matrix(game, policies, mus)).sum(axis=1))
    deviation, value = joint_best_response(game, mus, rho)
    return deviation, max(value - on_path, 0.0)


def ce_best_responses(
    game: MeanFieldGame, policies: np.ndarray, rho: np.ndarray, nus: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per recommendation n, the CE deviation and its weighted gain:
    `(policies [N, T, S, A], gains [N])`, `gains[n] = max_pi' sum_m rho_m nus[m, n]
    (J(pi', mu_m) - J(pi_n, mu_m))`; `ce_gap = gains.sum()`. Never-recommended policies
    keep themselves as deviation with gain 0.
    """
    policies = np.asarray(policies, dtype=np.float64)
    rho, nus = _device(rho, nus, len(policies))
    mus = mean_fields(game, policies, nus)
    payoffs = payoff_matrix(game, policies, mus)
    deviations, gains = policies.copy(), np.zeros(len(policies))
    for n in range(len(policies)):
        weights = rho * nus[:, n]
        if weights.sum() <= 0.0:
            continue
        deviations[n], value = joint_best_response(game, mus, weights)
        gains[n] = max(value - float(weights @ payoffs[:, n]), 0.0)
    return deviations, gains


def cce_gap(game: MeanFieldGame, policies: np.ndarray, rho: np.ndarray, nus: np.ndarray | None = None) -> float:
    """Mean-field CCE gap of the device `(rho [M], nus [M, N])` over `policies [N, T, S, A]`."""
    return cce_best_response(game, policies, rho, nus)[1]


def ce_gap(game: MeanFieldGame, policies: np.ndarray, rho: np.ndarray, nus: np.ndarray | None = None) -> float:
    """Mean-field CE gap of the device `(rho [M], nus [M, N])` over `policies [N, T, S, A]`."""
    return float(ce_best_responses(game, policies, rho, nus)[1].sum())


def welfare(game: MeanFieldGame, policies: np.ndarray, rho: np.ndarray, nus: np.ndarray | None = None) -> float:
    """Expected payoff of a player following the device: `sum_m rho_m sum_n nus[m, n] J(pi_n, mu_m)`."""
    policies = np.asarray(policies, dtype=np.float64)
    rho, nus = _device(rho, nus, len(policies))
    return float(rho @ (nus * payoff_matrix(game, policies, mean_fields(game, policies, nus))).sum(axis=1))


def marginal_policy(flows: np.ndarray, policies: np.ndarray, weights: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """The Markov policy `[T, S, A]` whose flow is `sum_n weights[n] flows[n]` (the
    population-averaged play), from `flows [N, T + 1, S]`, `policies [N, T, S, A]`."""
    mass = weights[:, None, None] * flows[:, :-1]  # [N, T, S]
    norm = mass.sum(axis=0)
    merged = np.einsum("nts,ntsa->tsa", mass, policies)
    uniform = np.broadcast_to(legal / legal.sum(axis=-1, keepdims=True), merged.shape)
    return np.where(norm[..., None] > 0, merged / np.where(norm > 0, norm, 1.0)[..., None], uniform)


# --------------------------------------------------------------------------- meta-solvers


def _linprog(c, a_ub, b_ub, a_eq, b_eq):
    import scipy.optimize  # slow to import: only when a CE/CCE linear program is solved

    res = scipy.optimize.linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    return None if res.status != 0 else res.x


def restricted_regrets(payoffs: np.ndarray, nus: np.ndarray, kind: str) -> np.ndarray:
    """Per-outcome deviation gains restricted to the population.

    `payoffs [M, N]`, `nus [M, N]`. CCE: `[M, N]`, gain of switching to policy j at
    outcome m. CE: `[M, N, N]`, `[m, i, j] = nus[m, i] (R[m, j] - R[m, i])`.
    """
    if kind == "cce":
        return payoffs - (nus * payoffs).sum(axis=1, keepdims=True)
    return nus[:, :, None] * (payoffs[:, None, :] - payoffs[:, :, None])


def lp_device(payoffs: np.ndarray, nus: np.ndarray, kind: str, tolerance: float = 1e-6) -> np.ndarray:
    """`rho [M]`: the distribution over outcomes minimising the population-restricted
    (C)CE gap, then maximising welfare among those within `tolerance` of that minimum.

    Variables `(eps [E], rho [M])`; CCE: `sum_m rho_m regret[m, j] <= eps` for every j
    (E = 1); CE: `sum_m rho_m regret[m, i, j] <= eps_i` for every (i, j) (E = N, the gap
    is `sum_i eps_i`). Falls back to uniform if the solver fails.
    """
    num_outcomes, num_policies = payoffs.shape
    regrets = restricted_regrets(payoffs, nus, kind)
    if kind == "cce":
        num_eps = 1
        a_ub = np.concatenate([-np.ones((num_policies, 1)), regrets.T], axis=1)
    else:
        num_eps = num_policies
        rows = regrets.transpose(1, 2, 0).reshape(num_policies * num_policies, num_outcomes)  # [(i, j), M]
        eps = np.repeat(-np.eye(num_policies), num_policies, axis=0)
        a_ub = np.concatenate([eps, rows], axis=1)
    b_ub = np.zeros(a_ub.shape[0])
    a_eq = np.concatenate([np.zeros((1, num_eps)), np.ones((1, num_outcomes))], axis=1)
    c = np.concatenate([np.ones(num_eps), np.zeros(num_outcomes)])
    x = _linprog(c, a_ub, b_ub, a_eq, [1.0])
    if x is None:
        return np.full(num_outcomes, 1.0 / num_outcomes)
    best_gap = float(x[:num_eps].sum())
    on_path = (nus * payoffs).sum(axis=1)  # welfare of each outcome [M]
    gap_row = np.concatenate([np.ones(num_eps), np.zeros(num_outcomes)])[None]
    x2 = _linprog(
        np.concatenate([np.zeros(num_eps), -on_path]),
        np.concatenate([a_ub, gap_row]),
        np.concatenate([b_ub, [best_gap + tolerance]]),
        a_eq,
        [1.0],
    )
    rho = (x if x2 is None else x2)[num_eps:]
    rho = np.clip(rho, 0.0, None)
    return rho / rho.sum()


def hedge_distribution(cumulative: np.ndarray, learning_rate: float) -> np.ndarray:
    """Hedge weights `softmax(lr * cumulative)` over the last axis."""
    logits = learning_rate * cumulative
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def swap_hedge_distribution(cumulative: np.ndarray, learning_rate: float) -> np.ndarray:
    """Blum-Mansour: one Hedge per recommended policy i over replacements j on
    `cumulative [N, N]` (`[i, j] = sum_k nu_k[i] R[k, j]`); play the stationary
    distribution `nu = nu Q` of the row-stochastic matrix `Q [N, N]`."""
    q = hedge_distribution(cumulative, learning_rate)
    n = len(q)
    system = np.concatenate([q.T - np.eye(n), np.ones((1, n))])
    nu = np.linalg.lstsq(system, np.concatenate([np.zeros(n), [1.0]]), rcond=None)[0]
    nu = np.clip(nu, 0.0, None)
    return nu / nu.sum()


# --------------------------------------------------------------------------- learners


class CorrelatedPSROConfig(AlgorithmConfig):
    """Mean-field PSRO towards a (coarse) correlated equilibrium; see the module docstring.

    `max_policies`: capacity of the population (at most one new policy per iteration;
    use >= iterations + 1). `max_outcomes`: capacity of the device's outcome list
    (`regret_steps` Hedge outcomes per iteration, plus one per new policy with
    `pure_outcomes`, the outcome "everyone plays the new policy").
    `learning_rate`: Hedge step; None uses `sqrt(8 ln N / k) / payoff range`.
    `meta_solver`: `lp` (min-gap, then max-welfare device) or `uniform` (empirical play).
    """

    name: str = "mf_cce"
    max_policies: int = Field(default=64, ge=2)
    max_outcomes: int = Field(default=256, ge=1)
    regret_steps: int = Field(default=1, ge=1)
    pure_outcomes: bool = False
    learning_rate: float | None = Field(default=None, gt=0.0)
    meta_solver: Literal["lp", "uniform"] = "lp"
    welfare_tolerance: float = Field(default=1e-6, ge=0.0)


class MeanFieldCCEConfig(CorrelatedPSROConfig):
    name: str = "mf_cce"


class MeanFieldCEConfig(CorrelatedPSROConfig):
    name: str = "mf_ce"


class CorrelatedPSRO:
    """Exact mean-field PSRO with a no-regret meta-solver; `kind` is "cce" or "ce".

    State (checkpointable), with `Nmax = max_policies`, `Mmax = max_outcomes`:
      `iteration`, `num_policies` (N), `num_outcomes` (M) ints;
      `policies [Nmax, T, S, A]`, `flows [Nmax, T + 1, S]` (own flow of each policy);
      `nus [Mmax, Nmax]` (outcome k: the population mixture played at iteration k),
      `mus [Mmax, T + 1, S]` (its flow), `rewards [Mmax, T, S, A]`, `terminal [Mmax, S]`
      (reward tables against `mus[k]`), `payoffs [Mmax, Nmax]` (`J(pi_n, mu_k)`),
      `br_values [Mmax]` (`max_pi J(pi, mu_k)`), `rho [Mmax]` (the current device);
      `metrics`: a dict of the last step's scalar metrics.
    """

    kind = "cce"

    def __init__(self, config: CorrelatedPSROConfig, game: Any):
        self.config = config
        self.game = _require_game(game)

    def learner_specs(self) -> dict[str, LearnerSpec]:
        return {}

    def init(self, seed: int) -> State:
        del seed  # exact and deterministic
        g, cap, out = self.game, self.config.max_policies, self.config.max_outcomes
        T, S, A = g.horizon, g.num_states, g.num_actions
        policies = np.zeros((cap, T, S, A))
        policies[0] = uniform_policy(g)
        flows = np.zeros((cap, T + 1, S))
        flows[0] = propagate(g, policies[0])
        return {
            "iteration": 0,
            "num_policies": 1,
            "num_outcomes": 0,
            "policies": policies,
            "flows": flows,
            "nus": np.zeros((out, cap)),
            "mus": np.zeros((out, T + 1, S)),
            "rewards": np.zeros((out, T, S, A)),
            "terminal": np.zeros((out, S)),
            "payoffs": np.zeros((out, cap)),
            "br_values": np.zeros(out),
            "rho": np.zeros(out),
        }

    # -- pieces ------------------------------------------------------------------------

    def _population_play(self, state: State, n: int, m: int) -> np.ndarray:
        """The mixture `nu [n]` the population plays at this iteration (regret minimiser)."""
        if m == 0:
            nu = np.zeros(n)
            nu[0] = 1.0
            return nu
        payoffs, nus = state["payoffs"][:m, :n], state["nus"][:m, :n]
        spread = float(payoffs.max() - payoffs.min())
        lr = self.config.learning_rate
        if lr is None:
            lr = np.sqrt(8.0 * np.log(max(n, 2)) / m) / max(spread, 1e-12)
        if self.kind == "cce":
            return hedge_distribution(payoffs.sum(axis=0), lr)
        return swap_hedge_distribution(nus.T @ payoffs, lr)

    def _device(self, state: State, n: int, m: int) -> np.ndarray:
        if self.config.meta_solver == "uniform":
            return np.full(m, 1.0 / m)
        return lp_device(state["payoffs"][:m, :n], state["nus"][:m, :n], self.kind, self.config.welfare_tolerance)

    def _gaps(self, state: State, n: int, m: int, rho: np.ndarray, kernels, with_ce: bool):
        """Exact CCE gap (+ deviation) and, if asked, CE gains `[n]` (+ deviations)."""
        rewards, terminal = state["rewards"][:m], state["terminal"][:m]
        payoffs, nus = state["payoffs"][:m, :n], state["nus"][:m, :n]
        on_path = float(rho @ (nus * payoffs).sum(axis=1))
        cce_dev, value = _joint_best_response(
            self.game, kernels, np.einsum("m,mtsa->tsa", rho, rewards), rho @ terminal
        )
        result = {"cce_gap": max(value - on_path, 0.0), "cce_deviation": cce_dev}
        if with_ce:
            gains, devs = np.zeros(n), []
            for i in range(n):
                w = rho * nus[:, i]
                if w.sum() <= 0.0:
                    devs.append(None)
                    continue
                dev, value = _joint_best_response(
                    self.game, kernels, np.einsum("m,mtsa->tsa", w, rewards), w @ terminal
                )
                gains[i] = max(value - float(w @ payoffs[:, i]), 0.0)
                devs.append(dev)
            result.update(ce_gains=gains, ce_deviations=devs)
        return result

    def _add_policy(self, state: State, policy: np.ndarray, kernels) -> bool:
        """Append `policy` unless already present; fills its payoff column. Returns added."""
        n, m = state["num_policies"], state["num_outcomes"]
        if np.any(np.all(np.abs(state["policies"][:n] - policy) < 1e-12, axis=(1, 2, 3))):
            return False
        if n >= self.config.max_policies:
            raise ValueError(f"population is full ({n} policies); raise algorithm.max_policies")
        state["policies"][n] = policy
        state["flows"][n] = propagate(self.game, policy)
        for k in range(m):
            state["payoffs"][k, n] = _policy_values(
                self.game, kernels, state["rewards"][k], state["terminal"][k], policy[None]
            )[0]
        state["num_policies"] = n + 1
        return True

    def _add_outcome(self, state: State, nu: np.ndarray, n: int):
        """Append the outcome "the population plays `nu [n]`"; returns the kernels."""
        g, m = self.game, int(state["num_outcomes"])
        if m >= self.config.max_outcomes:
            raise ValueError(f"device is full ({m} outcomes); raise algorithm.max_outcomes")
        mu = np.einsum("n,nts->ts", nu, state["flows"][:n])
        kernels = _kernels(g, mu)
        rewards, terminal = reward_tables(g, mu[None])
        state["nus"][m, :n] = nu
        state["mus"][m] = mu
        state["rewards"][m], state["terminal"][m] = rewards[0], terminal[0]
        state["payoffs"][m, :n] = _policy_values(g, kernels, rewards[0], terminal[0], state["policies"][:n])
        state["br_values"][m] = _joint_best_response(g, kernels, rewards[0], terminal[0])[1]
        state["num_outcomes"] = m + 1
        return kernels

    # -- step interface ----------------------------------------------------------------

    def step(self, state: State, ctx: StepContext | None = None) -> tuple[State, Metrics]:
        state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
        n, m = int(state["num_policies"]), int(state["num_outcomes"])

        # 1. the population plays nu (regret_steps times); each flow is a new outcome.
        for _ in range(self.config.regret_steps):
            kernels = self._add_outcome(state, self._population_play(state, n, m), n)
            m += 1

        # 2. the device over the outcomes so far.
        rho = self._device(state, n, m)
        state["rho"][:] = 0.0
        state["rho"][:m] = rho

        # 3. exact gaps of the device; the best deviation joins the population.
        gaps = self._gaps(state, n, m, rho, kernels, with_ce=True)
        ce_gains = gaps["ce_gains"]
        if self.kind == "cce":
            self._add_policy(state, gaps["cce_deviation"], kernels)
        else:
            for i in np.argsort(-ce_gains):
                if ce_gains[i] <= 0.0 or self._add_policy(state, gaps["ce_deviations"][i], kernels):
                    break

        if self.config.pure_outcomes and int(state["num_policies"]) > n:
            self._add_outcome(state, np.eye(n + 1)[n], n + 1)
        metrics = self._metrics(state, n, m, rho, gaps["cce_gap"], float(ce_gains.sum()))
        state["iteration"] = int(state["iteration"]) + 1
        state["metrics"] = {k: float(v) for k, v in metrics.items()}
        return state, metrics

    def _metrics(self, state: State, n: int, m: int, rho: np.ndarray, cce: float, ce: float) -> Metrics:
        payoffs, nus = state["payoffs"][:m, :n], state["nus"][:m, :n]
        on_path = (nus * payoffs).sum(axis=1)  # [M] welfare of each outcome
        outcome_expl = state["br_values"][:m] - on_path  # Nash exploitability of each outcome
        support = rho > 1e-6
        marginal = marginal_policy(state["flows"][:n], state["policies"][:n], rho @ nus, self.game.legal_actions)
        return {
            "cce_gap": cce,
            "ce_gap": ce,
            "exploitability": exploitability(self.game, marginal),
            "welfare": float(rho @ on_path),
            "min_outcome_exploitability": float(outcome_expl[support].min()),
            "mean_outcome_exploitability": float(rho @ outcome_expl),
            "num_policies": float(state["num_policies"]),
            "support_size": float(support.sum()),
        }

    # -- results -----------------------------------------------------------------------

    def device(self, state: State) -> dict[str, np.ndarray]:
        """The learned device: `policies [N, T, S, A]`, `rho [M]`, `nus [M, N]`, `mus [M, T + 1, S]`
        (the population of the last device; policies added after it have weight 0)."""
        n, m = int(state["num_policies"]), int(state["num_outcomes"])
        return {
            "policies": state["policies"][:n],
            "rho": state["rho"][:m],
            "nus": state["nus"][:m, :n],
            "mus": state["mus"][:m],
        }

    def summary(self, state: State) -> dict[str, Any]:
        keys = ("cce_gap", "ce_gap", "exploitability", "welfare", "min_outcome_exploitability")
        out = {k: float(state["metrics"][k]) for k in keys if k in state.get("metrics", {})}
        out.update(iterations=int(state["iteration"]), num_policies=int(state["num_policies"]))
        return out


class MeanFieldCCE(CorrelatedPSRO):
    """`mf_cce`: external-regret Hedge over the population, CCE best responses."""

    kind = "cce"


class MeanFieldCE(CorrelatedPSRO):
    """`mf_ce`: swap-regret (Blum-Mansour) Hedge over the population, CE best responses."""

    kind = "ce"


register_algorithm("mf_cce", MeanFieldCCEConfig, MeanFieldCCE, "mean-field PSRO to a coarse correlated equilibrium")
register_algorithm("mf_ce", MeanFieldCEConfig, MeanFieldCE, "mean-field PSRO to a correlated equilibrium")
