"""Best-of-N distillation (BOND, 2407.14622): the mathematics, the sample-based losses,
and the registered `bond` lab that trains BOND, J-BOND and REINFORCE-with-KL side by side
against the Best-of-N baseline.

The part that needs no model comes first. Conventions. A *policy* over a finite set of K outcomes (whole completions) is a
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

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from gamescale.algorithms.base import (
    LearnerSpec,
    Metrics,
    PoolSpec,
    ShardTask,
    State,
    StepContext,
    Stop,
    make_shard_tasks,
)
from gamescale.algorithms.lm.config import METHOD_KINDS, BondConfig  # noqa: F401
from gamescale.algorithms.lm.model import torch_threads
from gamescale.algorithms.lm.reward import (
    RewardModel,
    build_reward_model,
    pairwise_accuracy,
    preference_labels,
    score,
    train_reward_model,
)
from gamescale.algorithms.lm.sampling import sample, sequence_logprob
from gamescale.algorithms.tables import annotate
from gamescale.envs.bond.task import BondTask, BondTaskConfig, build_reference


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


# --------------------------------------------------------------------------- the BOND lab (step interface)
#
# Methods, each trained by its own learner from the reference policy's weights:
#   bond_forward / bond_backward / bond_jeffreys   BOND against Best-of-`n` of the fixed reference,
#       with Jeffreys weight beta = 0 / 1 / `beta`; the backward term uses the quantile estimate
#       log pi_BoN_hat(y) = log pi_ref(y) + (n - 1) log p_le_hat(y) + log B_hat(y) from
#       `anchor_samples` reference samples of the same prompt.
#   jbond   J-BOND: anchor = exponential moving average of the policy's weights
#       (anchor <- (1 - ema_rate) anchor + ema_rate policy after every update), two anchor
#       samples per prompt; forward term on the better of the two (Best-of-2 of the anchor),
#       backward term with log pi_anchor(y) - penalty * 1[y worse than both anchor samples]
#       as the crude two-sample log-Best-of-2 target (penalty `jbond_penalty`, log 16 by default).
#   reinforce_kl   REINFORCE on r_phi(y) - kl_coef (log pi(y) - log pi_ref(y)), one learner per coefficient.
# Best-of-N itself (no training) is evaluated once at init: the true and learned reward of the
# best of N reference samples under r_phi, at KL = log N - (N - 1) / N.





@dataclass(frozen=True)
class Method:
    """One trained policy of the lab: `name` (learner and metric prefix), `kind`, and its
    parameters: Best-of-`n` target, Jeffreys `beta`, `anchor_samples` per prompt, `kl_coef`."""

    name: str
    kind: str
    n: int
    beta: float
    anchor_samples: int
    kl_coef: float = 0.0


def expand_methods(cfg: BondConfig) -> list[Method]:
    out: list[Method] = []
    for kind in cfg.methods:
        if kind == "reinforce_kl":
            for coef in cfg.kl_coefs:
                name = "reinforce_kl" if len(cfg.kl_coefs) == 1 else f"reinforce_kl_{coef:g}"
                out.append(Method(name, kind, 1, 1.0, 0, float(coef)))
        elif kind == "jbond":
            out.append(Method("jbond", kind, 2, cfg.beta, 2))
        else:
            beta = {"bond_forward": 0.0, "bond_backward": 1.0, "bond_jeffreys": cfg.beta}[kind]
            out.append(Method(kind, kind, cfg.n, beta, max(cfg.anchor_samples, cfg.n)))
    return out


# ---- models in a process: built once, weights loaded per call


def _single_threaded(fn: Any) -> Any:
    """Run `fn` with one torch thread: the lab's models are tiny, and on a busy machine
    extra intra-op threads only spin against other processes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch_threads(1):
            return fn(*args, **kwargs)

    return wrapper


_POLICY_CACHE: dict[Any, Any] = {}


def build_policy(task: BondTaskConfig) -> torch.nn.Module:
    """Module factory of every method's learner: the reference policy (its weights are the start)."""
    return build_reference(task)


