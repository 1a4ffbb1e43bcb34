"""Ray actors: the rollout-worker pool and learner actors.

- `RolloutPool` keeps `num_workers` actors, each hosting one instance of the run's
  environment. `map(fn, tasks)` hands shards out dynamically and returns their Arrow
  batches in task order, so where a shard ran never changes the result. A worker whose
  process dies is restarted by Ray and its shard is issued again with the same seed.
- `RemoteLearner` hosts a `TorchLearner` in an actor, with a GPU when the cluster has one.

Import this module only after `gamescale.framework.runtime.connect` (see its docstring).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError
from ray.util import get_current_placement_group

from gamescale.algorithms.base import LearnerSpec, Metrics, ShardFn, ShardTask
from gamescale.algorithms.learner import TorchLearner
from gamescale.envs.registry import build_env, env_config
from gamescale.framework.errors import ClusterError

MAX_SHARD_ATTEMPTS = 4


def cluster_gpus() -> int:
    return int(ray.cluster_resources().get("GPU", 0))


@ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)
class RolloutWorker:
    """Hosts one environment instance and runs shard functions on it."""

    def __init__(self, env_cfg: dict[str, Any]):
        self.env = build_env(env_config(env_cfg))

    def pid(self) -> int:
        return os.getpid()

    def run(self, fn: ShardFn, shared: Any, task: ShardTask) -> pa.RecordBatch:
        return fn(self.env, shared, task)


class RolloutPool:
    """`num_workers` rollout actors over one environment config (a `ShardRunner`)."""

    def __init__(self, env_cfg: Mapping[str, Any], num_workers: int):
        if num_workers < 1:
            raise ValueError("a rollout pool needs at least one worker")
        cpus = float(ray.cluster_resources().get("CPU", 0.0))
        if num_workers > cpus and get_current_placement_group() is None:
            # Each worker reserves a CPU; more than the cluster has would wait forever.
            raise ClusterError(f"{num_workers} rollout workers need {num_workers} CPUs but the cluster has {cpus:g}")
        self.num_workers = num_workers
        self.env_cfg = dict(env_cfg)
        self.workers = [RolloutWorker.remote(self.env_cfg) for _ in range(num_workers)]
        self.reissued = 0

    def worker_pids(self) -> list[int]:
        return ray.get([w.pid.remote() for w in self.workers])

    def map(self, fn: ShardFn, tasks: Sequence[ShardTask], shared: Any = None) -> list[pa.RecordBatch]:
        shared_ref = ray.put(shared)
        results: list[pa.RecordBatch | None] = [None] * len(tasks)
        attempts = [0] * len(tasks)
        queue = deque(range(len(tasks)))
        idle = deque(range(self.num_workers))
        running: dict[ray.ObjectRef, tuple[int, int]] = {}
        while queue or running:
            while queue and idle:
                position, worker = queue.popleft(), idle.popleft()
                attempts[position] += 1
                ref = self.workers[worker].run.remote(fn, shared_ref, tasks[position])
                running[ref] = (position, worker)
            done, _ = ray.wait(list(running), num_returns=1)
            position, worker = running.pop(done[0])
            idle.append(worker)
            try:
                results[position] = ray.get(done[0])
            except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
                # The worker process died; Ray restarts the actor (same constructor
                # arguments), and the shard goes back in the queue with the same seed.
                if attempts[position] >= MAX_SHARD_ATTEMPTS:
                    raise RuntimeError(
                        f"shard {tasks[position].index} failed {attempts[position]} times: {exc}"
                    ) from exc
                self.reissued += 1
                queue.appendleft(position)
        return results  # type: ignore[return-value]

    def submit(self, fn: ShardFn, tasks: Sequence[ShardTask], shared: Any = None) -> PendingMap:
        """Start `map` now on a driver thread; the caller goes on (e.g. trains) meanwhile."""
        return PendingMap(self.map, fn, tasks, shared)

    def shutdown(self) -> None:
        for worker in self.workers:
            ray.kill(worker)
        self.workers = []


class PendingMap:
    """A `RolloutPool.map` running on a driver thread (a `PendingBatches`).

    Ray's driver API is thread-safe; the thread only dispatches and waits, so the
    GIL-holding work of the caller (a learner call is itself a wait on an actor) and the
    shards on the workers proceed together.
    """

    def __init__(self, map_fn, fn: ShardFn, tasks: Sequence[ShardTask], shared: Any):
        self._batches: list[pa.RecordBatch] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(map_fn, fn, list(tasks), shared), daemon=True)
        self._thread.start()

    def _run(self, map_fn, fn, tasks, shared) -> None:
        try:
            self._batches = map_fn(fn, tasks, shared)
        except BaseException as exc:  # re-raised in the caller's thread by result()
            self._error = exc

    def result(self) -> list[pa.RecordBatch]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._batches  # type: ignore[return-value]


@ray.remote(max_restarts=0)
class LearnerActor(TorchLearner):
    """A `TorchLearner` in its own process (and on a GPU where one was granted)."""


class RemoteLearner:
    """A `LearnerHandle` backed by a `LearnerActor`."""

    def __init__(self, spec: LearnerSpec, gpus: str | int = "auto"):
        wanted = (1 if cluster_gpus() > 0 else 0) if gpus == "auto" else int(gpus)
        if wanted > cluster_gpus():
            raise ClusterError(f"the learner asks for {wanted} GPU(s) but the cluster has {cluster_gpus()}")
        device = "cuda" if wanted > 0 else "cpu"
        # No CPU reservation: the loop alternates sampling and learning, so the learner
        # never competes with the rollout workers for the cores they reserved.
        self.actor = LearnerActor.options(num_gpus=wanted, num_cpus=0).remote(spec, device)
        self.device = ray.get(self.actor.device_name.remote())

    def update(
        self, batch: pa.RecordBatch, num_steps: int = 1, batch_size: int | None = None, seed: int = 0
    ) -> Metrics:
        return ray.get(self.actor.update.remote(batch, num_steps, batch_size, seed))

    def get_weights(self) -> dict[str, np.ndarray]:
        return ray.get(self.actor.get_weights.remote())

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        ray.get(self.actor.set_weights.remote(dict(weights)))

    def save_bytes(self) -> bytes:
        return ray.get(self.actor.save_bytes.remote())

    def load_bytes(self, data: bytes) -> None:
        ray.get(self.actor.load_bytes.remote(data))

    def shutdown(self) -> None:
        ray.kill(self.actor)
