"""Reports of a run: one PNG per metric under `plots/`, and a table on the console."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gamescale.framework import storage
from gamescale.framework.config import ExperimentConfig, load_config
from gamescale.framework.errors import ConfigError


def write_plots(run_dir: Path, config: ExperimentConfig) -> list[Path]:
    """Plot every metric against iteration; metrics in `report.log_y` on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
        path = folder / f"{name}.png"
        with storage.atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def report(run_dir: Path, console=None, max_rows: int = 12) -> list[Path]:
    """Write the plots and print the metrics table (first rows, last rows) of a run."""
    from rich.console import Console
    from rich.table import Table

    run_dir = Path(run_dir)
    if not (run_dir / storage.CONFIG_FILE).is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {storage.CONFIG_FILE})")
    config = load_config(run_dir / storage.CONFIG_FILE)
    plots = write_plots(run_dir, config)
    table = storage.read_metrics(run_dir)
    console = console or Console()
    view = Table(title=f"{config.name} — {table.num_rows} iterations ({run_dir})")
    for name in table.column_names:
        view.add_column(name, justify="right")
    n = table.num_rows
    shown = list(range(n)) if n <= max_rows else [*range(max_rows // 2), -1, *range(n - max_rows // 2, n)]
    columns = table.to_pydict()
    for i in shown:
        if i < 0:
            view.add_row(*["…"] * len(columns))
            continue
        cells = []
        for name, values in columns.items():
            value = values[i]
            cells.append(str(value) if name == "iteration" else ("" if value is None else f"{value:.6g}"))
        view.add_row(*cells)
    console.print(view)
    for path in plots:
        console.print(f"plot: {path}")
    return plots
