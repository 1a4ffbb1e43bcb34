"""Sweeps: one experiment over a grid of config values and several seeds, run by Ray Tune.

Every (grid point, seed) is one Tune trial; every trial is a normal run directory (the
same loop, checkpoints and resume as `gamescale run`), so a sweep is only a plan and a
collection of runs. Layout of a sweep directory::

    sweep.json          the plan: base config, grid, seeds, one entry per trial (written first)
    trials/NNN-.../     one run directory per trial
    sweep.parquet       every metrics row of every trial, with the swept keys and `seed`
    plots/*.png         each metric: mean over seeds and a 95% interval, per grid point
    summary.json        written last, only when every trial has finished

A killed sweep resumes with `gamescale resume SWEEP_DIR`: finished trials are kept as they
are and unfinished ones continue from their own newest checkpoint.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gamescale.framework import storage
from gamescale.framework.config import ExperimentConfig, load_config, parse_value
from gamescale.framework.errors import ConfigError, GamescaleError

SWEEP_FILE = "sweep.json"
SWEEP_TABLE = "sweep.parquet"
TRIALS_DIR = "trials"


@dataclass(frozen=True)
class Trial:
    """One (grid point, seed): its run directory name and config overrides."""

    name: str
    point: int
    seed: int
    values: dict[str, Any]


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep runs; saved as sweep.json so a resumed sweep runs the same trials."""

    name: str
    base: dict[str, Any]  # the resolved base config (with the run-level shortcuts applied)
    grid: dict[str, list[Any]]
    seeds: list[int]
    trials: list[Trial]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "name": self.name,
            "base": self.base,
            "grid": self.grid,
            "seeds": self.seeds,
            "trials": [t.__dict__ for t in self.trials],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SweepPlan:
        return cls(
            name=data["name"],
            base=data["base"],
            grid={k: list(v) for k, v in data["grid"].items()},
            seeds=[int(s) for s in data["seeds"]],
            trials=[Trial(**t) for t in data["trials"]],
        )

    def trial_config(self, trial: Trial, run_dir: Path) -> ExperimentConfig:
        overrides = {**trial.values, "run.seed": trial.seed, "run.out": str(run_dir)}
        return load_config(self.base, overrides)


