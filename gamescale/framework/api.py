"""The Python API: the same runs as the CLI, for notebooks and scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from gamescale.framework import storage
from gamescale.framework.config import ExperimentConfig, load_config
from gamescale.framework.errors import ConfigError
from gamescale.framework.loop import Callback, resume_run, start_run


@dataclass(frozen=True)
class Run:
    """A run directory opened for reading: its resolved config, metrics and summary."""

    dir: Path
    config: ExperimentConfig

    @property
    def metrics(self) -> pa.Table:
        """One row per finished iteration (`iteration`, `time_s`, then the metrics)."""
        return storage.read_metrics(self.dir)

    @property
    def summary(self) -> dict[str, Any] | None:
        """summary.json, or None for a run that has not finished (killed or running)."""
        path = self.dir / storage.SUMMARY_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    @property
    def finished(self) -> bool:
        summary = self.summary
        return summary is not None and summary.get("status") == "completed"


def merge_overrides(
    overrides: dict[str, Any] | None, workers: int | None, address: str | None, out: str | Path | None
) -> dict[str, Any]:
    """Config overrides plus the `workers`, `address` and `out` shortcuts as dotted keys."""
    merged = dict(overrides or {})
    if workers is not None:
        merged["runtime.workers"] = workers
    if address is not None:
        merged["runtime.address"] = address
    if out is not None:
        merged["run.out"] = str(out)
    return merged


def run(
    name_or_config: str | Path | dict[str, Any] | ExperimentConfig,
    overrides: dict[str, Any] | None = None,
    workers: int | None = None,
    address: str | None = None,
    out: str | Path | None = None,
    progress: bool = False,
    callbacks: Sequence[Callback] = (),
) -> Run:
    """Run an experiment (a built-in name, a YAML path, a mapping or a config) to the end.

    Joins the Ray cluster this process is already connected to, or `address`, or starts
    an embedded local Ray.
    """
    config = load_config(name_or_config, merge_overrides(overrides, workers, address, out))
    run_dir = start_run(config, progress=progress, callbacks=callbacks)
    return load_run(run_dir)


def resume(
    run_dir: str | Path, progress: bool = False, callbacks: Sequence[Callback] = (), address: str | None = None
) -> Run:
    """Continue a killed run from its newest checkpoint; `address` moves it to another
    cluster ("local": an embedded one)."""
    return load_run(resume_run(Path(run_dir), progress=progress, callbacks=callbacks, address=address))


def load_run(run_dir: str | Path) -> Run:
    """Open a finished or killed run directory."""
    run_dir = Path(run_dir)
    config_path = run_dir / storage.CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {storage.CONFIG_FILE})")
    return Run(run_dir, load_config(config_path))


@dataclass(frozen=True)
class Sweep:
    """A sweep directory opened for reading."""

    dir: Path

    @property
    def table(self) -> pa.Table:
        """sweep.parquet: every metrics row of every trial, with the swept keys and `seed`."""
        import pyarrow.parquet as pq

        from gamescale.framework.sweep import SWEEP_TABLE

        return pq.read_table(self.dir / SWEEP_TABLE)

    @property
    def summary(self) -> dict[str, Any] | None:
        path = self.dir / storage.SUMMARY_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    @property
    def trials(self) -> list[Run]:
        from gamescale.framework.sweep import TRIALS_DIR

        return [load_run(p) for p in sorted((self.dir / TRIALS_DIR).iterdir()) if p.is_dir()]


def sweep(
    name_or_config: str | Path | dict[str, Any] | ExperimentConfig,
    grid: dict[str, Sequence[Any]] | Sequence[str] | None = None,
    seeds: int = 1,
    overrides: dict[str, Any] | None = None,
    workers: int | None = None,
    address: str | None = None,
    out: str | Path | None = None,
    progress: bool = False,
) -> Sweep:
    """Run an experiment over `grid` ({"env.size": [10, 20]} or ["env.size=10,20"]) and
    `seeds` seeds per grid point, one Ray Tune trial each; returns the sweep directory."""
    from gamescale.framework.sweep import default_sweep_dir, parse_grid, plan_sweep, start_sweep

    config = load_config(name_or_config, merge_overrides(overrides, workers, address, None))
    plan = plan_sweep(config, parse_grid(grid or {}), seeds)
    sweep_dir = Path(out) if out is not None else default_sweep_dir(config)
    return Sweep(start_sweep(plan, sweep_dir, progress=progress))


def resume_sweep(sweep_dir: str | Path, progress: bool = False) -> Sweep:
    """Continue a killed sweep: finished trials are kept, unfinished ones resume."""
    from gamescale.framework.sweep import resume_sweep as _resume

    return Sweep(_resume(Path(sweep_dir), progress=progress))


def load_runs(paths: Sequence[str | Path]) -> pa.Table:
    """Metrics of several runs and sweeps as one table with a `run` column."""
    from gamescale.framework.report import load_runs as _load_runs

    return _load_runs([Path(p) for p in paths])
