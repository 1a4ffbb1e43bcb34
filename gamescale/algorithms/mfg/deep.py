"""Deep RL for mean-field games (2203.11973): deep average-network fictitious play (D-AFP)
and deep Munchausen online mirror descent (D-MOMD).

Both learn from transitions of particles simulated on rollout shards against a fixed
mean-field flow, with neural networks of `(t, s)`. The state space is finite, so a network
is also evaluated on ALL `(t, s)` at once to give a policy table `[T, S, A]`: particles
play that table, its flow is propagated exactly (the mean field the rewards are computed
from), and its exploitability is evaluated exactly, on the same scale as the exact solvers.

D-AFP, iteration k (the mean field is that of the average-policy network pi_bar):

1. mu = propagate(pi_bar) `[T + 1, S]`;
2. particles play epsilon-greedy(Q) against mu -> transitions (t, s, a, r, s');
3. fitted Q (DQN with a target network refreshed `q_rounds` times):
   y = r + max_{a' legal} Q_target(t + 1, s', a')  (no bootstrap at t = T - 1);
4. particles play the greedy best response argmax Q against mu; their (t, s, a) pairs go
   into a fixed-capacity reservoir (uniform over every pair ever offered, so over the
   best responses of all iterations, weighted by the distributions they induce);
5. pi_bar is trained by cross-entropy on the reservoir (the averaging of fictitious play
   done by distillation, without mixing networks).

D-MOMD, iteration k (one Q-network, pi_k = softmax(q_k / tau) over legal actions):

1. mu = propagate(pi_k); particles play (1 - epsilon) pi_k + epsilon uniform against mu;
2. fitted Q on the Munchausen target, with log pi_k from the previous iteration's weights:
   y = r + tau * log pi_k(a | t, s) + tau * logsumexp_{a' legal} q_target(t + 1, s', a') / tau,
   whose fixed point is pi_{k+1} proportional to pi_k * exp(Q_{k+1} / tau): the Q-network
   implicitly sums the past Q-functions as OMD (learning rate 1 / tau) does.

Randomness comes from `np.random.default_rng([seed, iteration, purpose])` and the shard
tasks, never from generators kept across steps, so a resumed run reproduces an
uninterrupted one. The networks live in the learners (`ctx.learners["q"]`,
`ctx.learners["policy"]`); the algorithm reads their weights and evaluates them on the
full grid in numpy (`NetworkTable`). The fitted-Q rounds run inside the Q learner
(`LearnerHandle.fit`): it refreshes the targets itself from its weights with
`greedy_targets` / `soft_targets` (the same numpy code the driver would run), so a round
costs no weights read, batch transfer or call from the driver. The torch modules and losses are in `deep_networks`,
named by strings, so neither the driver nor the rollout workers import torch (each
would hold ~130 MiB more); only the learners do.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from gamescale.algorithms.base import Deferred, LearnerSpec, State, StepContext
from gamescale.algorithms.mfg.config import DeepAFPConfig, DeepMOMDConfig, _DeepConfig  # noqa: F401
from gamescale.algorithms.mfg.evaluation import best_response, exploitability, policy_value, propagate
from gamescale.algorithms.mfg.transitions import (  # noqa: F401  (re-exported: tests and users find them here)
    TRANSITIONS_SCHEMA,
    collect,
    simulate_transitions,
    transitions_shard,
)
from gamescale.algorithms.row_blocks import for_row_blocks
from gamescale.envs.mfg.game import MeanFieldGame

# --------------------------------------------------------------------------- networks
# The torch modules and losses live in `deep_networks` and are named by strings
# (`Deferred`), so the driver, which only reads weights, never imports torch.

NETWORKS = "gamescale.algorithms.mfg.deep_networks"
_MOVED = ("TimeStateNetwork", "make_network", "regression_loss", "cross_entropy_loss")


def __getattr__(name: str) -> Any:
    """The torch names that moved to `deep_networks` (imported, with torch, on first use)."""
    if name in _MOVED:
        return getattr(importlib.import_module(NETWORKS), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class NetworkTable:
    """Evaluates a `TimeStateNetwork` on every `(t, s)` from its weights, in numpy:
    `table(weights) -> [T, S, A]` float64.

    The first layer is `state_embedding[s] + time_embedding[t] + bias`, so on the full grid
    it is a broadcast sum `[T, S, W]`; then ReLU and `head.<i>` linear layers in order, in
    float32 as the learner computes them (agreement with the torch module is tested).
    The layers are computed in place in buffers kept between calls: fresh `[T, S, W]`
    temporaries (3.4 MB on four rooms) cost page faults on every call: a table took about
    13 ms per target refresh in a D-MOMD learner (py-spy), and 11.6-12.3 ms against 4.2-5.0 ms
    in place in a fresh process. So one
    evaluator serves one caller at a time (the driver's step, a learner actor's calls).
    The time rows are computed in blocks on the process's row threads (`row_blocks`: a
    learner actor gets the cores of the rollout workers that wait while it fits), with the
    same values whatever the blocks (tested).
    """

    def __init__(self, horizon: int, num_states: int):
        self.shape = (horizon, num_states)
        self._buffers: dict[int, np.ndarray] = {}

    def _buffer(self, layer: int, shape: tuple[int, ...]) -> np.ndarray:
        found = self._buffers.get(layer)
        if found is None or found.shape != shape:
            found = self._buffers[layer] = np.empty(shape, dtype=np.float32)
        return found

    def __call__(self, weights: Mapping[str, np.ndarray]) -> np.ndarray:
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items() if k != "legal"}
        time_rows, state_rows = w["time_embedding.weight"], w["state_embedding.weight"]
        if (len(time_rows), len(state_rows)) != self.shape:
            raise ValueError(
                f"network table {(len(time_rows), len(state_rows))} does not match (horizon, states) {self.shape}"
            )
        heads = sorted(
            {int(k.split(".")[1]) for k in w if k.startswith("head.")}  # head.1, head.3, ...: the Linear layers
        )
        layers = [(w[f"head.{index}.weight"].T, w[f"head.{index}.bias"]) for index in heads]
        buffers = [self._buffer(0, (*self.shape, time_rows.shape[1]))]
        buffers += [self._buffer(layer, (*self.shape, weight.shape[1])) for layer, (weight, _) in enumerate(layers, 1)]

        def time_block(start: int, stop: int) -> None:
            # rows t in [start, stop) alone: elementwise ufuncs, and one BLAS product per t
            hidden = buffers[0][start:stop]
            np.add(time_rows[start:stop, None, :], state_rows[None, :, :], out=hidden)
            hidden += w["bias"]
            for (weight, bias), buffer in zip(layers, buffers[1:], strict=True):
                np.maximum(hidden, 0.0, out=hidden)
                out = buffer[start:stop]
                np.matmul(hidden, weight, out=out)
                out += bias
                hidden = out

        for_row_blocks(time_block, self.shape[0])
        return buffers[-1].astype(np.float64)


@functools.lru_cache(maxsize=8)
def _network_table(horizon: int, num_states: int) -> NetworkTable:
    """One table evaluator (and its buffers) per grid in this process, for the target functions."""
    return NetworkTable(horizon, num_states)


def masked_log_softmax(logits: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """log softmax over legal actions of `logits [..., S, A]` (`legal [S, A]`); -inf on illegal."""
    masked = np.where(legal, logits, -np.inf)
    shifted = masked - masked.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def masked_softmax(logits: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """Softmax over legal actions `[..., S, A]`; exactly zero on illegal actions."""
    return np.exp(masked_log_softmax(logits, legal))


def greedy_table(q: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """Argmax policy `[T, S, A]` over legal actions (ties -> lowest action)."""
    best = np.argmax(np.where(legal, q, -np.inf), axis=-1)
    policy = np.zeros(q.shape)
    np.put_along_axis(policy, best[..., None], 1.0, axis=-1)
    return policy


def uniform_table(legal: np.ndarray, horizon: int) -> np.ndarray:
    """Uniform over legal actions, `[T, S, A]`."""
    per_state = legal / legal.sum(axis=-1, keepdims=True)
    return np.broadcast_to(per_state, (horizon, *legal.shape)).astype(np.float64)


def _bootstrapped(value: np.ndarray, batch: pa.RecordBatch, horizon: int) -> np.ndarray:
    """`reward + value[t + 1, next_state]` per transition, without bootstrap at t = T - 1."""
    t = batch.column("t").to_numpy()
    bootstrap = value[np.minimum(t + 1, horizon - 1), batch.column("next_state").to_numpy()]
    return batch.column("reward").to_numpy() + np.where(t == horizon - 1, 0.0, bootstrap)


def greedy_targets(
    weights: Mapping[str, np.ndarray], batch: pa.RecordBatch, *, horizon: int, num_states: int, legal: np.ndarray
) -> np.ndarray:
    """D-AFP's Q targets (`LearnerHandle.fit`): r + max over legal a' of Q_target(t + 1, s', a')."""
    q = _network_table(horizon, num_states)(weights)
    return _bootstrapped(np.where(legal, q, -np.inf).max(axis=-1), batch, horizon)


def soft_targets(
    weights: Mapping[str, np.ndarray],
    batch: pa.RecordBatch,
    *,
    horizon: int,
    num_states: int,
    legal: np.ndarray,
    tau: float,
) -> np.ndarray:
    """D-MOMD's Q targets (`LearnerHandle.fit`): r + tau * logsumexp over legal a' of
    q_target(t + 1, s', a') / tau (the Munchausen term is already in the batch's reward)."""
    scaled = np.where(legal, _network_table(horizon, num_states)(weights) / tau, -np.inf)
    top = scaled.max(axis=-1)
    soft_value = tau * (top + np.log(np.exp(scaled - top[..., None]).sum(axis=-1)))  # [T, S]
    return _bootstrapped(soft_value, batch, horizon)


# --------------------------------------------------------------------------- reservoir


def reservoir_add(
    buffer: Mapping[str, np.ndarray], seen: int, items: Mapping[str, np.ndarray], rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], int]:
    """Reservoir sampling (Vitter's algorithm R), vectorised over the new items.

    `buffer` holds columns of capacity C; `seen` items were offered before. Item number n
    (0-based, over all time) fills slot n while n < C, else replaces slot j ~ U{0..n} when
    j < C. Later items win a slot drawn twice, as in the sequential algorithm, so the
    buffer is a uniform sample of every item ever offered. Returns (new buffer, new seen).
    """
    capacity = len(next(iter(buffer.values())))
    count = len(next(iter(items.values())))
    index = seen + np.arange(count)  # global item numbers
    slot = np.where(index < capacity, index, rng.integers(0, index + 1))
    accepted = np.flatnonzero(slot < capacity)
    _, last_rev = np.unique(slot[accepted][::-1], return_index=True)
    keep = accepted[len(accepted) - 1 - last_rev]  # the last item per slot
    new = {name: column.copy() for name, column in buffer.items()}
    for name in new:
        new[name][slot[keep]] = items[name][keep]
    return new, seen + count


