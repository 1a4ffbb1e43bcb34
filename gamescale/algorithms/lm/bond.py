"""The mathematics of Best-of-N distillation (BOND, 2407.14622) that needs no model.

Conventions. A *policy* over a finite set of K outcomes (whole completions) is a
probability vector `probs [..., K]`; `rewards [K]` scores each outcome. Best-of-N draws
N outcomes i.i.d. from the policy and keeps the one with the highest reward; ties are
broken uniformly among the tied draws (any rule that picks among equal rewards in
proportion to the policy gives the same distribution).

With p_le(y) = P(r(Y) <= r(y)) and p_lt(y) = P(r(Y) < r(y)) under the policy, the
Best-of-N distribution is exactly

    pi_BoN(y) = pi(y) * (p_le^N - p_lt^N) / (p_le - p_lt)
              = pi(y) * p_le(y)^(N - 1) * sum_{i=1..N} (p_lt(y) / p_le(y))^(i - 1),

the first factor `p_le^(N-1)` being the paper's term A and the sum (between 1 and N)
its tie correction B. For sequences the quantile p_le(y) is unknown; the paper
estimates it from k samples y'_1..y'_k of the reference (anchor) policy:
p_le_hat(y) = #{j : r(y'_j) <= r(y)} / k, so that

    log pi_BoN_hat(y) = log pi_ref(y) + (N - 1) log p_le_hat(y) + log B_hat(y).

Divergences here are between distributions over the K outcomes (sequence level):
forward KL(pi_BoN || pi), backward KL(pi || pi_BoN) and the Jeffreys combination
(1 - beta) * forward + beta * backward. Arrays are float64 numpy unless stated.
"""

from __future__ import annotations

import numpy as np
import torch


def _check_n(n: int) -> int:
    if int(n) != n or n < 1:
        raise ValueError(f"Best-of-N needs an integer N >= 1, got {n}")
    return int(n)