def parse_grid(items: Sequence[str] | Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """`["env.size=10,20", "algorithm.learning_rate=0.1,1"]` (or a mapping) -> {key: values}."""
    grid: dict[str, list[Any]] = {}
    pairs = items.items() if isinstance(items, Mapping) else [_split_grid_item(text) for text in items]
    for key, values in pairs:
        key = str(key).strip()
        values = list(values)
        if not key:
            raise ConfigError("--grid: empty key; expected KEY=V1,V2,...")
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice")
        if key == "run.seed":
            raise ConfigError("--grid run.seed: seeds are swept with --seeds N, not --grid")
        if key in ("run.out", "runtime.address"):
            raise ConfigError(f"--grid {key}: cannot be swept")
        if not values:
            raise ConfigError(f"--grid {key}: empty value list; expected KEY=V1,V2,...")
        grid[key] = values
    return grid


def _split_grid_item(text: str) -> tuple[str, list[Any]]:
    if "=" not in text:
        raise ConfigError(f"--grid {text!r}: expected KEY=V1,V2,..., e.g. env.size=10,20")
    key, raw = text.split("=", 1)
    parts = [p.strip() for p in raw.split(",")] if raw.strip() else []
    if any(p == "" for p in parts):
        raise ConfigError(f"--grid {key.strip()}: empty value in {raw!r}")
    return key, [parse_value(p) for p in parts]


def _slug(values: dict[str, Any]) -> str:
    words = [f"{key.rsplit('.', 1)[-1]}={value}" for key, value in values.items()]
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", ",".join(words))[:80]


def plan_sweep(config: ExperimentConfig, grid: dict[str, list[Any]], num_seeds: int) -> SweepPlan:
    """Every (grid point, seed) as a trial; each trial config is validated now, so a bad
    key or value fails before anything is created."""
    if num_seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {num_seeds}")
    base = config.to_dict()
    base["run"] = {**base["run"], "out": None}
    seeds = [int(config.run.seed) + i for i in range(num_seeds)]
    keys = list(grid)
    trials = []
    for point, combo in enumerate(itertools.product(*(grid[k] for k in keys))):
        values = dict(zip(keys, combo, strict=True))
        for seed in seeds:
            name = f"{len(trials):03d}-{_slug(values)}{',' if values else ''}seed={seed}"
            trials.append(Trial(name=name, point=point, seed=seed, values=values))
    plan = SweepPlan(name=config.name, base=base, grid=grid, seeds=seeds, trials=trials)
    for trial in trials[:: len(seeds)]:
        try:
            plan.trial_config(trial, Path("unused"))
        except ConfigError as exc:
            raise ConfigError(f"--grid {', '.join(f'{k}={v}' for k, v in trial.values.items())}: {exc}") from None
    return plan


def default_sweep_dir(config: ExperimentConfig) -> Path:
    return Path("runs") / f"sweep-{config.name}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


# ---------------------------------------------------------------- running


def run_trial(params: dict[str, Any]) -> None:
    """The Tune trainable: run (or continue) one trial's run directory, reporting each row."""
    from ray import tune

    from gamescale.framework.loop import _is_finished, resume_run, start_run

    params = params["trial"]
    run_dir = Path(params["run_dir"])
    plan = SweepPlan.from_json(params["plan"])
    trial = next(t for t in plan.trials if t.name == params["trial"])

    def report(ctx) -> None:
        tune.report({k: v for k, v in ctx.row.items()})

    if _is_finished(run_dir):
        table = storage.read_metrics(run_dir)
        tune.report(table.slice(table.num_rows - 1).to_pylist()[0] if table.num_rows else {})
    elif (run_dir / storage.CONFIG_FILE).is_file():
        resume_run(run_dir, progress=False, callbacks=[report])
    else:
        start_run(plan.trial_config(trial, run_dir), run_dir, progress=False, callbacks=[report])


def trial_resources(config: ExperimentConfig) -> list[dict[str, float]]:
    """Tune bundles of one trial: a CPU for the driver of the run, and one per rollout
    worker when the algorithm samples on workers (exact solvers run in the trial itself)."""
    from gamescale.algorithms.registry import build_algorithm
    from gamescale.envs.registry import build_env

    algorithm = build_algorithm(config.algorithm, build_env(config.env))
    bundles = [{"CPU": 1.0}]
    if getattr(algorithm, "uses_rollout_workers", True):
        bundles += [{"CPU": 1.0}] * config.runtime.workers
    return bundles


def start_sweep(plan: SweepPlan, sweep_dir: Path, progress: bool = True) -> Path:
    """Write the plan, then run it."""
    sweep_dir = Path(sweep_dir)
    if (sweep_dir / SWEEP_FILE).exists():
        raise ConfigError(f"{sweep_dir} already holds a sweep; use `gamescale resume {sweep_dir}`")
    if (sweep_dir / storage.CONFIG_FILE).exists():
        raise ConfigError(f"{sweep_dir} holds a run, not a sweep; choose another --out")
    bundles = _prepare(plan)  # joins or starts Ray; fails before anything is written
    sweep_dir.mkdir(parents=True, exist_ok=True)
    storage.write_json_atomic(sweep_dir / SWEEP_FILE, plan.to_json())
    return _run_plan(plan, sweep_dir, bundles, progress)


def resume_sweep(sweep_dir: Path, progress: bool = True) -> Path:
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / SWEEP_FILE
    if not path.is_file():
        raise ConfigError(f"{sweep_dir} is not a sweep directory (no {SWEEP_FILE})")
    if _sweep_finished(sweep_dir):
        raise ConfigError(f"sweep {sweep_dir} already finished; nothing to resume")
    try:
        plan = SweepPlan.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is corrupt: {exc}") from None
    return _run_plan(plan, sweep_dir, _prepare(plan), progress)


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def _sweep_finished(sweep_dir: Path) -> bool:
    path = sweep_dir / storage.SUMMARY_FILE
    try:
        return path.is_file() and json.loads(path.read_text()).get("status") == "completed"
    except ValueError:
        return False


def _prepare(plan: SweepPlan) -> list[dict[str, float]]:
    """Connect to Ray and size one trial; a trial larger than the cluster is refused."""
    from gamescale.framework.runtime import connect

    first = plan.trial_config(plan.trials[0], Path("unused"))
    connect(first.runtime.address, first.runtime.num_cpus)
    bundles = trial_resources(first)
    _check_trial_fits(bundles)
    return bundles


def _run_plan(plan: SweepPlan, sweep_dir: Path, bundles: list[dict[str, float]], progress: bool) -> Path:
    from gamescale.framework.loop import _is_finished

    sweep_dir = sweep_dir.resolve()
    pending = [t for t in plan.trials if not _is_finished(sweep_dir / TRIALS_DIR / t.name)]
    if pending:
        _tune(plan, sweep_dir, pending, bundles, progress)
    return collect_sweep(plan, sweep_dir)


def _tune(
    plan: SweepPlan, sweep_dir: Path, trials: list[Trial], bundles: list[dict[str, float]], progress: bool
) -> None:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from ray import tune

    params = [
        {"run_dir": str(sweep_dir / TRIALS_DIR / t.name), "plan": plan.to_json(), "trial": t.name} for t in trials
    ]
    attempt = len(list((sweep_dir / ".tune").glob("attempt-*"))) if (sweep_dir / ".tune").is_dir() else 0
    trainable = tune.with_resources(run_trial, tune.PlacementGroupFactory(bundles))
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(params)},
        tune_config=tune.TuneConfig(
            trial_name_creator=_trial_name, trial_dirname_creator=_trial_name, reuse_actors=True
        ),
        run_config=tune.RunConfig(
            name=f"attempt-{attempt}",
            storage_path=str(sweep_dir / ".tune"),
            verbose=1 if progress else 0,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    results = tuner.fit()
    failed = [r for r in results if r.error is not None]
    if failed:
        first_error = str(failed[0].error).strip().splitlines()
        message = next((line for line in reversed(first_error) if line.strip()), "failed")
        raise GamescaleError(f"{len(failed)} of {len(trials)} sweep trials failed; first: {message}")


def _check_trial_fits(bundles: list[dict[str, float]]) -> None:
    """A trial bigger than the whole cluster would wait forever: say so instead."""
    import ray

    from gamescale.framework.errors import ClusterError

    need = sum(b.get("CPU", 0.0) for b in bundles)
    have = float(ray.cluster_resources().get("CPU", 0.0))
    if need > have:
        raise ClusterError(
            f"each sweep trial needs {need:g} CPUs (1 for the run + {len(bundles) - 1} rollout workers) "
            f"but the cluster has {have:g}; lower --workers"
        )


def _trial_name(trial) -> str:
    return str(trial.config["trial"]["trial"])


# ---------------------------------------------------------------- collecting


def sweep_table(plan: SweepPlan, sweep_dir: Path) -> pa.Table:
    """Every metrics row of every trial, with `trial`, the swept keys and `seed` in front."""
    tables = []
    for trial in plan.trials:
        table = storage.read_metrics(Path(sweep_dir) / TRIALS_DIR / trial.name)
        front = {"trial": pa.array([trial.name] * table.num_rows, pa.string())}
        for key in plan.grid:
            front[key] = pa.array([trial.values[key]] * table.num_rows)
        front["seed"] = pa.array([trial.seed] * table.num_rows, pa.int64())
        for i, (name, column) in enumerate(front.items()):
            table = table.add_column(i, name, column)
        tables.append(table)
    return pa.concat_tables(tables, promote_options="permissive")


def collect_sweep(plan: SweepPlan, sweep_dir: Path) -> Path:
    """sweep.parquet, the interval plots and summary.json (last)."""
    from gamescale.framework.report import write_sweep_plots

    table = sweep_table(plan, sweep_dir)
    with storage.atomic_path(Path(sweep_dir) / SWEEP_TABLE) as tmp:
        pq.write_table(table, tmp)
    base = load_config(plan.base)
    write_sweep_plots(table, list(plan.grid), Path(sweep_dir) / storage.PLOTS_DIR, base)
    summary = {
        "status": "completed",
        "name": plan.name,
        "grid": plan.grid,
        "seeds": plan.seeds,
        "trials": len(plan.trials),
        "final": final_statistics(table, list(plan.grid)),
    }
    storage.write_json_atomic(Path(sweep_dir) / storage.SUMMARY_FILE, summary)
    return Path(sweep_dir)


def metric_columns(table: pa.Table, keys: Sequence[str]) -> list[str]:
    skip = {"trial", "seed", "iteration", "time_s", "run", *keys}
    return [c for c in table.column_names if c not in skip]


def t_interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t interval of `values` (0 for one value)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    mean = float(values.mean())
    if values.size < 2:
        return mean, 0.0
    half = float(stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size))
    return mean, half


def final_statistics(table: pa.Table, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Per grid point: the swept values, the seeds, and mean / 95% half-width of each
    metric's last row over the seeds."""
    rows = table.to_pandas() if table.num_rows else None
    if rows is None:
        return []
    last = rows.sort_values("iteration").groupby("trial", sort=False).tail(1)
    out = []
    group_keys = list(keys) if keys else None
    groups = last.groupby(group_keys, sort=False, dropna=False) if group_keys else [((), last)]
    for values, group in groups:
        values = values if isinstance(values, tuple) else (values,)
        entry: dict[str, Any] = {k: _plain(v) for k, v in zip(keys, values, strict=False)}
        entry["seeds"] = int(len(group))
        for metric in metric_columns(table, keys):
            mean, half = t_interval(group[metric].to_numpy())
            entry[metric] = {"mean": mean, "ci95": half}
        out.append(entry)
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
