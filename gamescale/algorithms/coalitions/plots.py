"""Pictures of a least-core run: epsilon and the maximum violation against iterations (the
exact LP value as a line), and the least-core and Shapley allocations side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_convergence(state: dict[str, Any], plots_dir: Path, title: str) -> Path:
    plt = _pyplot()
    eps, viol, ref = state["history_epsilon"], state["history_max_violation"], state["history_lp_epsilon"]
    it = np.arange(len(eps))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(it, eps, marker=".", label="epsilon")
    ax1.plot(it, eps + viol, marker=".", label="certified epsilon (max excess)")
    ax1.plot(it, np.minimum.accumulate(eps + viol), label="best certified")
    if len(ref) and np.isfinite(ref[-1]):
        ax1.axhline(ref[-1], color="k", linestyle="--", label=f"LP value {ref[-1]:.4g}")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("least-core value")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(it, np.maximum(viol, 1e-16), marker=".")
    ax2.set_yscale("log")
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("max violation")
    ax2.grid(alpha=0.3, which="both")
    fig.suptitle(title)
    fig.tight_layout()
    plots_dir.mkdir(parents=True, exist_ok=True)
    path = plots_dir / "least_core_convergence.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_allocations(state: dict[str, Any], plots_dir: Path, names: list[str] | None = None) -> Path:
    plt = _pyplot()
    x = state["best_payoff"]
    n = len(x)
    idx = np.arange(n)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * n + 2), 4))
    has_shapley = state.get("shapley_method", "none") != "none"
    width = 0.4 if has_shapley else 0.8
    ax.bar(idx - (width / 2 if has_shapley else 0), x, width, label="least core")
    if has_shapley:
        hw = state["shapley_half_width"]
        ax.bar(
            idx + width / 2,
            state["shapley"],
            width,
            yerr=hw if np.any(hw > 0) else None,
            label=f"Shapley ({state['shapley_method']})",
        )
    ax.set_xticks(idx)
    ax.set_xticklabels(names if names is not None else [str(i) for i in idx], rotation=45 if names else 0)
    ax.set_ylabel("payoff")
    ax.axhline(0, color="k", linewidth=0.5)
    ax.legend()
    fig.tight_layout()
    plots_dir.mkdir(parents=True, exist_ok=True)
    path = plots_dir / "allocations.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