def reward_quantiles(probs: np.ndarray, rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(p_le, p_lt)`, each `[..., K]`: the policy's mass on rewards <= and < each outcome's."""
    probs = np.asarray(probs, dtype=np.float64)
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.ndim != 1 or probs.shape[-1] != rewards.shape[0]:
        raise ValueError(f"probs {probs.shape} and rewards {rewards.shape} disagree on the number of outcomes")
    le = (rewards[None, :] <= rewards[:, None]).astype(np.float64)  # [K(y), K(y')]
    lt = (rewards[None, :] < rewards[:, None]).astype(np.float64)
    return probs @ le.T, probs @ lt.T


def tie_correction(p_le: np.ndarray, p_lt: np.ndarray, n: int) -> np.ndarray:
    """The factor B = sum_{i=1..N} (p_lt / p_le)^(i - 1), in [1, N] (N where there are no ties)."""
    n = _check_n(n)
    p_le = np.asarray(p_le, dtype=np.float64)
    ratio = np.divide(np.asarray(p_lt, dtype=np.float64), p_le, out=np.ones_like(p_le), where=p_le > 0)
    return np.sum(ratio[..., None] ** np.arange(n), axis=-1)


def best_of_n_probs(probs: np.ndarray, rewards: np.ndarray, n: int) -> np.ndarray:
    """The exact Best-of-N distribution `[..., K]` of `probs [..., K]` under `rewards [K]`."""
    n = _check_n(n)
    probs = np.asarray(probs, dtype=np.float64)
    p_le, p_lt = reward_quantiles(probs, rewards)
    return probs * p_le ** (n - 1) * tie_correction(p_le, p_lt, n)


def sample_best_of_n(
    probs: np.ndarray, rewards: np.ndarray, n: int, num_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """Monte-Carlo Best-of-N: `num_samples` outcomes `[num_samples]`, each the best of n
    i.i.d. draws from `probs [K]` (ties broken uniformly among the tied draws)."""
    n = _check_n(n)
    draws = rng.choice(len(probs), size=(num_samples, n), p=np.asarray(probs, dtype=np.float64))
    return draws[np.arange(num_samples), best_index(np.asarray(rewards)[draws], rng)]


def best_index(rewards: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Index of the best of each row of `rewards [B, N]` (ties: uniform with `rng`, else first)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    if rng is None:
        return np.argmax(rewards, axis=-1)
    best = rewards == rewards.max(axis=-1, keepdims=True)
    noise = rng.random(rewards.shape)
    return np.argmax(np.where(best, noise, -1.0), axis=-1)


def quantile_estimate(
    rewards: np.ndarray, anchor_rewards: np.ndarray, strict: bool = False, prior: float = 0.0
) -> np.ndarray:
    """The paper's estimate of p_le(y) (or p_lt with `strict`) from anchor samples.

    `rewards [B]` of the scored outcomes, `anchor_rewards [B, k]` of k samples from the
    anchor policy for the same prompt. Returns `(count + prior) / (k + prior)` `[B]`;
    `prior = 1` counts y itself as one more sample, which keeps the estimate above 0
    (as a log-probability needs) at a bias of order 1 / k.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    anchor_rewards = np.asarray(anchor_rewards, dtype=np.float64)
    if anchor_rewards.ndim != 2 or anchor_rewards.shape[0] != rewards.shape[0]:
        raise ValueError(f"anchor rewards {anchor_rewards.shape} must be [B, k] for {rewards.shape[0]} outcomes")
    below = anchor_rewards < rewards[:, None] if strict else anchor_rewards <= rewards[:, None]
    return (below.sum(axis=1) + prior) / (anchor_rewards.shape[1] + prior)


def log_best_of_n_estimate(
    ref_logprob: np.ndarray, rewards: np.ndarray, anchor_rewards: np.ndarray, n: int, prior: float = 1.0
) -> np.ndarray:
    """log pi_BoN_hat(y) `[B]` from log pi_ref(y) `[B]` and the quantile estimates
    (A and B terms) of `rewards [B]` among `anchor_rewards [B, k]`."""
    n = _check_n(n)
    p_le = quantile_estimate(rewards, anchor_rewards, prior=prior)
    p_lt = quantile_estimate(rewards, anchor_rewards, strict=True, prior=0.0)
    return np.asarray(ref_logprob, dtype=np.float64) + (n - 1) * np.log(p_le) + np.log(tie_correction(p_le, p_lt, n))


def best_of_n_estimate_probs(probs: np.ndarray, rewards: np.ndarray, n: int, anchor_outcomes: np.ndarray) -> np.ndarray:
    """The quantile-estimated Best-of-N distribution over K outcomes (normalised), with
    the quantiles of every outcome estimated from the same anchor draws `anchor_outcomes [k]`.

    As k grows this converges to `best_of_n_probs` (the empirical CDF converges)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    k = len(anchor_outcomes)
    anchor = np.broadcast_to(rewards[np.asarray(anchor_outcomes)], (len(rewards), k))
    log_bon = log_best_of_n_estimate(np.log(np.asarray(probs, dtype=np.float64)), rewards, anchor, n, prior=0.0)
    weights = np.exp(log_bon - np.max(log_bon))
    return weights / weights.sum()


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) of two distributions over the same outcomes (0 log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    support = p > 0
    if np.any(q[support] <= 0):
        return float("inf")
    return float(np.sum(p[support] * (np.log(p[support]) - np.log(q[support]))))


def jeffreys(policy: np.ndarray, target: np.ndarray, beta: float) -> float:
    """(1 - beta) KL(target || policy) + beta KL(policy || target): BOND's Jeffreys divergence."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"Jeffreys weight beta must lie in [0, 1], got {beta}")
    forward = kl(target, policy) if beta < 1 else 0.0
    backward = kl(policy, target) if beta > 0 else 0.0
    return (1.0 - beta) * forward + beta * backward


def best_of_n_kl_bound(n: int | np.ndarray) -> np.ndarray | float:
    """log N - (N - 1) / N: KL(pi_BoN || pi_ref), exact when rewards have no ties (an
    upper bound otherwise) — the KL at which the Best-of-N baseline sits on the frontier."""
    n = np.asarray(n, dtype=np.float64)
    if np.any(n < 1):
        raise ValueError("Best-of-N needs N >= 1")
    out = np.log(n) - (n - 1) / n
    return float(out) if out.ndim == 0 else out


def best_of_n_expected_reward(probs: np.ndarray, rewards: np.ndarray, n: int) -> float:
    """E[r] under the exact Best-of-N distribution of `probs [K]`."""
    return float(best_of_n_probs(probs, rewards, n) @ np.asarray(rewards, dtype=np.float64))


# --------------------------------------------------------------------------- sample-based losses (torch)
#
# The learner sees sequences, not distributions: each loss below takes per-sequence
# log-probabilities `[B]` under the policy being trained (with gradient) and returns a
# scalar whose gradient is an unbiased (leave-one-out baseline) estimate of the gradient
# of the divergence it names.


def _leave_one_out(values: torch.Tensor) -> torch.Tensor:
    """Mean of the other entries, `[B]` (the REINFORCE baseline that keeps the gradient unbiased)."""
    count = values.shape[0]
    if count < 2:
        return torch.zeros_like(values)
    return (values.sum() - values) / (count - 1)


def forward_kl_loss(bon_logprob: torch.Tensor) -> torch.Tensor:
    """KL(pi_BoN || pi) up to a constant: -E_{y ~ BoN}[log pi(y)], from Best-of-N samples' log pi `[B]`."""
    return -bon_logprob.mean()


def backward_kl_loss(logprob: torch.Tensor, log_target: torch.Tensor) -> torch.Tensor:
    """A surrogate of KL(pi || target) from samples y ~ pi: `logprob [B]` = log pi(y) (with
    gradient), `log_target [B]` = log target(y) (e.g. the quantile estimate of log pi_BoN).

    grad KL(pi || target) = E_pi[grad log pi(y) * (log pi(y) - log target(y))]; the
    leave-one-out baseline removes variance without bias.
    """
    advantage = (logprob.detach() - log_target).float()
    return ((advantage - _leave_one_out(advantage)) * logprob).mean()


def jeffreys_loss(
    bon_logprob: torch.Tensor, logprob: torch.Tensor, log_target: torch.Tensor, beta: float
) -> torch.Tensor:
    """BOND's Jeffreys divergence surrogate: (1 - beta) forward + beta backward."""
    return (1.0 - beta) * forward_kl_loss(bon_logprob) + beta * backward_kl_loss(logprob, log_target)


def reinforce_kl_loss(
    logprob: torch.Tensor, reward: torch.Tensor, ref_logprob: torch.Tensor, kl_coef: float
) -> torch.Tensor:
    """REINFORCE on the KL-regularised reward r(y) - kl_coef (log pi(y) - log pi_ref(y)),
    y ~ pi; minimising it maximises E_pi[r] - kl_coef KL(pi || pi_ref)."""
    shaped = (reward - kl_coef * (logprob.detach() - ref_logprob)).float()
    return -((shaped - _leave_one_out(shaped)) * logprob).mean()
