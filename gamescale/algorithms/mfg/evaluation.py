"""Exact evaluators for finite mean-field games: distribution propagation, policy value,
best response by backward induction, and exploitability (OpenSpiel's `nash_conv`).

Every function accepts a `MeanFieldGame` (arrays without a population axis: policy
`[T, S, A]`, distribution `[T + 1, S]`, value `[T + 1, S]`) or a `MultiPopulationGame`
(the same with a leading population axis `P`). Internally everything is population-batched
(`_`-prefixed functions take the `MultiPopulationGame` view and `[P, ...]` arrays).
A policy gives `pi[t, s, a]`, the probability of action a in state s at time t; it is
zero on illegal actions and sums to one over actions.
"""

from __future__ import annotations

import numpy as np

from gamescale.envs.mfg.game import MeanFieldGame, MultiPopulationGame, as_multi_population

AnyGame = MeanFieldGame | MultiPopulationGame


# --------------------------------------------------------------------------- batched core


def _check_policy(mgame: MultiPopulationGame, policy: np.ndarray) -> np.ndarray:
    shape = (mgame.num_populations, mgame.horizon, mgame.num_states, mgame.num_actions)
    policy = np.asarray(policy, dtype=np.float64)
    if policy.shape != shape:
        raise ValueError(f"policy shape {policy.shape} != expected {shape}")
    if np.any(policy < -1e-12) or not np.all(np.isfinite(policy)):
        raise ValueError("policy has negative or non-finite probabilities")
    if not np.allclose(policy.sum(axis=-1), 1.0, atol=1e-8):
        raise ValueError("policy rows must sum to 1 over actions")
    return policy


def _gather(values: np.ndarray, next_state: np.ndarray) -> np.ndarray:
    """`values [P, S]` at `next_state [P, S, A, K]` -> `[P, S, A, K]`."""
    num_populations, num_states = values.shape
    offset = (np.arange(num_populations) * num_states).reshape(-1, 1, 1, 1)
    return values.reshape(-1)[next_state + offset]


def _continuation(prob: np.ndarray, next_values: np.ndarray) -> np.ndarray:
    """Expected next value `[P, S, A]`, summed over successors in order (as a chance node does)."""
    total = prob[..., 0] * next_values[..., 0]
    for k in range(1, prob.shape[-1]):
        total = total + prob[..., k] * next_values[..., k]
    return total


def _propagate(mgame: MultiPopulationGame, policy: np.ndarray) -> np.ndarray:
    """Distributions `[P, T + 1, S]` induced by `policy [P, T, S, A]` from the initial one."""
    mu = np.empty((mgame.num_populations, mgame.horizon + 1, mgame.num_states))
    mu[:, 0] = mgame.initial_distribution
    for t in range(mgame.horizon):
        mu[:, t + 1] = mgame.step_distribution(t, mu[:, t], policy[:, t])
    return mu


def _backward(mgame: MultiPopulationGame, mu: np.ndarray, policy: np.ndarray | None):
    """Backward induction against the fixed flow `mu [P, T + 1, S]`.

    With `policy` None: optimal values and Q-values. Otherwise: values and Q-values of
    `policy [P, T, S, A]`. Returns `(value [P, T + 1, S], q [P, T, S, A])`; q is -inf on
    illegal actions.
    """
    num_populations, horizon = mgame.num_populations, mgame.horizon
    value = np.empty((num_populations, horizon + 1, mgame.num_states))
    q = np.empty((num_populations, horizon, mgame.num_states, mgame.num_actions))
    value[:, horizon] = mgame.terminal_reward(mu[:, horizon])
    legal = mgame.legal_actions
    for t in range(horizon - 1, -1, -1):
        next_state, prob = mgame.transition(t, mu[:, t])
        q_t = mgame.reward(t, mu[:, t]) + _continuation(prob, _gather(value[:, t + 1], next_state))
        q_t = np.where(legal, q_t, -np.inf)
        q[:, t] = q_t
        if policy is None:
            value[:, t] = q_t.max(axis=-1)
        else:
            value[:, t] = (policy[:, t] * np.where(legal, q_t, 0.0)).sum(axis=-1)
    return value, q


def greedy_policy(q: np.ndarray) -> np.ndarray:
    """Deterministic argmax policy from Q `[..., A]` (-inf on illegal); ties -> lowest action."""
    best = np.argmax(q, axis=-1)
    policy = np.zeros(q.shape)
    np.put_along_axis(policy, best[..., None], 1.0, axis=-1)
    return policy


def softmax_policy(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of `logits [..., A]` (-inf on illegal actions)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=-1, keepdims=True)