# --------------------------------------------------------------------------- shared shell


class _DeepShell:
    def __init__(self, config: _DeepConfig, game: MeanFieldGame):
        if not isinstance(game, MeanFieldGame):
            raise ValueError(f"{config.name} needs a single-population mean-field game, got {type(game).__name__}")
        self.config = config
        self.game = game
        self.T, self.S, self.A = game.horizon, game.num_states, game.num_actions
        self.legal = game.legal_actions
        self.factory = Deferred(
            f"{NETWORKS}:make_network", (self.S, self.T, self.A, tuple(config.hidden_sizes), self.legal)
        )
        # Networks whose softmax is the played policy start uniform (near-uniform exploitability).
        self.uniform_factory = functools.partial(self.factory, zero_head=True)
        # Not named `tables`: the framework calls an algorithm's `tables(state)` at the end of a run.
        self.evaluate_network = NetworkTable(self.T, self.S)

    def _sample(
        self, ctx: StepContext, policy: np.ndarray, mu: np.ndarray, n: int, stream: int
    ) -> dict[str, np.ndarray]:
        shared = {"policy": policy, "mu": mu, "num_particles": n, "stream": stream}
        return collect(ctx.shards.map(transitions_shard, ctx.shard_tasks(), shared=shared))

    def _fit_q(
        self, ctx: StepContext, data: dict[str, np.ndarray], reward: np.ndarray, target_fn: Any
    ) -> tuple[np.ndarray, float]:
        """Fitted Q: `q_rounds` target refreshes, each `q_steps_per_round` regression steps,
        run in the learner (`LearnerHandle.fit`): `target_fn(weights, batch)` builds the
        targets from the network as it is at the start of each round (the target network).
        Returns the final Q table and the last regression loss."""
        cfg, learner = self.config, ctx.learners["q"]
        batch = pa.RecordBatch.from_pydict(
            {
                "t": data["t"],
                "state": data["state"],
                "action": data["action"],
                "reward": reward,
                "next_state": data["next_state"],
            }
        )
        seeds = [
            int(np.random.SeedSequence([ctx.seed, ctx.iteration, 1, round_]).generate_state(1)[0])
            for round_ in range(cfg.q_rounds)
        ]
        metrics = learner.fit(batch, target_fn, seeds, cfg.q_steps_per_round, min(cfg.batch_size, batch.num_rows))
        return self.evaluate_network(learner.get_weights()), float(metrics["q_loss"])

    def _spec(self, factory: Any, loss: str, learning_rate: float, seed: int) -> LearnerSpec:
        """An Adam learner (fused) of a `(t, s)` network with a loss of `deep_networks`
        ("regression" or "cross_entropy"), trained through its hand-derived gradient."""
        return LearnerSpec(
            factory,
            Deferred(f"{NETWORKS}:{loss}_loss"),
            learning_rate,
            "adam",
            seed=seed,
            gradient_slices=self.config.gradient_slices,
            gradient_fn=Deferred(f"{NETWORKS}:{loss}_gradient"),
            fused_adam=True,
        )

    def _br_regret(self, q: np.ndarray, mu: np.ndarray) -> float:
        """How far the greedy policy of the learned Q is from the exact best response to mu."""
        _, best = best_response(self.game, mu)
        value = policy_value(self.game, greedy_table(q, self.legal), mu)
        return float(self.game.initial_distribution @ (best[0] - value[0]))

    def summary(self, state: State) -> dict[str, Any]:
        return {"exploitability": float(state["exploitability"]), "iterations": int(state["iteration"])}


