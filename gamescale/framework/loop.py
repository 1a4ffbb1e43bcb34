"""The experiment loop: drive an algorithm's `step` over iterations, write what it measures.

One metrics row per iteration (`iteration`, `time_s`, then the algorithm's metrics),
a checkpoint every `run.checkpoint_every` iterations, and `summary.json` last. Metric
rows are flushed to Parquet only together with a checkpoint, and a resumed run first
drops any row past its checkpoint, so a killed-and-resumed run holds every iteration's
row exactly once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gamescale.algorithms.base import ShardFn, ShardTask, StepContext, Stop
from gamescale.algorithms.registry import build_algorithm
from gamescale.algorithms.row_blocks import usable_cores
from gamescale.envs.registry import build_env
from gamescale.framework import storage
from gamescale.framework.config import ExperimentConfig, dump_config, load_config
from gamescale.framework.errors import (
    CheckpointError,
    ClusterError,
    ClusterLostError,
    ConfigError,
    GamescaleError,
    LearnerLostError,
    TrainingError,
)
from gamescale.framework.runtime import HeadWatch, connect, driver_threads


class LazyPool:
    """A `ShardRunner` that starts its rollout actors on the first `map` call, so exact
    solvers that never sample never start workers."""

    def __init__(
        self,
        config: ExperimentConfig,
        env_cfg: dict[str, Any] | None = None,
        workers: int | None = None,
        cpus: float = 1.0,
    ):
        self.config = config
        self.env_cfg = dict(env_cfg) if env_cfg is not None else config.env.model_dump(mode="json")
        self.num_workers = workers or config.runtime.workers
        self.cpus = cpus
        self.pool: Any = None  # a gamescale.framework.actors.RolloutPool once started

    def _started(self) -> Any:
        if self.pool is None:
            _connect_for_actors(self.config)
            from gamescale.framework.actors import RolloutPool

            runtime = self.config.runtime
            self.pool = RolloutPool(
                self.env_cfg,
                self.num_workers,
                placement=runtime.placement,
                start_timeout_s=runtime.worker_start_timeout_s,
                revive_timeout_s=runtime.worker_revive_timeout_s,
                cpus=self.cpus,
            )
        return self.pool

    def map(self, fn: ShardFn, tasks: Sequence[ShardTask], shared: Any = None) -> list[pa.RecordBatch]:
        return self._started().map(fn, tasks, shared)

    def submit(self, fn: ShardFn, tasks: Sequence[ShardTask], shared: Any = None) -> Any:
        return self._started().submit(fn, tasks, shared)

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None


@dataclass
class RunContext:
    """What callbacks see after each iteration."""

    run_dir: Path
    config: ExperimentConfig
    iteration: int
    row: dict[str, float]
    pool: LazyPool
    learners: dict[str, Any] = field(default_factory=dict)


Callback = Callable[[RunContext], None]

_HEAD_SETTLE_S = 3.0
"""How long a failed Ray call waits to learn whether the head is going away."""


def default_run_dir(config: ExperimentConfig) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.name}-{stamp}"


def _build(config: ExperimentConfig) -> tuple[Any, Any]:
    try:
        env = build_env(config.env)
        algorithm = build_algorithm(config.algorithm, env)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{config.name}: {exc}") from None
    specs = algorithm.learner_specs()
    asked = config.runtime.learner_replicas
    if specs and asked != "auto" and _gradient_slices(specs) % asked:
        raise ConfigError(
            f"{config.name}: runtime.learner_replicas={asked} does not divide the learners' "
            f"gradient slices ({_gradient_slices(specs)})"
        )
    return env, algorithm


def _gradient_slices(specs: dict[str, Any]) -> int:
    """The gradient slices every learner can split: the gcd of the specs' `gradient_slices`."""
    return math.gcd(*(int(spec.gradient_slices) for spec in specs.values()))


def _connect_if_asked(config: ExperimentConfig) -> None:
    """Join the cluster named by `runtime.address` now, so an unreachable one fails before
    the run directory exists. Without an address Ray starts later, with the first actor."""
    if config.runtime.address is not None:
        connect(config.runtime.address, config.runtime.num_cpus)


def _connect_for_actors(config: ExperimentConfig) -> None:
    connect(config.runtime.address, config.runtime.num_cpus)


def _is_finished(run_dir: Path) -> bool:
    path = run_dir / storage.SUMMARY_FILE
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("status") == "completed"
    except ValueError:
        return False