def _uniform(mgame: MultiPopulationGame) -> np.ndarray:
    legal = mgame.legal_actions.astype(np.float64)  # [P, S, A]
    per_time = legal / legal.sum(axis=-1, keepdims=True)
    return np.broadcast_to(per_time[:, None], (mgame.num_populations, mgame.horizon, *legal.shape[1:])).copy()


def _exploitability_terms(mgame: MultiPopulationGame, policy: np.ndarray, mu: np.ndarray | None = None):
    """`(mu, best-response Q [P, T, S, A], per-population exploitability [P])` of `policy`."""
    if mu is None:
        mu = _propagate(mgame, policy)
    br_value, br_q = _backward(mgame, mu, None)
    pi_value, _ = _backward(mgame, mu, policy)
    init = mgame.initial_distribution
    per_population = (init * br_value[:, 0]).sum(axis=-1) - (init * pi_value[:, 0]).sum(axis=-1)
    return mu, br_q, per_population


# --------------------------------------------------------------------------- public API


def _lift(game: AnyGame, array: np.ndarray | None):
    mgame = as_multi_population(game)
    single = isinstance(game, MeanFieldGame)
    if array is not None and single:
        array = np.asarray(array)[None]
    return mgame, single, array


def _lower(single: bool, array: np.ndarray) -> np.ndarray:
    return array[0] if single else array


def uniform_policy(game: AnyGame) -> np.ndarray:
    """Uniform over legal actions: `[T, S, A]` (or `[P, T, S, A]`)."""
    mgame, single, _ = _lift(game, None)
    return _lower(single, _uniform(mgame))


def propagate(game: AnyGame, policy: np.ndarray) -> np.ndarray:
    """Distribution flow `mu [T + 1, S]` (or `[P, T + 1, S]`) induced by `policy`."""
    mgame, single, policy = _lift(game, policy)
    return _lower(single, _propagate(mgame, _check_policy(mgame, policy)))


def best_response(game: AnyGame, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best response to the flow `mu [T + 1, S]` by backward induction.

    Returns `(policy [T, S, A], value [T + 1, S])` (population axis first for multi-population
    games). The policy is deterministic with ties broken towards the lowest action index,
    as OpenSpiel's `GreedyPolicy` does.
    """
    mgame, single, mu = _lift(game, mu)
    value, q = _backward(mgame, np.asarray(mu, dtype=np.float64), None)
    return _lower(single, greedy_policy(q)), _lower(single, value)


def q_values(game: AnyGame, mu: np.ndarray, policy: np.ndarray | None = None) -> np.ndarray:
    """Q-values `[T, S, A]` against the flow `mu` of `policy`, or optimal ones if None."""
    mgame, single, mu = _lift(game, mu)
    if policy is not None:
        policy = _check_policy(mgame, policy[None] if single else policy)
    _, q = _backward(mgame, np.asarray(mu, dtype=np.float64), policy)
    return _lower(single, q)


def policy_value(game: AnyGame, policy: np.ndarray, mu: np.ndarray | None = None) -> np.ndarray:
    """Value `[T + 1, S]` of `policy` against the flow `mu` (default: the flow of `policy`)."""
    mgame, single, policy = _lift(game, policy)
    policy = _check_policy(mgame, policy)
    if mu is None:
        mu = _propagate(mgame, policy)
    elif single:
        mu = np.asarray(mu)[None]
    value, _ = _backward(mgame, np.asarray(mu, dtype=np.float64), policy)
    return _lower(single, value)


def exploitability_per_population(game: AnyGame, policy: np.ndarray) -> np.ndarray:
    """`[P]`: for each population, best-response value minus policy value at the root."""
    mgame, _, policy = _lift(game, policy)
    return _exploitability_terms(mgame, _check_policy(mgame, policy))[2]


def exploitability(game: AnyGame, policy: np.ndarray) -> float:
    """Exploitability of `policy`, exactly OpenSpiel's `NashConv(game, policy).nash_conv()`.

    `sum_p sum_s mu_0[p, s] * (V_br[p, 0, s] - V_pi[p, 0, s])`, where both values are
    computed against the distribution flow induced by `policy` itself: the gain a single
    player of population p gets by deviating to a best response, summed over populations
    (OpenSpiel sums over the initial states of every population). Non-negative; zero
    exactly at a mean-field Nash equilibrium.
    """
    return float(exploitability_per_population(game, policy).sum())


def exploitability_metrics(per_population: np.ndarray) -> dict[str, float]:
    """Metrics row: total `exploitability`, plus `exploitability/pop{p}` when P > 1."""
    metrics = {"exploitability": float(np.sum(per_population))}
    if len(per_population) > 1:
        metrics.update({f"exploitability/pop{p}": float(v) for p, v in enumerate(per_population)})
    return metrics