# --------------------------------------------------------------------------- D-AFP


class DeepAverageFictitiousPlay(_DeepShell):
    """D-AFP; learners `q` (best-response Q-network) and `policy` (average-policy network).

    State: `iteration` int, `exploitability` float, `reservoir_seen` int, and the reservoir
    columns `reservoir_t`, `reservoir_state`, `reservoir_action`, each `[reservoir_size]` int32
    (the first `min(seen, size)` entries are filled; an older checkpoint's int64 columns
    resume as they are).
    """

    config: DeepAFPConfig

    def learner_specs(self) -> dict[str, LearnerSpec]:
        cfg = self.config
        return {
            "q": self._spec(self.factory, "regression", cfg.q_learning_rate, seed=1),
            "policy": self._spec(self.uniform_factory, "cross_entropy", cfg.policy_learning_rate, seed=2),
        }

    def init(self, seed: int) -> State:
        del seed  # networks are seeded by their specs; sampling by (seed, iteration)
        size = self.config.reservoir_size
        return {
            "iteration": 0,
            "exploitability": float("nan"),
            "reservoir_seen": 0,
            "reservoir_t": np.zeros(size, dtype=np.int32),
            "reservoir_state": np.zeros(size, dtype=np.int32),
            "reservoir_action": np.zeros(size, dtype=np.int32),
        }

    def average_policy(self, ctx: StepContext) -> np.ndarray:
        """The average policy `[T, S, A]`: softmax(logits / policy_temperature) over legal actions
        (the network is trained at temperature 1; OpenSpiel plays it at temperature 10)."""
        logits = self.evaluate_network(ctx.learners["policy"].get_weights())
        return masked_softmax(logits / self.config.policy_temperature, self.legal)

    def step(self, state: State, ctx: StepContext) -> tuple[State, dict[str, float]]:
        cfg, game, T = self.config, self.game, self.T
        mu = propagate(game, self.average_policy(ctx))  # the mean field of pi_bar, [T + 1, S]

        q_now = self.evaluate_network(ctx.learners["q"].get_weights())
        explore = (1 - cfg.epsilon) * greedy_table(q_now, self.legal) + cfg.epsilon * uniform_table(self.legal, T)
        data = self._sample(ctx, explore, mu, cfg.num_particles, stream=0)
        reward = data["reward"] * cfg.reward_scale  # a positive scale leaves argmax Q unchanged
        target = functools.partial(greedy_targets, horizon=T, num_states=self.S, legal=self.legal)
        q, q_loss = self._fit_q(ctx, data, reward, target)
        br = greedy_table(q, self.legal)
        pairs = self._sample(ctx, br, mu, cfg.br_particles, stream=1)

        buffer = {"t": state["reservoir_t"], "state": state["reservoir_state"], "action": state["reservoir_action"]}
        items = {"t": pairs["t"], "state": pairs["state"], "action": pairs["action"]}
        rng = np.random.default_rng([ctx.seed, ctx.iteration, 2])
        buffer, seen = reservoir_add(buffer, int(state["reservoir_seen"]), items, rng)
        filled = min(seen, cfg.reservoir_size)
        batch = pa.RecordBatch.from_pydict({name: column[:filled] for name, column in buffer.items()})
        seed = int(np.random.SeedSequence([ctx.seed, ctx.iteration, 3]).generate_state(1)[0])
        policy_metrics = ctx.learners["policy"].update(
            batch, cfg.policy_steps, min(cfg.policy_batch_size, filled), seed
        )

        exploit = exploitability(game, self.average_policy(ctx))
        new_state = {
            "iteration": int(state["iteration"]) + 1,
            "exploitability": exploit,
            "reservoir_seen": seen,
            "reservoir_t": buffer["t"],
            "reservoir_state": buffer["state"],
            "reservoir_action": buffer["action"],
        }
        metrics = {
            "exploitability": exploit,
            "q_loss": q_loss,
            "policy_loss": float(policy_metrics["policy_loss"]),
            "br_regret": self._br_regret(q, mu),
            "reservoir_filled": float(filled),
        }
        return new_state, metrics