def _loaded_policy(task: BondTaskConfig, weights: Mapping[str, np.ndarray], slot: str) -> torch.nn.Module:
    key = (task, slot)
    model = _POLICY_CACHE.get(key)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            model = build_reference(task)
        model.eval()
        _POLICY_CACHE[key] = model
    model.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in weights.items()})
    return model


def _loaded_reward_model(vocab_size: int, hidden: int, weights: Mapping[str, np.ndarray]) -> RewardModel:
    key = ("reward", vocab_size, hidden)
    model = _POLICY_CACHE.get(key)
    if model is None:
        model = build_reward_model(vocab_size, hidden, 0)
        model.eval()
        _POLICY_CACHE[key] = model
    model.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in weights.items()})
    return model


def _share(total: int, task: ShardTask) -> int:
    return total // task.num_shards + (1 if task.index < total % task.num_shards else 0)


def _list_column(rows: np.ndarray) -> pa.Array:
    """`[B, W]` ints as a list<int32> column (one list of W ids per row)."""
    return _ragged_list_column([np.asarray(rows)])


def _ragged_list_column(blocks: list[np.ndarray]) -> pa.Array:
    """Blocks `[B_i, W_i]` of ints (widths may differ) stacked as one list<int32> column."""
    lengths = np.concatenate([np.full(len(b), b.shape[1], dtype=np.int64) for b in blocks]) if blocks else np.zeros(0)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(lengths)
    values = np.concatenate([np.ascontiguousarray(b, dtype=np.int32).reshape(-1) for b in blocks]) if blocks else []
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.int32()))


def _rows(column: pa.ChunkedArray | pa.Array, width: int) -> np.ndarray:
    """A list<int32> column back to `[B, width]` int64."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.int64).reshape(-1, width)


@_single_threaded
def generate_shard(env: BondTask, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Shard function: for every method, this shard's prompts, one policy sample per prompt
    and `anchor_samples` anchor samples per prompt, with the log-probabilities the losses need.

    `shared = {"batch_size": prompts per method (all shards), "methods": [(name, anchor_samples)],
    "policy": {name: weights}, "anchor": {name: weights or None (the reference)}}`.
    Rows: one per (method, prompt); sequences are list<int32> columns.
    """
    cfg, P, T = env.config, env.config.prompt_length, env.config.completion_length
    count = _share(int(shared["batch_size"]), task)
    columns: dict[str, list[Any]] = {k: [] for k in ("method", "tokens", "anchor_tokens")}
    floats: dict[str, list[np.ndarray]] = {k: [] for k in ("policy_logprob", "ref_logprob", "anchor_logprob")}
    for index, (name, k) in enumerate(shared["methods"]):
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([task.seed, index]).generate_state(1)[0]))
        policy = _loaded_policy(cfg, shared["policy"][name], "policy")
        prompts = env.sample_prompts(count, generator)
        samples = sample(policy, prompts, T, generator=generator)
        with torch.no_grad():
            ref_logprob = sequence_logprob(env.reference, samples.tokens, P)
            anchor_weights = shared["anchor"].get(name)
            anchor = env.reference if anchor_weights is None else _loaded_policy(cfg, anchor_weights, "anchor")
            anchor_logprob = ref_logprob if anchor_weights is None else sequence_logprob(anchor, samples.tokens, P)
            width = max(int(k), 1)
            anchor_samples = sample(anchor, prompts.repeat_interleave(width, dim=0), T, generator=generator)
        columns["method"].extend([name] * count)
        columns["tokens"].append(samples.tokens.numpy())
        columns["anchor_tokens"].append(anchor_samples.completions.numpy().reshape(count, width * T))
        floats["policy_logprob"].append(samples.logprobs.sum(dim=1).double().numpy())
        floats["ref_logprob"].append(ref_logprob.double().numpy())
        floats["anchor_logprob"].append(anchor_logprob.double().numpy())
    data: dict[str, Any] = {"method": pa.array(columns["method"], pa.string())}
    data["tokens"] = _list_column(np.concatenate(columns["tokens"]))
    data["anchor_tokens"] = _ragged_list_column(columns["anchor_tokens"])
    for key, parts in floats.items():
        data[key] = pa.array(np.concatenate(parts), pa.float64())
    return pa.RecordBatch.from_pydict(data)


