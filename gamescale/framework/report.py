"""Reports of a run: one PNG per metric under `plots/`, the pictures of its known result
tables (`gamescale.framework.pictures`), and a table on the console."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gamescale.framework import storage
from gamescale.framework.config import ExperimentConfig, load_config
from gamescale.framework.errors import ConfigError
from gamescale.framework.pictures import AggFigures, draw_run_tables, save_png


def write_plots(run_dir: Path, config: ExperimentConfig) -> list[Path]:
    """Plot every metric against iteration; metrics in `report.log_y` on a log scale."""

    plt = AggFigures()

    table = storage.read_metrics(run_dir)
    folder = Path(run_dir) / storage.PLOTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    iterations = table["iteration"].to_numpy() if table.num_rows else np.zeros(0)
    written = []
    for name in table.column_names:
        if name in ("iteration", "time_s"):
            continue
        values = table[name].to_numpy(zero_copy_only=False).astype(float)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(iterations, values, marker="." if len(values) < 60 else None)
        if name in config.report.log_y and np.any(values > 0):
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel(name)
        ax.set_title(f"{config.name}: {name}")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        written.append(save_png(fig, folder / f"{name}.png", tight=False))
    return written


def write_sweep_plots(table, keys: list[str], folder: Path, config: ExperimentConfig) -> list[Path]:
    """Each metric against iteration: per grid point, the mean over seeds and its 95% interval."""
    return _overlay_plots(_series_from_sweep(table, keys), Path(folder), config.report.log_y, config.name)


def _series_from_sweep(table, keys: list[str], prefix: str = "") -> list[dict]:
    """One series per grid point: label, iterations, and per metric (mean, half-width) arrays."""
    from gamescale.framework.sweep import metric_columns, t_interval

    if not table.num_rows:
        return []
    frame = table.to_pandas()
    metrics = metric_columns(table, keys)
    groups = frame.groupby(keys, sort=False, dropna=False) if keys else [((), frame)]
    series = []
    for values, group in groups:
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(keys, values, strict=False)) or "all"
        iterations = np.sort(group["iteration"].unique())
        by_iteration = group.groupby("iteration")
        curves = {}
        for metric in metrics:
            stats = [t_interval(by_iteration.get_group(i)[metric].to_numpy()) for i in iterations]
            curves[metric] = (np.array([m for m, _ in stats]), np.array([h for _, h in stats]))
        series.append({"label": f"{prefix}{label}", "iterations": iterations, "curves": curves})
    return series


def _overlay_plots(series: list[dict], folder: Path, log_y, title: str) -> list[Path]:

    plt = AggFigures()

    folder.mkdir(parents=True, exist_ok=True)
    metrics: list[str] = []
    for entry in series:
        metrics.extend(m for m in entry["curves"] if m not in metrics)
    written = []
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        positive = False
        for entry in series:
            if metric not in entry["curves"]:
                continue
            mean, half = entry["curves"][metric]
            line = ax.plot(entry["iterations"], mean, label=entry["label"])[0]
            if np.any(half > 0):
                ax.fill_between(entry["iterations"], mean - half, mean + half, alpha=0.2, color=line.get_color())
            positive = positive or bool(np.any(mean > 0))
        if metric in log_y and positive:
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel(metric)
        ax.set_title(f"{title}: {metric}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(save_png(fig, folder / f"{metric}.png"))
    return written


# ---------------------------------------------------------------- console tables


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.6g}"
    return str(value)


def print_table(console, title: str, header: list[str], rows: list[list[str]], first_label: str = "") -> None:
    """Print rows readably: numbers are never cut or wrapped (each numeric column is at
    least as wide as its longest number); labels and headers may wrap. When the numbers
    do not fit the console side by side, the table is transposed (one line per column of
    the original) and, if need be, printed in several parts, so every value is shown."""
    from rich.table import Table

    def width(cells: list[str]) -> int:
        return max([len(c) for c in cells] + [1])

    numeric = [max(width([r[i] for r in rows]), min(len(header[i]), 14)) for i in range(1, len(header))]
    spare = console.width - sum(w + 3 for w in numeric) - 4
    if spare >= 12 or len(header) <= 2:
        view = Table(title=title)
        view.add_column(header[0], justify="left", overflow="fold", max_width=max(spare, 12))
        for name, w in zip(header[1:], numeric, strict=True):
            view.add_column(name, justify="right", overflow="fold", min_width=w)
        for row in rows:
            view.add_row(*row)
        console.print(view)
        return
    names = header[1:]
    name_width = width(names)
    cell_width = max([width(r[1:]) for r in rows] + [8])
    room = max(1, (console.width - name_width - 4) // (cell_width + 3))
    parts = [rows[i : i + room] for i in range(0, len(rows), room)] or [[]]
    for number, part in enumerate(parts, start=1):
        suffix = f" (part {number} of {len(parts)})" if len(parts) > 1 else ""
        view = Table(title=title + suffix)
        view.add_column(first_label or header[0], justify="left", no_wrap=True)
        for row in part:
            view.add_column(row[0], justify="right", overflow="fold", min_width=cell_width)
        for j, name in enumerate(names, start=1):
            view.add_row(name, *[row[j] for row in part])
        console.print(view)


def ordered_metrics(names: list[str], config: ExperimentConfig | None) -> list[str]:
    """Headline metrics first (`report.headline`, then log-scaled ones), then the rest, `time_s` last."""
    metrics = [n for n in names if n not in ("iteration", "time_s")]
    headline = list(config.report.headline) + list(config.report.log_y) if config is not None else []
    first = [m for m in dict.fromkeys(headline) if m in metrics]
    rest = [m for m in metrics if m not in first]
    return first + rest + (["time_s"] if "time_s" in names else [])


def report(run_dir: Path, console=None, max_rows: int = 12, redraw: bool = True) -> list[Path]:
    """Write the plots and pictures of one run (unless `redraw` is False: a run that just
    finished drew them) and print its metrics table (first and last rows)."""
    from rich.console import Console

    run_dir = Path(run_dir)
    if not (run_dir / storage.CONFIG_FILE).is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {storage.CONFIG_FILE})")
    config = load_config(run_dir / storage.CONFIG_FILE)
    if redraw:
        plots = write_plots(run_dir, config) + draw_run_tables(run_dir)
    else:
        plots = sorted((run_dir / storage.PLOTS_DIR).glob("*.png")) + sorted((run_dir / storage.PLOTS_DIR).glob("*.gif"))
    table = storage.read_metrics(run_dir)
    console = console or Console()
    columns = ordered_metrics(table.column_names, config)
    n = table.num_rows
    shown = list(range(n)) if n <= max_rows else [*range(max_rows // 2), *range(n - max_rows // 2, n)]
    data = table.to_pydict()
    rows = [[str(data["iteration"][i])] + [_fmt(data[c][i]) for c in columns] for i in shown]
    print_table(console, f"{config.name} — {n} iterations ({run_dir})", ["iteration", *columns], rows)
    print_result_tables(run_dir, console)
    stopped = _stopped(run_dir)
    if stopped:
        console.print(f"stopped: {stopped}")
    placed = _placement_line(run_dir)
    if placed:
        console.print(placed)
    for path in plots:
        console.print(f"plot: {path}")
    return plots


# Result tables small enough to read on the console, printed by `report` when a run has them.
CONSOLE_TABLES = {"crosstable": "crosstable: points / games of each row's bot against column k's"}


def print_result_tables(run_dir: Path, console) -> None:
    """Print each of the run's `CONSOLE_TABLES` (RUN_DIR/<name>.parquet), every cell as text."""
    import pyarrow.parquet as pq

    for name, title in CONSOLE_TABLES.items():
        path = Path(run_dir) / f"{name}.parquet"
        if not path.is_file():
            continue
        table = pq.read_table(path)
        data = table.to_pydict()
        rows = [[_fmt(data[c][i]) for c in table.column_names] for i in range(table.num_rows)]
        print_table(console, title, list(table.column_names), rows)