def start_run(
    config: ExperimentConfig, run_dir: Path | None = None, progress: bool = True, callbacks: Sequence[Callback] = ()
) -> Path:
    """Validate everything that can fail on bad input, then create the run directory and run."""
    run_dir = Path(run_dir or config.run.out or default_run_dir(config))
    if (run_dir / storage.CONFIG_FILE).exists():
        raise ConfigError(f"run directory {run_dir} already holds a run; use `gamescale resume {run_dir}`")
    _, algorithm = _build(config)
    _connect_if_asked(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    storage.write_text_atomic(run_dir / storage.CONFIG_FILE, dump_config(config))
    _drive(config, algorithm, run_dir, None, progress, callbacks)
    return run_dir


def resume_run(
    run_dir: Path, progress: bool = True, callbacks: Sequence[Callback] = (), address: str | None = None
) -> Path:
    """Continue a killed run from its newest checkpoint.

    `address` moves the run to another cluster (its head was lost, say): a Ray address, or
    "local" for an embedded local Ray. The run's config.yaml then records the new address.
    Seeded results do not depend on where the run goes on.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / storage.CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {storage.CONFIG_FILE})")
    if _is_finished(run_dir):
        raise ConfigError(f"run {run_dir} already finished; nothing to resume")
    config = load_config(config_path)
    if address is not None:
        moved = None if address == "local" else address
        config = config.model_copy(update={"runtime": config.runtime.model_copy(update={"address": moved})})
    checkpoint = storage.latest_checkpoint(run_dir)
    loaded = storage.load_checkpoint(checkpoint) if checkpoint is not None else None
    _, algorithm = _build(config)
    _connect_if_asked(config)
    if address is not None:
        storage.write_text_atomic(config_path, dump_config(config))
    _drive(config, algorithm, run_dir, loaded, progress, callbacks)
    return run_dir


def _progress_bar(enabled: bool, total: int, completed: int, name: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[metric]}"),
        disable=not enabled,
        transient=False,
    )
    task = progress.add_task(name, total=total, completed=completed, metric="")
    return progress, task


def _check_finite_loss(config: ExperimentConfig, iteration: int, row: dict[str, float]) -> None:
    """A learner loss that is NaN or infinite ends the run before the bad state is saved:
    the newest checkpoint on disk stays the last good one."""
    bad = [k for k, v in row.items() if (k == "loss" or k.endswith("_loss") or k.startswith("loss")) and not np.isfinite(v)]
    if bad:
        raise TrainingError(
            f"{config.name}: {bad[0]} is {row[bad[0]]} at iteration {iteration}; "
            "the run stopped; its last good checkpoint is kept"
        )


def _headline(row: dict[str, float]) -> str:
    shown = [(k, v) for k, v in row.items() if k not in ("iteration", "time_s")][:2]
    return "  ".join(f"{k}={v:.4g}" for k, v in shown)


MAX_LEARNER_RESTORES = 3


def _driver_thread_limit(config: ExperimentConfig, algorithm: Any) -> int | None:
    """The cap on the driver's numeric threads: `runtime.driver_threads`, with auto = this
    machine's usable cores less one per rollout worker (at least 1), the cores the workers
    do not already keep busy. None (no cap) for an exact solver that drives no actors and
    runs alone."""
    if not (algorithm.learner_specs() or getattr(algorithm, "uses_rollout_workers", True)):
        return None
    limit = config.runtime.driver_threads
    if limit != "auto":
        return limit
    return max(1, usable_cores() - config.runtime.workers)


def _drive(
    config: ExperimentConfig,
    algorithm: Any,
    run_dir: Path,
    loaded: tuple[dict[str, Any], dict[str, bytes], dict[str, Any]] | None,
    progress: bool,
    callbacks: Sequence[Callback],
) -> None:
    run = config.run
    pool = LazyPool(config)
    pool_specs = getattr(algorithm, "pool_specs", None)
    extra_pools = {
        name: LazyPool(config, None if spec.env is None else dict(spec.env), spec.workers, spec.cpus)
        for name, spec in (pool_specs() if pool_specs is not None else {}).items()
    }
    specs = dict(algorithm.learner_specs())
    learners: dict[str, Any] = {}
    writer = storage.MetricsWriter(run_dir)
    restores = 0
    resume_hint = (
        "the run stopped at its newest checkpoint: continue it on another cluster with "
        f"`gamescale resume {run_dir} --address ADDRESS` (or `--address local`)"
    )
    head_lost = f"lost the Ray cluster: its head stopped answering; {resume_hint}"
    watch = HeadWatch(head_lost, config.runtime.head_timeout_s).start()
    # A driver that drives actors shares the cores with them: its thread pools are capped
    # for the whole run and restored when it ends, however it ends.
    threads = contextlib.ExitStack()
    threads.enter_context(driver_threads(_driver_thread_limit(config, algorithm)))
    try:
        learners = _start_learners(config, specs)
        state, start, time_offset, stopped = _restore(algorithm, run, learners, loaded, run_dir)
        writer.discard_from(start)
        clock = time.perf_counter() - time_offset
        bar, task = _progress_bar(progress, run.iterations, start, config.name)
        row: dict[str, float] = {}
        should_stop = getattr(algorithm, "should_stop", None)
        iteration = start
        with bar:
            while iteration < run.iterations and stopped is None:
                ctx = StepContext(
                    iteration=iteration,
                    seed=run.seed,
                    shards=pool,
                    num_shards=config.runtime.shards,
                    learners=learners,
                    pools=extra_pools,
                )
                try:
                    state, metrics = algorithm.step(state, ctx)
                    row = {"iteration": iteration, "time_s": time.perf_counter() - clock}
                    row.update({k: float(v) for k, v in metrics.items()})
                    _check_finite_loss(config, iteration, row)
                    done = iteration + 1
                    stop = should_stop(state, metrics) if should_stop is not None else None
                    if stop is None and run.time_budget_s is not None and row["time_s"] >= run.time_budget_s:
                        stop = Stop("budget", f"reached the run's time budget of {run.time_budget_s:g} s")
                    if stop is not None:
                        stopped = {"reason": stop.reason, "message": stop.message, "iteration": iteration}
                    blobs = None
                    if done % run.checkpoint_every == 0 or done == run.iterations or stopped is not None:
                        blobs = {name: learner.save_bytes() for name, learner in learners.items()}
                except LearnerLostError as exc:
                    # A learner went down with its node: every learner and the algorithm
                    # state go back to the newest checkpoint and the same seeded
                    # iterations run again, so the rows come out as if nothing happened.
                    restores += 1
                    if restores > MAX_LEARNER_RESTORES:
                        raise ClusterError(f"{exc}; lost {restores} times, giving up") from None
                    _warn(f"{exc}; rebuilding it from the newest checkpoint of {run_dir}")
                    for learner in learners.values():
                        learner.shutdown()
                    learners = _start_learners(config, specs)
                    checkpoint = storage.latest_checkpoint(run_dir)
                    reloaded = storage.load_checkpoint(checkpoint) if checkpoint is not None else None
                    state, iteration, _, stopped = _restore(algorithm, run, learners, reloaded, run_dir)
                    writer.rows = []
                    writer.discard_from(iteration)
                    continue
                writer.append(row)
                if blobs is not None:
                    writer.flush()
                    meta: dict[str, Any] = {"time_s": row["time_s"]}
                    if stopped is not None:
                        meta["stopped"] = stopped
                    storage.save_checkpoint(run_dir, done, state, blobs, meta, run.keep_checkpoints)
                bar.update(task, completed=done, metric=_headline(row))
                for callback in callbacks:
                    callback(RunContext(run_dir, config, iteration, row, pool, learners))
                iteration = done
        writer.flush()
        if stopped is None:
            stopped = {
                "reason": "iterations",
                "message": f"ran the configured {run.iterations} iterations",
                "iteration": run.iterations - 1,
            }
        # Where the actors ran is read now; then they go, before the pictures are drawn
        # (matplotlib in the driver) so the run's peak memory is not their sum.
        placement = _placement_summary({**extra_pools, "rollout": pool}, learners)
        reissued = pool.pool.reissued if pool.pool is not None else 0
        _release(pool, extra_pools, learners)
        _finish(config, algorithm, state, run_dir, row, stopped, placement, reissued)
    except ClusterLostError as exc:
        if watch.head_lost(settle_s=_HEAD_SETTLE_S):  # the workers went with the head
            raise ClusterError(head_lost) from None
        raise ClusterError(f"{exc}; {resume_hint}") from None
    except Exception as exc:
        # whatever failed, it failed because the head went away; Ray's own errors get a
        # moment for a dying head's port to close, others are reported at once
        settle_s = _HEAD_SETTLE_S if type(exc).__module__.startswith("ray") else 0.0
        if watch.head_lost(settle_s=settle_s):
            raise ClusterError(head_lost) from None
        raise
    finally:
        watch.stop()
        _release(pool, extra_pools, learners)
        threads.close()


def _release(pool: LazyPool, extra_pools: dict[str, LazyPool], learners: dict[str, Any]) -> None:
    """Stop the run's actors (again harmless: each shutdown is idempotent)."""
    pool.shutdown()
    for extra in extra_pools.values():
        extra.shutdown()
    for learner in learners.values():
        learner.shutdown()



def _warn(message: str) -> None:
    import sys

    print(f"gamescale: warning: {message}", file=sys.stderr, flush=True)


def _start_learners(config: ExperimentConfig, specs: dict[str, Any]) -> dict[str, Any]:
    if not specs:
        return {}
    _connect_for_actors(config)
    from gamescale.framework.actors import start_learners

    replicas = _learner_replicas(config, specs)
    return start_learners(specs, config.runtime.gpus, replicas, threads=_learner_threads(config, replicas))


def _learner_replicas(config: ExperimentConfig, specs: dict[str, Any]) -> int:
    """`runtime.learner_replicas` resolved: a common divisor of the learners' gradient slices."""
    from gamescale.framework.actors import cluster_gpus

    slices = _gradient_slices(specs)
    asked = config.runtime.learner_replicas
    if asked != "auto":
        return int(asked)  # a divisor of `slices`: `_build` checked it
    gpus = config.runtime.gpus
    per_replica = (1 if cluster_gpus() > 0 else 0) if gpus == "auto" else int(gpus)
    room = cluster_gpus() // per_replica if per_replica > 0 else config.runtime.workers
    return max(d for d in range(1, slices + 1) if slices % d == 0 and d <= max(room, 1))


def _learner_threads(config: ExperimentConfig, replicas: int) -> int:
    """`runtime.learner_threads` resolved: auto = the rollout workers per learner replica (at
    least 1); each learner actor also caps it at its node's usable cores."""
    asked = config.runtime.learner_threads
    return int(asked) if asked != "auto" else max(1, config.runtime.workers // replicas)


def _restore(
    algorithm: Any,
    run: Any,
    learners: dict[str, Any],
    loaded: tuple[dict[str, Any], dict[str, bytes], dict[str, Any]] | None,
    run_dir: Path,
) -> tuple[dict[str, Any], int, float, dict[str, Any] | None]:
    """(state, next iteration, elapsed seconds, stop record) from a checkpoint, or a fresh start."""
    if loaded is None:
        return algorithm.init(run.seed), 0, 0.0, None
    state, blobs, meta = loaded
    missing = set(learners) - set(blobs)
    if missing:
        raise CheckpointError(f"checkpoint of {run_dir} has no learner state for {sorted(missing)}")
    for name, learner in learners.items():
        learner.load_bytes(blobs[name])
    return state, int(meta["next_iteration"]), float(meta.get("time_s", 0.0)), meta.get("stopped")


def _finish(
    config: ExperimentConfig,
    algorithm: Any,
    state: dict[str, Any],
    run_dir: Path,
    row: dict[str, float],
    stopped: dict[str, Any],
    placement: dict[str, Any],
    shards_reissued: int,
) -> None:
    from gamescale.framework.pictures import draw_run_tables
    from gamescale.framework.report import write_plots

    extra: dict[str, Any] = {}
    summary_fn = getattr(algorithm, "summary", None)
    if summary_fn is not None:
        extra = dict(summary_fn(state) or {})
    tables_fn = getattr(algorithm, "tables", None)
    for name, table in (tables_fn(state) if tables_fn else {}).items():
        with storage.atomic_path(run_dir / f"{name}.parquet") as tmp:
            pq.write_table(table, tmp)
    files_fn = getattr(algorithm, "files", None)
    for relative, data in (files_fn(state) if files_fn else {}).items():
        target = _inside(run_dir, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        with storage.atomic_path(target) as tmp:
            Path(tmp).write_bytes(data)
    write_plots(run_dir, config)
    draw_run_tables(run_dir)  # the pictures come from the tables alone, as in `gamescale report`
    if not row:
        table = storage.read_metrics(run_dir)
        row = {k: v[0] for k, v in table.slice(table.num_rows - 1).to_pydict().items()} if table.num_rows else {}
    summary = {
        "status": "completed",
        "name": config.name,
        "iterations": int(stopped["iteration"]) + 1,
        "stopped": stopped,
        "final": {k: (v if not isinstance(v, float) or np.isfinite(v) else None) for k, v in row.items()},
        "workers": config.runtime.workers,
        "shards_reissued": shards_reissued,
        "placement": placement,
        **extra,
    }
    storage.write_json_atomic(run_dir / storage.SUMMARY_FILE, summary)


def _inside(run_dir: Path, relative: str) -> Path:
    """`run_dir / relative` for an algorithm's file, which must stay inside the run directory."""
    path = Path(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"an algorithm's file must be a relative path inside the run directory, got {relative!r}")
    return run_dir / path


def _placement_summary(pools: dict[str, LazyPool], learners: dict[str, Any]) -> dict[str, Any]:
    """Where the run's actors ran: per pool the nodes of each worker, per learner its node."""
    out: dict[str, Any] = {"pools": {}, "learners": {}}
    nodes: set[str] = set()
    for name, lazy in pools.items():
        if lazy.pool is not None:
            report = lazy.pool.placement_report()
            out["pools"][name] = report
            nodes.update(report["nodes"])
    for name, learner in learners.items():
        out["learners"][name] = {"node": learner.node, "device": learner.device}
        nodes.add(learner.node)
    out["nodes"] = sorted(nodes)
    return out


__all__ = ["start_run", "resume_run", "RunContext", "GamescaleError"]