@_single_threaded
def score_shard(env: BondTask, shared: dict[str, Any], task: ShardTask) -> pa.RecordBatch:
    """Shard function of the reward pool: learned r_phi and true r* of `task.payload`
    (completions `[M, T]` int) under `shared = {"weights", "hidden"}`."""
    completions = np.asarray(task.payload, dtype=np.int64)
    model = _loaded_reward_model(env.config.vocab_size, int(shared["hidden"]), shared["weights"])
    learned = score(model, completions) if len(completions) else np.zeros(0)
    true = env.true_reward(completions) if len(completions) else np.zeros(0)
    return pa.RecordBatch.from_pydict(
        {"learned": pa.array(learned, pa.float64()), "true": pa.array(true, pa.float64())}
    )


@_single_threaded
def evaluate_policy(task: BondTask, weights: Mapping[str, np.ndarray], num_prompts: int, seed: int) -> dict[str, float]:
    """True reward and Monte-Carlo KL(pi || pi_ref) of a policy (its weights) on
    `num_prompts` fresh prompts, one completion each; with their standard errors."""
    policy = _loaded_policy(task.config, weights, "eval")
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 0xE7A1]).generate_state(1)[0]))
    prompts = task.sample_prompts(num_prompts, generator)
    samples = sample(policy, prompts, task.config.completion_length, generator=generator)
    with torch.no_grad():
        ref = sequence_logprob(task.reference, samples.tokens, task.config.prompt_length).double().numpy()
    log_ratio = samples.logprobs.sum(dim=1).double().numpy() - ref
    true = task.true_reward(samples.completions.numpy())
    root = np.sqrt(max(num_prompts, 1))
    return {
        "reward": float(true.mean()),
        "reward_se": float(true.std() / root),
        "kl_from_reference": float(log_ratio.mean()),
        "kl_se": float(log_ratio.std() / root),
    }


def best_of_n_at_kl(frontier: Mapping[str, np.ndarray], kl: float) -> float:
    """The Best-of-N baseline's true reward at KL `kl`, linear between its points
    (clamped to the first / last point outside them)."""
    return float(np.interp(kl, np.asarray(frontier["kl"]), np.asarray(frontier["true_reward"])))


# ---- the learners' loss