def _placement_line(run_dir: Path) -> str:
    """`ran on 2 nodes: 2 rollout workers (spread), 1 learner` from summary.json, if actors ran."""
    import json

    path = Path(run_dir) / storage.SUMMARY_FILE
    if not path.is_file():
        return ""
    placement = json.loads(path.read_text()).get("placement") or {}
    nodes = placement.get("nodes") or []
    if not nodes:
        return ""
    parts = []
    for name, pool in (placement.get("pools") or {}).items():
        count = len(pool["workers"]) - pool.get("dropped_workers", 0)
        label = "rollout workers" if name == "rollout" else f"'{name}' workers"
        parts.append(f"{count} {label} ({pool['placement']})")
    if placement.get("learners"):
        parts.append(f"{len(placement['learners'])} learner(s)")
    return f"ran on {len(nodes)} node(s): " + ", ".join(parts)


def _stopped(run_dir: Path) -> str:
    import json

    path = Path(run_dir) / storage.SUMMARY_FILE
    if not path.is_file():
        return ""
    stopped = json.loads(path.read_text()).get("stopped") or {}
    return f"{stopped.get('reason', '')} ({stopped.get('message', '')})" if stopped else ""


# ---------------------------------------------------------------- comparing runs and sweeps


def _labels(paths: list[Path]) -> list[str]:
    """A legend label per directory: the experiment name, or the folder name where names repeat."""
    import json

    from gamescale.framework.sweep import SWEEP_FILE, is_sweep_dir

    names = []
    for path in paths:
        if is_sweep_dir(path):
            names.append(json.loads((path / SWEEP_FILE).read_text())["name"])
        else:
            names.append(load_config(path / storage.CONFIG_FILE).name)
    return [path.name if names.count(name) > 1 else name for name, path in zip(names, paths, strict=True)]