# --------------------------------------------------------------------------- D-MOMD


class DeepMunchausenMirrorDescent(_DeepShell):
    """D-MOMD; one learner `q` whose softmax(q / tau) is the policy.

    State: `iteration` int, `exploitability` float (the networks hold everything else).
    """

    config: DeepMOMDConfig

    def learner_specs(self) -> dict[str, LearnerSpec]:
        return {"q": self._spec(self.uniform_factory, "regression", self.config.q_learning_rate, seed=1)}

    def init(self, seed: int) -> State:
        del seed
        return {"iteration": 0, "exploitability": float("nan")}

    def policy(self, q: np.ndarray) -> np.ndarray:
        """softmax(q / tau) over legal actions, `[T, S, A]`."""
        return masked_softmax(q / self.config.tau, self.legal)

    def step(self, state: State, ctx: StepContext) -> tuple[State, dict[str, float]]:
        cfg, game, T, tau = self.config, self.game, self.T, self.config.tau
        q_prev = self.evaluate_network(ctx.learners["q"].get_weights())  # q_k, [T, S, A]
        log_pi = masked_log_softmax(q_prev / tau, self.legal)  # log pi_k, -inf on illegal
        pi = np.exp(log_pi)
        mu = propagate(game, pi)
        behaviour = (1 - cfg.epsilon) * pi + cfg.epsilon * uniform_table(self.legal, T)
        data = self._sample(ctx, behaviour, mu, cfg.num_particles, stream=0)
        munchausen = log_pi[data["t"], data["state"], data["action"]]
        if cfg.log_policy_floor is not None:
            munchausen = np.maximum(munchausen, cfg.log_policy_floor)
        reward = data["reward"] + tau * munchausen
        target = functools.partial(soft_targets, horizon=T, num_states=self.S, legal=self.legal, tau=tau)
        q, q_loss = self._fit_q(ctx, data, reward, target)
        policy = self.policy(q)
        exploit = exploitability(game, policy)
        entropy = -(np.where(policy > 0, policy * np.log(np.where(policy > 0, policy, 1.0)), 0.0)).sum(-1)
        metrics = {
            "exploitability": exploit,
            "q_loss": q_loss,
            "policy_entropy": float((propagate(game, policy)[:-1] * entropy).sum() / T),
        }
        return {"iteration": int(state["iteration"]) + 1, "exploitability": exploit}, metrics
