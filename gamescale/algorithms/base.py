"""The step interface every algorithm speaks, and the in-process pieces that drive it.

An algorithm never knows whether it runs in one process or over many Ray actors: the
framework hands it a `StepContext` whose `shards` runner and `learners` are either the
in-process ones defined here or Ray-backed ones from `gamescale.framework`.

The loop an algorithm lives in::

    algorithm = build_algorithm(config.algorithm, env)
    state = algorithm.init(seed)
    for iteration in range(num_iterations):
        ctx = StepContext(iteration=iteration, seed=seed, shards=runner, learners=learners)
        state, metrics = algorithm.step(state, ctx)     # metrics: {"exploitability": ...}

An algorithm may also say it is finished: the optional `should_stop(state, metrics)`
returns a `Stop` (converged, target reached, budget spent) and the loop ends the run
after that iteration's row, recording the reason in `summary.json`.

Sampling may overlap with learning: `ctx.shards.submit(fn, tasks, shared)` starts the
shards and returns a `PendingBatches` at once; the algorithm trains on its learner and
only then calls `.result()`. In one process `submit` simply computes eagerly, so the
numbers are the same; on actors the two run at the same time. Algorithms that need a
second set of actors (reward-model scoring beside generation) name them in the optional
`pool_specs()`; they arrive as `ctx.pools[name]`, each a `ShardRunner`.

`state` is a nested dict of numpy arrays and Python scalars (str, int, float, bool),
so the framework can checkpoint it without pickling code. All randomness comes from
`shard_seed(seed, iteration, shard)`, never from a generator kept in the state, so a
resumed run and a run spread over any number of workers draw the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

State = dict[str, Any]
Metrics = dict[str, float]

# A shard function runs where the environment lives (an actor, or this process):
#   fn(env, shared, task) -> pa.RecordBatch
# `env` is the environment built once per worker from the run's env config, `shared` is
# one payload common to every shard of the call (policy arrays, weights), `task` says
# which shard this is and how to seed it. It must be a module-level function (picklable).
ShardFn = Callable[[Any, Any, "ShardTask"], pa.RecordBatch]


def shard_seed(seed: int, iteration: int, shard: int) -> int:
    """A 63-bit seed for one shard of one iteration; independent of how shards are placed."""
    words = np.random.SeedSequence([int(seed), int(iteration), int(shard)]).generate_state(2)
    return int((int(words[0]) << 31) ^ int(words[1])) & ((1 << 63) - 1)


@dataclass(frozen=True)
class ShardTask:
    """One unit of sampling work: shard `index` of `num_shards`, with its own `seed`."""

    index: int
    num_shards: int
    seed: int
    payload: Any = None

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


def make_shard_tasks(
    seed: int, iteration: int, num_shards: int, payloads: Sequence[Any] | None = None
) -> list[ShardTask]:
    """The shard tasks of one call, seeded per (run seed, iteration, shard)."""
    if payloads is not None and len(payloads) != num_shards:
        raise ValueError(f"got {len(payloads)} payloads for {num_shards} shards")
    return [
        ShardTask(
            index=i,
            num_shards=num_shards,
            seed=shard_seed(seed, iteration, i),
            payload=None if payloads is None else payloads[i],
        )
        for i in range(num_shards)
    ]


@runtime_checkable
class PendingBatches(Protocol):
    """Shards started by `ShardRunner.submit`; `result()` waits and returns them in task order."""

    def result(self) -> list[pa.RecordBatch]: ...


class DoneBatches:
    """A `PendingBatches` whose batches are already computed (the in-process runner)."""

    def __init__(self, batches: list[pa.RecordBatch]):
        self.batches = batches

    def result(self) -> list[pa.RecordBatch]:
        return self.batches


@runtime_checkable
class ShardRunner(Protocol):
    """Runs a shard function over tasks and returns the batches in task order."""

    num_workers: int

    def map(self, fn: ShardFn, tasks: Sequence[ShardTask], shared: Any = None) -> list[pa.RecordBatch]: ...

    def submit(self, fn: ShardFn, tasks: Sequence[ShardTask], shared: Any = None) -> PendingBatches: ...


class LocalShardRunner:
    """Runs every shard in this process, on one environment instance."""

    num_workers = 1

    def __init__(self, env: Any):
        self.env = env

    def map(self, fn: ShardFn, tasks: Sequence[ShardTask], shared: Any = None) -> list[pa.RecordBatch]:
        return [fn(self.env, shared, task) for task in tasks]

    def submit(self, fn: ShardFn, tasks: Sequence[ShardTask], shared: Any = None) -> PendingBatches:
        return DoneBatches(self.map(fn, tasks, shared))


@dataclass(frozen=True)
class PoolSpec:
    """A named set of actors an algorithm needs beside the run's rollout workers.

    `env` is the environment config its actors build (None: the run's own env);
    `workers` None means `runtime.workers`; `cpus` is what each of its actors reserves
    (a fraction for light work such as reward scoring beside the samplers).
    """

    env: Mapping[str, Any] | None = None
    workers: int | None = None
    cpus: float = 1.0


@dataclass(frozen=True)
class Stop:
    """An algorithm's word that its run is finished.

    `reason` is "converged", "target" or "budget"; `message` says it in the algorithm's
    words (it is written to summary.json and shown on the console).
    """

    reason: str
    message: str


@dataclass(frozen=True)
class Deferred:
    """A function named by `"module:attribute"`, with leading arguments bound, imported
    only when called: `Deferred("pkg.nets:make_network", (64,))(zero_head=True)`.

    A learner spec built from these travels to a learner actor without the driver ever
    importing the module that defines them (for example torch networks), so a driver that
    only reads weights stays torch-free.
    """

    target: str
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from gamescale.envs.registry import resolve

        return resolve(self.target)(*self.args, *args, **{**self.kwargs, **kwargs})


@dataclass(frozen=True)
class LearnerSpec:
    """What a learner owns: a torch module built by `module_factory()`, an Adam-family
    optimizer, and `loss_fn(module, batch: pa.RecordBatch) -> (loss tensor, metrics)`.

    Both callables must be module-level functions (or functools.partial of them, or a
    `Deferred`) so the spec can travel to a learner actor.

    `gradient_slices` K > 1 computes each minibatch's gradient as the row-weighted sum of
    the gradients of K contiguous slices, summed in slice order (so `loss_fn` should be a
    mean over rows, as the minibatch mean is the row-weighted mean of the slice means).
    Data-parallel learner replicas (`runtime.learner_replicas`) split the K slices between
    them and gather the slice gradients, so an update is bit-identical with 1 replica and
    with any R dividing K: K is part of the numerical recipe, R only of the speed.

    `gradient_fn(module, columns, num_slices) -> (grads, metrics)`, optional, computes the
    gradients of `loss_fn` itself, without autograd, on `num_slices` equal contiguous slices
    of a minibatch at once. `columns` is the minibatch as tensors on the learner's device,
    rows first (`learner.arrow_tensors`: integer columns int64, list columns `[rows, length]`),
    read-only: the learner takes and converts the rows of many steps at once and hands out
    views. It returns one tensor `[num_slices, *p.shape]` per `module.parameters()` entry
    (slice j's gradient of its own mean loss), and metrics `{name: [num_slices] tensor}`
    with the loss under "loss". Slice j's values must not depend, bit for bit, on the other
    slices of the call (batch every operation over a leading slice axis), since replicas
    group the K slices differently. A small network's autograd step is mostly dispatch and
    bookkeeping, so a hand-derived backward pass makes each step cheaper, and computing a
    replica's slices in one pass costs what one unsliced pass costs
    (`algorithms/mfg/deep_networks.py`). `loss_fn` stays the definition (and what tests
    compare to).

    `fused_adam` runs Adam as one fused kernel per tensor instead of a dozen elementwise
    ops: the same update, rounded differently. It changes a family's seeded results, so a
    family opts in when it has re-measured them (the deep mean-field learners do).
    """

    module_factory: Callable[[], Any]
    loss_fn: Callable[[Any, pa.RecordBatch], tuple[Any, dict[str, float]]]
    learning_rate: float = 1e-3
    optimizer: str = "adam"  # "adam" or "sgd"
    seed: int = 0
    gradient_slices: int = 1
    gradient_fn: Callable[[Any, Mapping[str, Any], int], tuple[list[Any], dict[str, Any]]] | None = None
    fused_adam: bool = False

    def __post_init__(self) -> None:
        if int(self.gradient_slices) != self.gradient_slices or self.gradient_slices < 1:
            raise ValueError(f"gradient_slices must be a positive integer, got {self.gradient_slices!r}")


@runtime_checkable
class LearnerHandle(Protocol):
    """A learner the algorithm can train and read weights from (local or an actor).

    `fit` is fitted regression against a target refreshed from the learner's own weights
    (DQN's target network): before round r it sets the batch's `target` column to
    `target_fn(weights, batch)` from the weights as they are then, and takes
    `steps_per_round` `update` steps with seed `seeds[r]`; it returns the last round's
    metrics. It is the loop a caller would write with `get_weights` and `update`, with the
    same results, run where the weights are: no weights read, batch transfer or call per round.
    """

    def update(
        self, batch: pa.RecordBatch, num_steps: int = 1, batch_size: int | None = None, seed: int = 0
    ) -> Metrics: ...

    def fit(
        self,
        batch: pa.RecordBatch,
        target_fn: TargetFn,
        seeds: Sequence[int],
        steps_per_round: int,
        batch_size: int | None = None,
    ) -> Metrics: ...

    def get_weights(self) -> dict[str, np.ndarray]: ...

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None: ...


TargetFn = Callable[[Mapping[str, np.ndarray], pa.RecordBatch], np.ndarray]
"""`target_fn(weights, batch) -> target [rows]` of `LearnerHandle.fit`: a module-level
function (or a partial of one) of the learner's weights as numpy arrays, so it travels to a
learner actor and runs there without torch."""


@runtime_checkable
class ModelClient(Protocol):
    """Inference on a learner's module from anywhere: `learner.client()` returns one.

    `infer(method, **inputs)` runs `module.<method>(**tensors)` without gradients, in eval
    mode, on a batch of numpy arrays, and returns numpy (an array, or a dict / tuple of
    them). A client of a learner actor is picklable: put it in a shard call's `shared`
    payload and shard functions on rollout workers call the learner actor with it, so
    leaf evaluations of many searches are batched on the one model. In one process
    (`TorchLearner.client()`) it calls the module directly. Learners that can serve
    inference have `infer(method, inputs)` and `client()` besides `LearnerHandle`'s methods.
    """

    def infer(self, method: str, **inputs: np.ndarray) -> Any: ...


@dataclass
class StepContext:
    """What the framework gives an algorithm each iteration."""

    iteration: int
    seed: int
    shards: ShardRunner
    num_shards: int = 1
    learners: Mapping[str, LearnerHandle] = field(default_factory=dict)
    pools: Mapping[str, ShardRunner] = field(default_factory=dict)

    def shard_tasks(self, payloads: Sequence[Any] | None = None) -> list[ShardTask]:
        return make_shard_tasks(self.seed, self.iteration, self.num_shards, payloads)


class Algorithm(Protocol):
    """The one-step interface. `learner_specs` may be empty (exact solvers)."""

    def learner_specs(self) -> Mapping[str, LearnerSpec]: ...

    def init(self, seed: int) -> State: ...

    def step(self, state: State, ctx: StepContext) -> tuple[State, Metrics]: ...

    def summary(self, state: State) -> dict[str, Any]:
        """Extra results for summary.json (JSON-serialisable); may be empty."""
        ...

    # Optional, looked up with getattr by the framework:
    #   should_stop(state, metrics) -> Stop | None   after every step: end the run early
    #   pool_specs() -> dict[str, PoolSpec]         extra actor pools, as ctx.pools[name]
    # and at the end of a run:
    #   tables(state) -> dict[str, pa.Table]   each written to RUN_DIR/<name>.parquet; the
    #     framework draws the tables it knows (`gamescale.framework.pictures.DRAWERS`), so an
    #     algorithm returns the data of a picture (annotated: `gamescale.algorithms.tables`)
    #     and never draws it
    #   files(state) -> dict[str, bytes]       each written atomically at RUN_DIR/<relative path>
    #     (for example MIDI of generations); paths must stay inside the run directory