def _check_dirs(paths: list[Path]) -> list[Path]:
    from gamescale.framework.sweep import is_sweep_dir

    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("name at least one run or sweep directory")
    for path in paths:
        if not (path / storage.CONFIG_FILE).is_file() and not is_sweep_dir(path):
            raise ConfigError(f"{path} is not a run or sweep directory (no {storage.CONFIG_FILE} or sweep.json)")
    return paths


def load_runs(paths):
    """Metrics of several runs and sweeps as one table with a `run` column in front (a
    sweep contributes each trial as `LABEL/TRIAL`, with its swept keys and seed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gamescale.framework.sweep import SWEEP_TABLE, is_sweep_dir

    paths = _check_dirs(list(paths))
    tables = []
    for label, path in zip(_labels(paths), paths, strict=True):
        if is_sweep_dir(path):
            if not (path / SWEEP_TABLE).is_file():
                raise ConfigError(f"sweep {path} has not finished (no {SWEEP_TABLE}); `gamescale resume {path}`")
            table = pq.read_table(path / SWEEP_TABLE)
            run = [f"{label}/{t}" for t in table["trial"].to_pylist()]
        else:
            table = storage.read_metrics(path)
            run = [label] * table.num_rows
        tables.append(table.add_column(0, "run", pa.array(run, pa.string())))
    return pa.concat_tables(tables, promote_options="permissive")


def compare(paths, out: Path, console=None, title: str = "comparison") -> list[Path]:
    """Overlay the metrics of several runs and sweeps: one PNG per metric under `out`
    (sweeps as mean and 95% interval per grid point) and one table of final values."""
    import json

    import pyarrow.parquet as pq
    from rich.console import Console

    from gamescale.framework.sweep import SWEEP_FILE, SWEEP_TABLE, is_sweep_dir

    paths = _check_dirs(list(paths))
    console = console or Console()
    series, log_y = [], []
    for label, path in zip(_labels(paths), paths, strict=True):
        if is_sweep_dir(path):
            plan = json.loads((path / SWEEP_FILE).read_text())
            if not (path / SWEEP_TABLE).is_file():
                raise ConfigError(f"sweep {path} has not finished (no {SWEEP_TABLE}); `gamescale resume {path}`")
            log_y += load_config(plan["base"]).report.log_y
            prefix = f"{label}: " if len(paths) > 1 else ""
            series += _series_from_sweep(pq.read_table(path / SWEEP_TABLE), list(plan["grid"]), prefix)
            continue
        config = load_config(path / storage.CONFIG_FILE)
        log_y += config.report.log_y
        table = storage.read_metrics(path)
        curves = {
            m: (table[m].to_numpy(zero_copy_only=False).astype(float), np.zeros(table.num_rows))
            for m in table.column_names
            if m not in ("iteration", "time_s")
        }
        series.append({"label": label, "iterations": table["iteration"].to_numpy(), "curves": curves})
    plots = _overlay_plots(series, Path(out), log_y, title)
    metrics: list[str] = []
    for entry in series:
        metrics.extend(m for m in entry["curves"] if m not in metrics)
    metrics = [m for m in dict.fromkeys(log_y) if m in metrics] + [m for m in metrics if m not in log_y]
    rows = []
    for entry in series:
        cells = [entry["label"], str(int(entry["iterations"][-1]) + 1 if len(entry["iterations"]) else 0)]
        for metric in metrics:
            if metric not in entry["curves"] or not len(entry["iterations"]):
                cells.append("")
                continue
            mean, half = entry["curves"][metric]
            cells.append(_fmt(float(mean[-1])) + (f" ± {half[-1]:.3g}" if half[-1] > 0 else ""))
        rows.append(cells)
    print_table(console, f"final values ({len(series)} lines; ± = 95% interval over seeds)", ["run", "iterations", *metrics], rows, "")
    for path in plots:
        console.print(f"plot: {path}")
    return plots


def report_sweep(sweep_dir: Path, console=None) -> list[Path]:
    """Redraw a finished sweep's interval plots and print its table of final values."""
    sweep_dir = Path(sweep_dir)
    return compare([sweep_dir], sweep_dir / storage.PLOTS_DIR, console, title=_labels([sweep_dir])[0])
