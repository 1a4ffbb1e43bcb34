"""Ray actors: the rollout-worker pool and learner actors.

- `RolloutPool` keeps `num_workers` actors, each hosting one instance of the run's
  environment. `map(fn, tasks)` hands shards out dynamically and returns their Arrow
  batches in task order, so where a shard ran never changes the result. A worker whose
  process dies is restarted by Ray and its shard is issued again with the same seed.
- `RemoteLearner` hosts a `TorchLearner` in an actor, with a GPU when the cluster has one;
  its `client()` is a picklable `ActorModelClient` that shard functions on rollout workers
  use for batched inference on the learner's module (`infer`).

This module never imports torch: the driver and every rollout worker import it (a worker
imports the module of its actor class), and a process that imports torch holds about
130 MiB more. Only the learner actor's process imports it, when it builds its learner.

Import this module only after `gamescale.framework.runtime.connect` (see its docstring).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RaySystemError
from ray.util import get_current_placement_group
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

from gamescale.algorithms.base import LearnerSpec, Metrics, ShardFn, ShardTask
from gamescale.algorithms.row_blocks import row_threads, set_row_threads, usable_cores
from gamescale.envs.registry import build_env, env_config
from gamescale.framework.errors import ClusterError, ClusterLostError, LearnerLostError

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

    def node(self) -> str:
        """The IP and Ray node id of the node this worker runs on."""
        context = ray.get_runtime_context()
        return f"{ray.util.get_node_ip_address()}/{context.get_node_id()[:12]}"

    def run(self, fn: ShardFn, shared: Any, task: ShardTask) -> pa.RecordBatch:
        return fn(self.env, shared, task)


PLACEMENTS = ("spread", "pack")


def check_placement(placement: str) -> str:
    """`spread` puts rollout workers on as many nodes as possible (Ray's SPREAD strategy);
    `pack` puts them in a PACK placement group: as few nodes as fit them."""
    if placement not in PLACEMENTS:
        raise ClusterError(f"unknown placement {placement!r}; use one of {', '.join(PLACEMENTS)}")
    return placement


class RolloutPool:
    """`num_workers` rollout actors over one environment config (a `ShardRunner`).

    Workers are placed by `placement` and must all be running within `start_timeout_s`
    (a cluster without room for them is reported, not waited on forever). A worker that
    dies (its process, or its whole node) is restarted by Ray, on a surviving node if
    its own is gone, and its shard is issued again with the same seed; a worker that has
    not come back within `revive_timeout_s` is dropped with a warning and the pool goes
    on smaller. Results never depend on which worker ran a shard.
    """

    def __init__(
        self,
        env_cfg: Mapping[str, Any],
        num_workers: int,
        placement: str = "spread",
        start_timeout_s: float = 120.0,
        revive_timeout_s: float = 60.0,
        cpus: float = 1.0,
    ):
        if num_workers < 1:
            raise ValueError("a rollout pool needs at least one worker")
        if not cpus > 0:
            raise ValueError(f"each rollout worker must reserve some CPU, got {cpus}")
        check_placement(placement)
        in_trial = get_current_placement_group() is not None  # a Tune trial's own bundles
        total = float(ray.cluster_resources().get("CPU", 0.0))
        if num_workers * cpus > total and not in_trial:
            # Each worker reserves `cpus`; more than the cluster has would wait forever.
            raise ClusterError(
                f"{num_workers} rollout workers need {num_workers * cpus:g} CPUs but the cluster has {total:g}"
            )
        self.num_workers = num_workers
        self.env_cfg = dict(env_cfg)
        self.placement = placement
        self.revive_timeout_s = revive_timeout_s
        self.group = None
        if in_trial:  # Tune already reserved the trial's bundles; the workers go there
            strategies: list[Any] = [None] * num_workers
        elif placement == "pack":
            self.group = placement_group([{"CPU": float(cpus)}] * num_workers, strategy="PACK")
            strategies = [
                PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=i) for i in range(num_workers)
            ]
        else:
            strategies = ["SPREAD"] * num_workers
        options = {} if cpus == 1.0 else {"num_cpus": float(cpus)}
        self.workers = [
            RolloutWorker.options(**options, **({} if s is None else {"scheduling_strategy": s})).remote(self.env_cfg)
            for s in strategies
        ]
        self.reissued = 0
        self.dropped = 0
        self.active = list(range(num_workers))  # workers not dropped
        self._reviving: dict[ray.ObjectRef, tuple[int, float]] = {}  # ping -> (worker, since)
        self.node_history: list[list[str]] = [[] for _ in range(num_workers)]
        self._wait_until_placed(start_timeout_s)

    def _wait_until_placed(self, timeout_s: float) -> None:
        refs = [w.node.remote() for w in self.workers]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        if len(ready) < len(refs):
            free = float(ray.available_resources().get("CPU", 0.0))
            total = float(ray.cluster_resources().get("CPU", 0.0))
            self.shutdown()
            raise ClusterError(
                f"only {len(ready)} of {len(refs)} rollout workers could be placed within {timeout_s:g} s "
                f"(the cluster has {total:g} CPUs, {free:g} free); lower --workers or free the cluster"
            )
        for i, node in enumerate(ray.get(refs)):
            self._saw(i, node)

    def _saw(self, worker: int, node: str) -> None:
        if not self.node_history[worker] or self.node_history[worker][-1] != node:
            self.node_history[worker].append(node)

    def worker_pids(self) -> list[int]:
        return ray.get([self.workers[i].pid.remote() for i in self.active])

    def worker_nodes(self) -> list[str]:
        """The node each active worker runs on now (asks them)."""
        nodes = ray.get([self.workers[i].node.remote() for i in self.active])
        for i, node in zip(self.active, nodes, strict=True):
            self._saw(i, node)
        return nodes

    def placement_report(self) -> dict[str, Any]:
        """For summary.json: the nodes each worker ran on, and how many nodes in all."""
        refs = {self.workers[i].node.remote(): i for i in self.active}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=10.0)
        for ref in ready:
            try:
                self._saw(refs[ref], ray.get(ref))
            except RayActorError:
                pass  # a worker lost right at the end keeps the nodes seen before
        nodes = sorted({n for history in self.node_history for n in history})
        return {
            "placement": self.placement,
            "workers": [{"worker": i, "nodes": h} for i, h in enumerate(self.node_history)],
            "nodes": nodes,
            "dropped_workers": self.dropped,
        }

    def map(self, fn: ShardFn, tasks: Sequence[ShardTask], shared: Any = None) -> list[pa.RecordBatch]:
        shared_ref = ray.put(shared)
        results: list[pa.RecordBatch | None] = [None] * len(tasks)
        attempts = [0] * len(tasks)
        queue = deque(range(len(tasks)))
        reviving = self._reviving  # workers lost earlier and not back yet stay out of work
        waiting = {worker for worker, _ in reviving.values()}
        idle = deque(w for w in self.active if w not in waiting)
        running: dict[ray.ObjectRef, tuple[int, int]] = {}
        while queue or running:
            while queue and idle:
                position, worker = queue.popleft(), idle.popleft()
                attempts[position] += 1
                ref = self.workers[worker].run.remote(fn, shared_ref, tasks[position])
                running[ref] = (position, worker)
            if not running:
                self._revive(reviving, idle, block=True)
                continue
            done, _ = ray.wait(list(running) + list(reviving), num_returns=1, timeout=1.0)
            self._revive(reviving, idle, block=False)
            done = [ref for ref in done if ref in running]
            if not done:
                continue
            position, worker = running.pop(done[0])
            try:
                results[position] = ray.get(done[0])
                idle.append(worker)
            except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
                # The worker died (its process or its node). Ray restarts it; until it
                # answers a ping it gets no work, and its shard goes back with its seed.
                if attempts[position] >= MAX_SHARD_ATTEMPTS:
                    raise RuntimeError(
                        f"shard {tasks[position].index} failed {attempts[position]} times: {exc}"
                    ) from exc
                self.reissued += 1
                queue.appendleft(position)
                reviving[self.workers[worker].node.remote()] = (worker, time.monotonic())
        return results  # type: ignore[return-value]

    def _revive(self, reviving: dict, idle: deque, block: bool) -> None:
        """Move workers that answer again back to `idle`; drop those gone too long."""
        if not reviving:
            if block:
                raise ClusterError("every rollout worker was lost and none came back")
            return
        ready, _ = ray.wait(list(reviving), num_returns=len(reviving), timeout=1.0 if block else 0)
        for ref in ready:
            worker, since = reviving.pop(ref)
            try:
                self._saw(worker, ray.get(ref))
                idle.append(worker)
            except (ActorDiedError, ActorUnavailableError, RayActorError):
                # Not back yet: ask again, keeping the time it was first lost.
                reviving[self.workers[worker].node.remote()] = (worker, since)
        now = time.monotonic()
        for ref, (worker, since) in list(reviving.items()):
            if now - since > self.revive_timeout_s:
                del reviving[ref]
                self._drop(worker)
        if not idle and not reviving and block:
            raise ClusterError("every rollout worker was lost and none came back (no capacity left on the cluster)")

    def _drop(self, worker: int) -> None:
        message = (
            f"rollout worker {worker} did not come back within {self.revive_timeout_s:g} s "
            "(no capacity left on the cluster); continuing with fewer workers"
        )
        print(f"gamescale: warning: {message}", file=sys.stderr, flush=True)
        ray.kill(self.workers[worker])
        self.active.remove(worker)
        self.dropped += 1

    def submit(self, fn: ShardFn, tasks: Sequence[ShardTask], shared: Any = None) -> PendingMap:
        """Start `map` now on a driver thread; the caller goes on (e.g. trains) meanwhile."""
        return PendingMap(self.map, fn, tasks, shared)

    def shutdown(self) -> None:
        for worker in self.workers:
            ray.kill(worker)
        self.workers = []
        if self.group is not None:
            remove_placement_group(self.group)
            self.group = None


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
class LearnerActor:
    """One or more `TorchLearner`s, by name, in their own process (on a GPU where one was granted).

    It holds the learners rather than subclassing `TorchLearner`, so that defining this
    class (in the driver, in rollout workers) does not import torch; they are built, and
    torch imported, only in this actor's process.
    """

    def __init__(
        self,
        specs: Mapping[str, LearnerSpec],
        device: str,
        rank: int = 0,
        replicas: int = 1,
        transport: str = "auto",
        threads: int = 1,
    ):
        self.specs, self.device, self.rank, self.replicas = dict(specs), device, rank, replicas
        self.transport = transport
        # the cores of the rollout workers, which wait while the learner fits (at most this node's)
        set_row_threads(max(1, min(threads, usable_cores())))
        self.learners: dict[str, Any] = {}
        if replicas == 1:
            self._build()

    def _build(self) -> None:
        from gamescale.algorithms.learner import ReplicaGroup, TorchLearner

        group = ReplicaGroup(self.rank, self.replicas, self.transport)
        self.learners = {name: TorchLearner(spec, self.device, group) for name, spec in self.specs.items()}

    def rendezvous(self) -> tuple[str, int]:
        """Rank 0: this node's address and a free port for the replicas' process group."""
        import socket

        host = ray.util.get_node_ip_address()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            return host, int(probe.getsockname()[1])

    def join(self, host: str, port: int, timeout_s: float) -> None:
        """Join the replicas' gloo process group (rank 0 serves its store at host:port), then
        build the learners: every replica seeds its modules alike, so all start equal."""
        import datetime

        import torch.distributed as dist

        interface = _interface_of(ray.util.get_node_ip_address())
        if interface is not None:  # gloo talks over the interface Ray uses (loopback for local runs)
            os.environ["GLOO_SOCKET_IFNAME"] = interface
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://{host}:{port}",
            rank=self.rank,
            world_size=self.replicas,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
        self._build()

    def update(self, name: str, batch: pa.RecordBatch, num_steps: int, batch_size: int | None, seed: int) -> Metrics:
        return self.learners[name].update(batch, num_steps, batch_size, seed)

    def fit(
        self, name: str, batch: pa.RecordBatch, target_fn: Any, seeds: list[int], steps: int, batch_size: int | None
    ) -> Metrics:
        return self.learners[name].fit(batch, target_fn, seeds, steps, batch_size)

    def get_weights(self, name: str) -> dict[str, np.ndarray]:
        return self.learners[name].get_weights()

    def infer(self, name: str, method: str, inputs: Mapping[str, np.ndarray]) -> Any:
        return self.learners[name].infer(method, inputs)

    def set_weights(self, name: str, weights: Mapping[str, np.ndarray]) -> None:
        self.learners[name].set_weights(weights)

    def device_name(self) -> str:
        return str(next(iter(self.learners.values())).device)

    def save_bytes(self, name: str) -> bytes:
        return self.learners[name].save_bytes()

    def load_bytes(self, name: str, data: bytes) -> None:
        self.learners[name].load_bytes(data)

    def node(self) -> str:
        return f"{ray.util.get_node_ip_address()}/{ray.get_runtime_context().get_node_id()[:12]}"

    def pid(self) -> int:
        return os.getpid()

    def row_threads(self) -> int:
        """The threads this process was granted for row blocks."""
        return row_threads()


def _interface_of(address: str) -> str | None:
    """The network interface that holds `address` (None if no interface does)."""
    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        if any(entry.address == address for entry in addresses):
            return name
    return None


def _call_all(refs: Sequence[ray.ObjectRef]) -> list[Any]:
    """`_call` on several refs, raising as soon as any fails: replicas of a learner wait for
    each other inside a step, so the first lost one must not leave the caller blocked."""
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        _call(ready[0])
    return [_call(ref) for ref in refs]


def _call(ref: ray.ObjectRef) -> Any:
    try:
        return ray.get(ref)
    except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LearnerLostError(f"the learner actor was lost ({first[:160]})") from None
    except RaySystemError as exc:
        raise ClusterLostError(f"lost the Ray cluster: {str(exc).strip().splitlines()[0][:160]}") from None


def _wanted_gpus(gpus: str | int) -> int:
    wanted = (1 if cluster_gpus() > 0 else 0) if gpus == "auto" else int(gpus)
    if wanted > cluster_gpus():
        raise ClusterError(f"the learner asks for {wanted} GPU(s) but the cluster has {cluster_gpus()}")
    return wanted


def _start_actor(
    specs: Mapping[str, LearnerSpec],
    wanted: int,
    rank: int = 0,
    replicas: int = 1,
    transport: str = "auto",
    threads: int = 1,
) -> Any:
    options: dict[str, Any] = {"num_gpus": wanted, "num_cpus": 0}
    if wanted == 0 and get_current_placement_group() is None:
        here = ray.get_runtime_context().get_node_id()
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=here, soft=True)
    # No CPU reservation: the learner mostly waits on the rollout workers' batches,
    # and reserving a core would leave one fewer for them on small machines.
    device = "cuda" if wanted > 0 else "cpu"
    return LearnerActor.options(**options).remote(dict(specs), device, rank, replicas, transport, threads)


class RemoteLearner:
    """A `LearnerHandle` backed by a learner in a `LearnerActor`.

    On a cluster with GPUs it asks for one (so Ray places it on a GPU node); on a CPU
    cluster it prefers the driver's node, where the sampled batches arrive. If its actor
    dies (its process or its node), calls raise `LearnerLostError` and the loop rebuilds
    the learner from the newest checkpoint. `start_learners` puts several CPU learners in
    one actor; `RemoteLearner(spec)` gets an actor of its own.
    """

    def __init__(
        self, spec: LearnerSpec, gpus: str | int = "auto", threads: int = 1, *, _hosted: tuple[Any, str] | None = None
    ):
        if _hosted is None:
            _hosted = (_start_actor({"learner": spec}, _wanted_gpus(gpus), threads=threads), "learner")
        self.actor, self.name = _hosted
        self.device = _call(self.actor.device_name.remote())
        self.node = _call(self.actor.node.remote())

    def _write(self, method: str, payload: Any, *args: Any) -> Any:
        """`method(name, payload, *args)` on the learner's actor: every call that changes the
        learner goes through here (replicas send it to all of their actors)."""
        return _call(getattr(self.actor, method).remote(self.name, payload, *args))

    def update(
        self, batch: pa.RecordBatch, num_steps: int = 1, batch_size: int | None = None, seed: int = 0
    ) -> Metrics:
        return self._write("update", batch, num_steps, batch_size, seed)

    def fit(
        self,
        batch: pa.RecordBatch,
        target_fn: Any,
        seeds: Sequence[int],
        steps_per_round: int,
        batch_size: int | None = None,
    ) -> Metrics:
        """`LearnerHandle.fit` in the learner actor: one call for all the rounds."""
        return self._write("fit", batch, target_fn, list(seeds), steps_per_round, batch_size)

    def get_weights(self) -> dict[str, np.ndarray]:
        return _call(self.actor.get_weights.remote(self.name))

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        self._write("set_weights", dict(weights))

    def infer(self, method: str, inputs: Mapping[str, np.ndarray]) -> Any:
        """`module.<method>(**inputs)` on the learner actor, without gradients (numpy out)."""
        return _call(self.actor.infer.remote(self.name, method, dict(inputs)))

    def client(self) -> ActorModelClient:
        """A picklable `ModelClient` of this learner for shard functions on rollout workers."""
        return ActorModelClient(self.actor, self.name)

    def save_bytes(self) -> bytes:
        return _call(self.actor.save_bytes.remote(self.name))

    def pid(self) -> int:
        return _call(self.actor.pid.remote())

    def load_bytes(self, data: bytes) -> None:
        self._write("load_bytes", data)

    def shutdown(self) -> None:
        try:
            ray.kill(self.actor)
        except Exception:  # already gone with its node, or with a learner it shared the actor with
            pass


class ReplicatedLearner(RemoteLearner):
    """A `LearnerHandle` on data-parallel replicas of a learner, one per actor, joined by a
    gloo process group. Every update goes to all replicas (the batch is put in the object
    store once); they split its gradient slices (`LearnerSpec.gradient_slices`), gather the
    slice gradients and take the same optimizer step, so they hold equal weights and rank 0
    answers reads (weights, inference, checkpoints). Losing any replica loses the learner."""

    def __init__(self, actors: Sequence[Any], name: str):
        super().__init__(None, _hosted=(actors[0], name))  # type: ignore[arg-type]
        self.replicas = list(actors)

    def _write(self, method: str, payload: Any, *args: Any) -> Any:
        """`method(name, payload, *args)` on every replica, the payload put in the object store
        once; rank 0's answer (the replicas' are equal)."""
        ref = ray.put(payload)
        return _call_all([getattr(actor, method).remote(self.name, ref, *args) for actor in self.replicas])[0]

    def shutdown(self) -> None:
        for actor in self.replicas:
            try:
                ray.kill(actor)
            except Exception:  # already gone (its node, or a sibling learner's shutdown)
                pass


class ActorModelClient:
    """A `ModelClient` on a learner actor. It holds the actor's handle (picklable), so it
    travels in a shard call's `shared` payload; every rollout worker that calls it sends
    its batch to the same model, one call at a time (the actor runs calls in order)."""

    def __init__(self, actor: Any, name: str):
        self.actor, self.name = actor, name

    def infer(self, method: str, **inputs: np.ndarray) -> Any:
        return _call(self.actor.infer.remote(self.name, method, inputs))


def start_learners(
    specs: Mapping[str, LearnerSpec],
    gpus: str | int = "auto",
    replicas: int = 1,
    join_timeout_s: float = 120.0,
    transport: str = "auto",
    threads: int = 1,
) -> dict[str, RemoteLearner]:
    """The run's learners. With GPUs each learner gets an actor (and a GPU) of its own. On
    CPU they share ONE actor process: each process that imports torch holds ~130 MiB of
    its own (relocated library pages, allocator state), CPU learners reserve no CPU, and
    an algorithm calls its learners one after another, so a second process buys nothing.
    Losing that process loses every learner; the loop rebuilds them all in any case.

    With `replicas` R > 1 there are R actors (each with `gpus` GPUs), each holding every
    learner, joined by one gloo process group: data-parallel replicas (`ReplicatedLearner`).
    They gather gradients through shared memory when all are on one node (`transport`
    "auto"; "process_group" keeps to the gloo group, `learner.ReplicaGroup`). Each learner
    process may use `threads` threads for row blocks (`algorithms.row_blocks`), at most its
    node's usable cores."""
    wanted = _wanted_gpus(gpus)
    if replicas > 1:
        for name, spec in specs.items():
            if spec.gradient_slices % replicas:
                raise ClusterError(
                    f"{replicas} learner replicas cannot split learner {name!r}'s {spec.gradient_slices} gradient slices"
                )
        if wanted > 0 and wanted * replicas > cluster_gpus():
            raise ClusterError(
                f"{replicas} learner replicas with {wanted} GPU(s) each need more than the cluster's {cluster_gpus()}"
            )
        actors = [_start_actor(specs, wanted, rank, replicas, transport, threads) for rank in range(replicas)]
        host, port = _call(actors[0].rendezvous.remote())
        _call_all([actor.join.remote(host, port, join_timeout_s) for actor in actors])
        return {name: ReplicatedLearner(actors, name) for name in specs}
    if wanted > 0 or len(specs) < 2:
        return {name: RemoteLearner(spec, gpus, threads) for name, spec in specs.items()}
    actor = _start_actor(specs, 0, threads=threads)
    return {name: RemoteLearner(spec, gpus, _hosted=(actor, name)) for name, spec in specs.items()}