def policy_loss(
    module: torch.nn.Module, batch: pa.RecordBatch, kind: str, beta: float, kl_coef: float, prompt_length: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one method on its batch.

    Columns: `tokens` and `bon_tokens` (list<int32>, prompt + completion), `log_target`
    (float64: the estimate of log pi_BoN(y) of the policy sample), `reward` (r_phi(y)),
    `ref_logprob` (log pi_ref(y)).
    """
    width = module.config.context_length
    tokens = torch.as_tensor(_rows(batch.column("tokens"), width), device=module.head.weight.device)
    metrics: dict[str, float] = {}
    if kind == "reinforce_kl":
        logprob = sequence_logprob(module, tokens, prompt_length)
        reward = torch.as_tensor(np.array(batch.column("reward").to_numpy()), device=tokens.device)
        ref = torch.as_tensor(np.array(batch.column("ref_logprob").to_numpy()), device=tokens.device)
        loss = reinforce_kl_loss(logprob, reward, ref, kl_coef)
        return loss, metrics
    loss = torch.zeros((), device=tokens.device)
    if beta < 1.0:
        bon = torch.as_tensor(_rows(batch.column("bon_tokens"), width), device=tokens.device)
        forward = forward_kl_loss(sequence_logprob(module, bon, prompt_length))
        loss = loss + (1.0 - beta) * forward
        metrics["forward_nll"] = float(forward.detach())
    if beta > 0.0:
        logprob = sequence_logprob(module, tokens, prompt_length)
        log_target = torch.as_tensor(np.array(batch.column("log_target").to_numpy()), device=tokens.device)
        loss = loss + beta * backward_kl_loss(logprob, log_target)
        metrics["backward_kl"] = float((logprob.detach() - log_target).mean())
    return loss, metrics


# ---- the algorithm


def _weights_copy(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in weights.items()}


def _torch_weights(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


class BondLab:
    """BOND, J-BOND and REINFORCE-with-KL side by side against a Best-of-N baseline.

    Learners: one per method (`Method.name`), each a policy starting at the reference.
    Pools: `reward` (reward-model scoring). Each iteration: sampling for iteration t is
    submitted with the samplers' weights, the learners train on the batch of iteration
    t - 1 meanwhile, then the new samples are scored and prepared as the next batch.

    State: `iteration`, `versions` {method: learner updates}, `sampler_version` {method},
    `sampler` {method: weights}, `anchor` {method: weights} (J-BOND), `pending`
    {method: batch columns or empty}, `reward_model` (weights), `frontier` (Best-of-N
    baseline arrays `n`, `kl`, `true_reward`, `learned_reward`), `history` {method: {kl,
    true_reward, learned_reward}} arrays over iterations, `reward_model_accuracy`.
    """

    def __init__(self, config: BondConfig, env: BondTask):
        if not isinstance(env, BondTask):
            raise ValueError(f"bond needs the bond_task environment, got {type(env).__name__}")
        self.config = config
        self.task = env
        self.methods = expand_methods(config)
        self.P = env.config.prompt_length
        self.T = env.config.completion_length

    # -- interface

    def learner_specs(self) -> dict[str, LearnerSpec]:
        factory = functools.partial(build_policy, self.task.config)
        return {
            m.name: LearnerSpec(
                factory,
                functools.partial(policy_loss, kind=m.kind, beta=m.beta, kl_coef=m.kl_coef, prompt_length=self.P),
                self.config.learning_rate,
                "adam",
                seed=i,
            )
            for i, m in enumerate(self.methods)
        }

    def pool_specs(self) -> dict[str, PoolSpec]:
        return {"reward": PoolSpec(workers=1)}  # scoring is light: one actor beside the samplers

    @_single_threaded
    def init(self, seed: int) -> State:
        cfg, task = self.config, self.task
        rm_cfg = cfg.reward_model
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 0x5EED]).generate_state(1)[0]))
        pairs = rm_cfg.num_pairs + rm_cfg.num_eval_pairs
        prompts = task.sample_prompts(pairs, generator)
        a = sample(task.reference, prompts, self.T, generator=generator).completions.numpy()
        b = sample(task.reference, prompts, self.T, generator=generator).completions.numpy()
        true_a, true_b = task.true_reward(a), task.true_reward(b)
        labels = preference_labels(true_a, true_b, rm_cfg.temperature, np.random.default_rng([seed, 7]))
        train = slice(0, rm_cfg.num_pairs)
        model, _ = train_reward_model(rm_cfg, task.config.vocab_size, a[train], b[train], labels[train])
        held = slice(rm_cfg.num_pairs, pairs)
        accuracy = pairwise_accuracy(score(model, a[held]), score(model, b[held]), true_a[held], true_b[held])
        reference = _torch_weights(task.reference)
        return {
            "iteration": 0,
            "reward_model": _torch_weights(model),
            "reward_model_accuracy": accuracy,
            "frontier": self._best_of_n_frontier(model, seed),
            "versions": {m.name: 0 for m in self.methods},
            "sampler_version": {m.name: 0 for m in self.methods},
            "sampler": {m.name: _weights_copy(reference) for m in self.methods},
            "anchor": {m.name: _weights_copy(reference) for m in self.methods if m.kind == "jbond"},
            "pending": {m.name: {} for m in self.methods},
            "history": {
                m.name: {"kl": np.zeros(0), "true_reward": np.zeros(0), "learned_reward": np.zeros(0)}
                for m in self.methods
            },
        }

    def _best_of_n_frontier(self, model: RewardModel, seed: int) -> dict[str, np.ndarray]:
        """True and learned reward of Best-of-N of the reference (selected by r_phi) for each N."""
        cfg, task = self.config, self.task
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 0xB0B]).generate_state(1)[0]))
        largest = max(cfg.frontier_n)
        prompts = task.sample_prompts(cfg.eval_prompts, generator).repeat_interleave(largest, dim=0)
        completions = sample(task.reference, prompts, self.T, generator=generator).completions.numpy()
        learned = score(model, completions).reshape(cfg.eval_prompts, largest)
        true = task.true_reward(completions).reshape(cfg.eval_prompts, largest)
        n = np.array(cfg.frontier_n, dtype=np.int64)
        true_r, learned_r = [], []
        for value in n:
            best = best_index(learned[:, :value])
            rows = np.arange(cfg.eval_prompts)
            true_r.append(true[rows, best].mean())
            learned_r.append(learned[rows, best].mean())
        return {
            "n": n,
            "kl": np.asarray(best_of_n_kl_bound(n.astype(np.float64)), dtype=np.float64).reshape(-1),
            "true_reward": np.array(true_r),
            "learned_reward": np.array(learned_r),
        }

    @_single_threaded
    def step(self, state: State, ctx: StepContext) -> tuple[State, Metrics]:
        cfg = self.config
        shared = {
            "batch_size": cfg.batch_size,
            "methods": [(m.name, m.anchor_samples) for m in self.methods],
            "policy": state["sampler"],
            "anchor": {m.name: state["anchor"].get(m.name) for m in self.methods},
        }
        pending = ctx.shards.submit(generate_shard, ctx.shard_tasks(), shared)

        # The learners train on the previous iteration's batch while the samplers generate.
        versions = dict(state["versions"])
        anchors = dict(state["anchor"])
        metrics: Metrics = {}
        for i, m in enumerate(self.methods):
            columns = state["pending"][m.name]
            if not columns:
                continue
            batch = self._batch(columns, versions[m.name])
            seed = int(np.random.SeedSequence([ctx.seed, ctx.iteration, 11, i]).generate_state(1)[0])
            learned = ctx.learners[m.name].update(batch, cfg.updates_per_iteration, None, seed)
            versions[m.name] += cfg.updates_per_iteration
            metrics[f"{m.name}.loss"] = float(learned["loss"])
            metrics[f"{m.name}.lag"] = float(versions[m.name] - cfg.updates_per_iteration - int(columns["version"][0]))
            if m.kind == "jbond":
                current = ctx.learners[m.name].get_weights()
                anchors[m.name] = {
                    k: ((1.0 - cfg.ema_rate) * anchors[m.name][k] + cfg.ema_rate * current[k]).astype(current[k].dtype)
                    for k in current
                }

        batches = pending.result()
        table = pa.Table.from_batches(batches)
        scored = self._score(ctx, table, state["reward_model"])

        new_pending: dict[str, Any] = {}
        history = {name: dict(h) for name, h in state["history"].items()}
        for m in self.methods:
            rows = np.flatnonzero(np.asarray(table.column("method").to_pylist()) == m.name)
            columns, row_metrics = self._prepare(m, table.take(pa.array(rows)), {k: v[rows] for k, v in scored.items()})
            columns["version"] = np.full(len(rows), int(state["sampler_version"][m.name]), dtype=np.int64)
            new_pending[m.name] = columns
            for key, value in row_metrics.items():
                metrics[f"{m.name}.{key}"] = value
            h = history[m.name]
            history[m.name] = {
                "kl": np.append(h["kl"], row_metrics["kl_from_reference"]),
                "true_reward": np.append(h["true_reward"], row_metrics["reward"]),
                "learned_reward": np.append(h["learned_reward"], row_metrics["learned_reward"]),
            }

        sampler, sampler_version = dict(state["sampler"]), dict(state["sampler_version"])
        if (ctx.iteration + 1) % cfg.weight_sync_every == 0:
            for m in self.methods:
                if versions[m.name] != sampler_version[m.name]:
                    sampler[m.name] = ctx.learners[m.name].get_weights()
                    sampler_version[m.name] = versions[m.name]

        first = self.methods[0].name
        for key in ("reward", "learned_reward", "kl_from_reference"):
            metrics[key] = metrics[f"{first}.{key}"]
        metrics["reference_reward"] = (
            float(state["frontier"]["true_reward"][0]) if 1 in cfg.frontier_n else float("nan")
        )
        metrics["reward_model_accuracy"] = float(state["reward_model_accuracy"])
        lags = [v for k, v in metrics.items() if k.endswith(".lag")]
        if lags:
            metrics["lag"] = float(np.mean(lags))
        new_state = {
            **state,
            "iteration": int(state["iteration"]) + 1,
            "versions": versions,
            "sampler_version": sampler_version,
            "sampler": sampler,
            "anchor": anchors,
            "pending": new_pending,
            "history": history,
        }
        return new_state, metrics

    # -- pieces of a step

    def _score(
        self, ctx: StepContext, table: pa.Table, reward_weights: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Learned and true reward of every policy sample and anchor sample, on the reward pool.

        Returns `learned`, `true` `[rows]` (policy samples) and `anchor_learned`,
        `anchor_true` `[rows, k_max]` (NaN past a method's own k)."""
        P, T = self.P, self.T
        policy = _rows(table.column("tokens"), P + T)[:, P:]
        anchor_lists = table.column("anchor_tokens").to_pylist()
        widths = np.array([len(x) // T for x in anchor_lists], dtype=np.int64)
        anchor = np.array([t for row in anchor_lists for t in row], dtype=np.int64).reshape(-1, T)
        everything = np.concatenate([policy, anchor])
        parts = np.array_split(everything, max(ctx.num_shards, 1))
        runner = ctx.pools.get("reward", ctx.shards)
        tasks = make_shard_tasks(ctx.seed, ctx.iteration, len(parts), payloads=[p.astype(np.int32) for p in parts])
        hidden = self.config.reward_model.hidden
        scored = pa.Table.from_batches(runner.map(score_shard, tasks, {"weights": reward_weights, "hidden": hidden}))
        learned = scored.column("learned").to_numpy()
        true = scored.column("true").to_numpy()
        rows = len(policy)
        k_max = int(widths.max()) if len(widths) else 0
        anchor_learned = np.full((rows, k_max), np.nan)
        anchor_true = np.full((rows, k_max), np.nan)
        mask = np.arange(k_max)[None, :] < widths[:, None]
        anchor_learned[mask] = learned[rows:]
        anchor_true[mask] = true[rows:]
        return {
            "learned": learned[:rows],
            "true": true[:rows],
            "anchor_learned": anchor_learned,
            "anchor_true": anchor_true,
        }

    def _prepare(
        self, m: Method, table: pa.Table, scored: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The next training batch of method `m` (numpy columns) and its sample metrics."""
        P, T = self.P, self.T
        tokens = _rows(table.column("tokens"), P + T)
        policy_logprob = table.column("policy_logprob").to_numpy()
        ref_logprob = table.column("ref_logprob").to_numpy()
        anchor_logprob = table.column("anchor_logprob").to_numpy()
        reward = scored["learned"]
        k = max(m.anchor_samples, 1)
        anchor_reward = scored["anchor_learned"][:, :k]
        anchor_tokens = np.array(table.column("anchor_tokens").to_pylist(), dtype=np.int64).reshape(len(tokens), k, T)
        if m.kind == "jbond":
            worse = np.all(reward[:, None] < anchor_reward, axis=1)
            log_target = anchor_logprob - self.config.jbond_penalty * worse
        elif m.kind == "reinforce_kl":
            log_target = np.zeros(len(tokens))
        else:
            log_target = log_best_of_n_estimate(anchor_logprob, reward, anchor_reward, m.n, prior=1.0)
        # Best-of-n of the anchor samples (the first n of them), by the learned reward.
        n = min(m.n, k)
        best = best_index(anchor_reward[:, :n])
        bon = np.concatenate([tokens[:, :P], anchor_tokens[np.arange(len(tokens)), best]], axis=1)
        columns = {
            "tokens": tokens,
            "bon_tokens": bon,
            "log_target": log_target.astype(np.float64),
            "reward": reward.astype(np.float64),
            "ref_logprob": ref_logprob.astype(np.float64),
        }
        kl = float(np.mean(policy_logprob - ref_logprob))
        metrics = {
            "reward": float(np.mean(scored["true"])),
            "learned_reward": float(np.mean(reward)),
            "kl_from_reference": kl,
        }
        return columns, metrics

    def _batch(self, columns: Mapping[str, np.ndarray], learner_version: int) -> pa.RecordBatch:
        data: dict[str, Any] = {
            "tokens": _list_column(columns["tokens"]),
            "bon_tokens": _list_column(columns["bon_tokens"]),
        }
        for key in ("log_target", "reward", "ref_logprob"):
            data[key] = pa.array(np.asarray(columns[key], dtype=np.float64))
        lag = learner_version - np.asarray(columns["version"], dtype=np.int64)
        data["lag"] = pa.array(lag.astype(np.int64))
        return pa.RecordBatch.from_pydict(data)

    def should_stop(self, state: State, metrics: Metrics) -> Stop | None:
        target = self.config.target_reward
        if target is not None and metrics.get("reward", float("-inf")) >= target:
            return Stop("target", f"{self.methods[0].name} reached true reward {metrics['reward']:.4g} >= {target:g}")
        return None

    @_single_threaded
    def summary(self, state: State) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reward_model_accuracy": float(state["reward_model_accuracy"]),
            "reference_reward": float(state["frontier"]["true_reward"][0]),
            "best_of_n": {
                int(n): {"kl": float(k), "reward": float(r)}
                for n, k, r in zip(
                    state["frontier"]["n"], state["frontier"]["kl"], state["frontier"]["true_reward"], strict=True
                )
            },
        }
        for m in self.methods:
            final = evaluate_policy(self.task, state["sampler"][m.name], self.config.eval_prompts, 1)
            final["best_of_n_reward_at_same_kl"] = best_of_n_at_kl(state["frontier"], final["kl_from_reference"])
            out[m.name] = final
        return out

    def tables(self, state: State) -> dict[str, pa.Table]:
        """`frontier`: one row per (method, iteration) and per Best-of-N point (step -1,
        best_of_n = N; null on training rows): method, step, kl_from_reference, reward (true),
        learned_reward; annotated with the methods in order (the first is the headline). The
        report draws plots/reward_vs_kl.png from it."""
        method, step, kl, true_r, learned_r, best_of = [], [], [], [], [], []
        for name, h in state["history"].items():
            count = len(h["kl"])
            method += [name] * count
            step += list(range(count))
            kl += list(h["kl"])
            true_r += list(h["true_reward"])
            learned_r += list(h["learned_reward"])
            best_of += [None] * count
        f = state["frontier"]
        for n, k, r, lr in zip(f["n"], f["kl"], f["true_reward"], f["learned_reward"], strict=True):
            method.append(f"best_of_{int(n)}")
            step.append(-1)
            kl.append(float(k))
            true_r.append(float(r))
            learned_r.append(float(lr))
            best_of.append(int(n))
        table = pa.table(
            {
                "method": pa.array(method, pa.string()),
                "step": pa.array(step, pa.int64()),
                "kl_from_reference": pa.array(kl, pa.float64()),
                "reward": pa.array(true_r, pa.float64()),
                "learned_reward": pa.array(learned_r, pa.float64()),
                "best_of_n": pa.array(best_of, pa.int64()),
            }
        )
        return {"frontier": annotate(table, methods=list(state["history"]))}
