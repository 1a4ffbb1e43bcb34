"""Pictures drawn from the result tables of a run: one drawer per known table name.

An algorithm returns its results as Arrow tables (`tables(state)`, written to
RUN_DIR/<name>.parquet); the loop, at the end of a run, and `gamescale report RUN_DIR`,
from a finished run directory, both call `draw_run_tables`, which hands every table whose
name is in `DRAWERS` to its drawer. A drawer reads only the table (columns and the
annotations of `gamescale.algorithms.tables`), writes PNGs (or a GIF) under `plots/` and
returns their paths; tables without a drawer are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from gamescale.algorithms.tables import annotations
from gamescale.framework import storage

Drawer = Callable[[pa.Table, Path], list[Path]]
DRAWERS: dict[str, Drawer] = {}


def drawer(name: str) -> Callable[[Drawer], Drawer]:
    """Register the decorated function as the drawer of tables called `name`."""

    def register(function: Drawer) -> Drawer:
        DRAWERS[name] = function
        return function

    return register


def draw_table(name: str, table: pa.Table, plots_dir: Path) -> list[Path]:
    """The pictures of one table (none for a name without a drawer)."""
    draw = DRAWERS.get(name)
    return draw(table, Path(plots_dir)) if draw is not None else []


def draw_run_tables(run_dir: Path) -> list[Path]:
    """Draw every known table of a run (RUN_DIR/<name>.parquet) under RUN_DIR/plots."""
    import pyarrow.parquet as pq

    run_dir = Path(run_dir)
    written: list[Path] = []
    for source in sorted(run_dir.glob("*.parquet")):
        if source.stem in DRAWERS:
            written += draw_table(source.stem, pq.read_table(source), run_dir / storage.PLOTS_DIR)
    return written


class AggFigures:
    """Figures on the Agg canvas without importing pyplot (a third of a second at start-up):
    `subplots(...)` and `close(fig)` as pyplot spells them."""

    @staticmethod
    def subplots(*args, figsize=None, **kwargs):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        FigureCanvasAgg(fig)
        return fig, fig.subplots(*args, **kwargs)

    @staticmethod
    def close(fig) -> None:
        fig.clear()


def save_png(fig, path: Path, dpi: int = 110, tight: bool = True) -> Path:
    """Write `fig` to `path` atomically (`tight`: crop to the drawn content) and close it."""
    with storage.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    AggFigures.close(fig)
    return path


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table[name].to_numpy(zero_copy_only=False)


# ---------------------------------------------------------------- mean-field games


def _mass_grids(table: pa.Table) -> tuple[np.ndarray, np.ndarray | None]:
    """`mass [P, T + 1, X, Y]` (Y = 1 on a line) and `wall [X, Y]` (or None) from a
    `mean_field` table (see `gamescale.algorithms.mfg.pictures`)."""
    cols = {name: _column(table, name) for name in table.column_names}
    population, t, x = cols["population"].astype(int), cols["t"].astype(int), cols["x"].astype(int)
    y = cols["y"].astype(int) if "y" in cols else np.zeros_like(x)
    grid = np.zeros((population.max() + 1, t.max() + 1, x.max() + 1, y.max() + 1))
    grid[population, t, x, y] = cols["mass"]
    wall = None
    if "wall" in cols:
        wall = np.zeros(grid.shape[2:], dtype=bool)
        wall[x, y] = cols["wall"].astype(bool)
    return grid, wall


@drawer("mean_field")
def draw_mean_field(table: pa.Table, plots_dir: Path, max_panels: int = 6) -> list[Path]:
    """The population over time: on a line, a heatmap over (time, state) per population;
    on a grid, heatmaps at a few times (walls grey) in `mean_field.png` and every time
    step in `mean_field.gif`."""
    import matplotlib

    plt = AggFigures()
    grid, wall = _mass_grids(table)
    num_populations, num_times, size_x, size_y = grid.shape
    if size_y == 1:  # states on a line: time runs down the picture
        fig, axes = plt.subplots(1, num_populations, figsize=(5 * num_populations, 4), squeeze=False)
        for p, ax in enumerate(axes[0]):
            image = ax.imshow(grid[p, :, :, 0], aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
            ax.set_xlabel("state")
            ax.set_ylabel("time")
            ax.set_title("mean field" if num_populations == 1 else f"population {p}")
            fig.colorbar(image, ax=ax, label="mass")
        return [save_png(fig, plots_dir / "mean_field.png")]
    times = np.unique(np.linspace(0, num_times - 1, min(max_panels, num_times)).round().astype(int))
    masked = np.ma.masked_array(grid, np.broadcast_to(wall, grid.shape)) if wall is not None else grid
    # The start is often a point mass; scale colours to the later steps (t = 0 saturates)
    # and with a square-root norm so a thin crowd still shows.
    vmax = float(grid[:, 1:].max() if num_times > 1 else grid.max()) or 1.0
    norm = matplotlib.colors.PowerNorm(gamma=0.5, vmin=0.0, vmax=vmax)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.55")  # walls in grey
    fig, axes = plt.subplots(
        num_populations, len(times), figsize=(2.4 * len(times) + 1, 2.4 * num_populations + 0.4), squeeze=False
    )
    for p in range(num_populations):
        for ax, t in zip(axes[p], times, strict=True):
            image = ax.imshow(masked[p, t].T, origin="lower", cmap=cmap, norm=norm, interpolation="nearest")
            ax.set_title(f"t = {t}" if num_populations == 1 else f"pop {p}, t = {t}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(image, ax=axes, shrink=0.8, label="mass")
    fig.suptitle("mean field over time (grey: walls)", fontsize=10)
    return [save_png(fig, plots_dir / "mean_field.png"), _animate(masked, cmap, norm, plots_dir / "mean_field.gif")]


def _animate(masked, cmap, norm, path: Path) -> Path:
    plt = AggFigures()
    from matplotlib.animation import FuncAnimation, PillowWriter

    num_populations, num_times = masked.shape[:2]
    fig, axes = plt.subplots(1, num_populations, figsize=(3.2 * num_populations, 3.4), squeeze=False)
    images = []
    for p, ax in enumerate(axes[0]):
        images.append(ax.imshow(masked[p, 0].T, origin="lower", cmap=cmap, norm=norm, interpolation="nearest"))
        ax.set_xticks([])
        ax.set_yticks([])
    title = fig.suptitle("t = 0")

    def draw(t: int):
        for p, image in enumerate(images):
            image.set_data(masked[p, t].T)
        title.set_text(f"t = {t}")
        return [*images, title]

    animation = FuncAnimation(fig, draw, frames=num_times, blit=False)
    with storage.atomic_path(path) as tmp:
        animation.save(str(tmp), writer=PillowWriter(fps=max(2, min(12, num_times // 4))))
    plt.close(fig)
    return path


# ---------------------------------------------------------------- routing


@drawer("link_flows")
def draw_voc_map(table: pa.Table, plots_dir: Path) -> list[Path]:
    """`voc_map.png`: the network at its node coordinates (columns init_x, init_y, term_x,
    term_y), each link coloured by volume/capacity; nothing without coordinates."""
    if "init_x" not in table.column_names:
        return []
    from matplotlib.collections import LineCollection

    ends = [np.stack([_column(table, f"{end}_x"), _column(table, f"{end}_y")], axis=1) for end in ("init", "term")]
    segments = np.stack(ends, axis=1)  # [L, 2 ends, (x, y)]
    ok = np.isfinite(segments).all(axis=(1, 2))
    voc = _column(table, "voc")
    order = np.argsort(voc[ok])  # congested links drawn last, on top
    fig, ax = AggFigures.subplots(figsize=(7, 7))
    lines = LineCollection(segments[ok][order], array=voc[ok][order], cmap="RdYlGn_r", linewidths=1.2)
    lines.set_clim(0.0, max(1.0, float(np.quantile(voc[ok], 0.99)) if ok.any() else 1.0))
    ax.add_collection(lines)
    ax.autoscale()
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.colorbar(lines, ax=ax, shrink=0.7, label="volume / capacity")
    ax.set_title(f"{annotations(table).get('network', '')}: volume / capacity at equilibrium")
    fig.tight_layout()
    return [save_png(fig, plots_dir / "voc_map.png", dpi=120, tight=False)]


@drawer("link_flows_over_time")
def draw_link_flows(table: pa.Table, plots_dir: Path, max_links: int = 12) -> list[Path]:
    """`link_flows.png`: vehicles on the busiest `max_links` links over time."""
    step, link = _column(table, "step").astype(int), _column(table, "link").astype(int)
    vehicles = np.zeros((step.max() + 1, link.max() + 1))
    vehicles[step, link] = _column(table, "vehicles")
    time = np.zeros(len(vehicles))
    time[step] = _column(table, "time")
    ends = zip(link, _column(table, "init_node"), _column(table, "term_node"), strict=True)
    names = {int(k): f"{a}->{b}" for k, a, b in ends}  # link -> "init->term" in TNTP numbers
    busiest = np.argsort(-vehicles.max(axis=0), kind="stable")[:max_links]
    fig, ax = AggFigures.subplots(figsize=(8, 4.5))
    for k in sorted(busiest):
        ax.plot(time, vehicles[:, k], label=names[int(k)])
    ax.set_xlabel("time (network time units)")
    ax.set_ylabel("vehicles on link")
    ax.set_title(f"{annotations(table).get('network', '')}: link flows at the learned policy")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return [save_png(fig, plots_dir / "link_flows.png", dpi=100, tight=False)]


@drawer("n_vs_mean_field")
def draw_n_vs_mean_field(table: pa.Table, plots_dir: Path) -> list[Path]:
    """`n_vs_mean_field.png`: the distance to the mean-field travel time against N."""
    if table.num_rows == 0:
        return []
    t = table.to_pydict()
    fig, ax = AggFigures.subplots(figsize=(6, 4))
    ax.errorbar(t["num_vehicles"], t["distance"], yerr=t["distance_std"], marker="o", capsize=3)
    ax.set_xscale("log")
    # Distances are non-negative; symlog keeps an exact 0 plottable, with no negative half.
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("number of vehicles N")
    ax.set_ylabel("|avg travel time N-player - mean field|")
    ax.set_title(f"{annotations(table).get('network', '')}: N-player vs mean-field equilibrium")
    fig.tight_layout()
    return [save_png(fig, plots_dir / "n_vs_mean_field.png", dpi=100, tight=False)]


# ---------------------------------------------------------------- sequence models


@drawer("frontier")
def draw_reward_vs_kl(table: pa.Table, plots_dir: Path) -> list[Path]:
    """`reward_vs_kl.png`: every method's (KL from the reference, true reward) over
    training, smoothed over 5 iterations, and the Best-of-N points (step -1)."""
    from gamescale.algorithms.lm.scaling import trailing_mean

    method, step = _column(table, "method"), _column(table, "step")
    kl, reward = _column(table, "kl_from_reference"), _column(table, "reward")
    fig, ax = AggFigures.subplots(figsize=(6.5, 4.5))
    styles = ["-", "--", "-.", ":"]
    trained = annotations(table).get("methods") or list(dict.fromkeys(method[step >= 0]))
    for i, name in enumerate(trained):
        rows = (method == name) & (step >= 0)
        if rows.any():
            smooth_kl, smooth_reward = trailing_mean(kl[rows], 5), trailing_mean(reward[rows], 5)
            order = 10 - i  # the first (headline) method on top where curves overlap
            (line,) = ax.plot(
                smooth_kl, smooth_reward, styles[i % 4], lw=2.0 if i == 0 else 1.4, label=name, zorder=order
            )
            ax.plot(smooth_kl[-1:], smooth_reward[-1:], "o", color=line.get_color(), zorder=order)
    best = step == -1
    ax.plot(kl[best], reward[best], "k--s", ms=4, label="Best-of-N (reference)")
    for n, k, r in zip(_column(table, "best_of_n")[best], kl[best], reward[best], strict=True):
        ax.annotate(f"N={int(n)}", (k, r), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("KL(policy || reference)  [nats]")
    ax.set_ylabel("true reward")
    ax.set_title("reward vs KL (BOND, J-BOND, REINFORCE+KL, Best-of-N)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return [save_png(fig, plots_dir / "reward_vs_kl.png", dpi=120, tight=False)]


@drawer("distill_curves")
def draw_distill_loglog(table: pa.Table, plots_dir: Path) -> list[Path]:
    """`distill_loglog.png`: proxy and golden distances on log-log axes with the fitted
    power laws (columns proxy_law, golden_law; exponents annotated) and the detected
    onset of teacher hacking."""
    if table.num_rows < 2:
        return []
    notes = annotations(table)
    step = _column(table, "step")
    fig, ax = AggFigures.subplots(figsize=(6.5, 4.5))
    ax.loglog(step, _column(table, "proxy_distance"), label="proxy: KL(teacher || student)", color="tab:blue")
    ax.loglog(step, _column(table, "golden_distance"), label="golden: KL(oracle || student)", color="tab:orange")
    for name, color in (("proxy", "tab:blue"), ("golden", "tab:orange")):
        law = notes.get(f"{name}_law")
        if law is not None:
            values = _column(table, f"{name}_law")
            ax.loglog(step, values, "--", color=color, alpha=0.7, label=f"{name} law t^-{law['b']:.2f}")
    ax.axhline(notes["teacher_golden_distance"], color="gray", lw=0.8, ls=":", label="KL(oracle || teacher)")
    onset = notes.get("hacking_onset_step")
    if onset is not None:
        ax.axvline(onset, color="red", lw=1.0, label=f"hacking onset (step {onset:.0f})")
    ax.set_xlabel("gradient steps")
    ax.set_ylabel("per-token KL (held-out prompts)")
    ax.set_title(notes.get("title", "distillation"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return [save_png(fig, plots_dir / "distill_loglog.png", dpi=110, tight=False)]


# ---------------------------------------------------------------- cooperative games


@drawer("least_core_convergence")
def draw_least_core_convergence(table: pa.Table, plots_dir: Path) -> list[Path]:
    """`least_core_convergence.png`: epsilon, certified epsilon and the exact LP value (a
    line) against iterations, and the maximum violation on a log scale."""
    eps, viol = _column(table, "epsilon"), _column(table, "max_violation")
    ref, it = _column(table, "lp_epsilon"), _column(table, "iteration")
    fig, (ax1, ax2) = AggFigures.subplots(1, 2, figsize=(10, 4))
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
    fig.suptitle(annotations(table).get("title", "least core"))
    fig.tight_layout()
    return [save_png(fig, plots_dir / "least_core_convergence.png", dpi=110, tight=False)]


@drawer("allocations")
def draw_allocations(table: pa.Table, plots_dir: Path, max_players: int = 40) -> list[Path]:
    """`allocations.png`: least-core and Shapley payoffs side by side (Shapley with its 95%
    interval where sampled), for games of at most `max_players` players."""
    n = table.num_rows
    if n > max_players:
        return []
    method = annotations(table).get("shapley_method", "none")
    idx = np.arange(n)
    fig, ax = AggFigures.subplots(figsize=(max(6, 0.45 * n + 2), 4))
    has_shapley = method != "none"
    width = 0.4 if has_shapley else 0.8
    ax.bar(idx - (width / 2 if has_shapley else 0), _column(table, "least_core"), width, label="least core")
    if has_shapley:
        hw = _column(table, "shapley_half_width")
        ax.bar(
            idx + width / 2,
            _column(table, "shapley"),
            width,
            yerr=hw if np.any(hw > 0) else None,
            label=f"Shapley ({method})",
        )
    names = table["name"].to_pylist() if "name" in table.column_names else None
    ax.set_xticks(idx)
    ax.set_xticklabels(names if names is not None else [str(i) for i in idx], rotation=45 if names else 0)
    ax.set_ylabel("payoff")
    ax.axhline(0, color="k", linewidth=0.5)
    ax.legend()
    fig.tight_layout()
    return [save_png(fig, plots_dir / "allocations.png", dpi=110, tight=False)]


# ---------------------------------------------------------------- music


@drawer("piano_rolls")
def draw_piano_rolls(table: pa.Table, plots_dir: Path) -> list[Path]:
    """`piano_rolls.png`: one panel per sample (up to 8): each note a bar from its onset to
    its end at its pitch, coloured by voice, with the prompt as the panel title."""
    from matplotlib.patches import Rectangle

    meta = annotations(table)
    sample = _column(table, "sample")
    names = [n for n in meta.get("samples") or list(dict.fromkeys(sample.tolist()))][:8]
    if not names:
        return []
    voice, onset = _column(table, "voice"), _column(table, "onset") / 12.0
    duration, pitch = _column(table, "duration") / 12.0, _column(table, "pitch")
    fig, axes = AggFigures.subplots(len(names), 1, figsize=(9, 1.9 * len(names) + 0.4), squeeze=False)
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    for ax, name in zip(axes[:, 0], names, strict=False):
        rows = sample == name
        for v, o, d, p in zip(voice[rows], onset[rows], duration[rows], pitch[rows], strict=True):
            ax.add_patch(Rectangle((o, p - 0.4), d, 0.8, color=colours[int(v) % 4], lw=0))
        if rows.any():
            ax.set_xlim(0, float((onset[rows] + duration[rows]).max()))
            ax.set_ylim(float(pitch[rows].min()) - 2, float(pitch[rows].max()) + 2)
        prompt = (meta.get("prompts") or {}).get(name, "")
        ax.set_title(f"{name}: {prompt}" if prompt else str(name), fontsize=8, loc="left")
        ax.set_ylabel("MIDI pitch", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.2)
    axes[-1, 0].set_xlabel("quarter notes")
    fig.tight_layout()
    return [save_png(fig, plots_dir / "piano_rolls.png", dpi=110, tight=False)]


@drawer("quality_diversity")
def draw_quality_diversity(table: pa.Table, plots_dir: Path) -> list[Path]:
    """`quality_diversity.png`: every model's (diversity, quality), marked by kind, with the
    interpolated models joined in order of their mixing factor (the front)."""
    kind, model = _column(table, "kind"), _column(table, "model")
    quality, diversity = _column(table, "quality").astype(float), _column(table, "diversity").astype(float)
    fig, ax = AggFigures.subplots(figsize=(6.5, 4.5))
    markers = {"base": ("s", "grey"), "cfg": ("*", "black"), "distilled": ("o", "#1f77b4"),
               "interpolated": ("D", "#d62728")}
    for name, (marker, colour) in markers.items():
        rows = kind == name
        if rows.any():
            ax.plot(diversity[rows], quality[rows], marker, color=colour, ms=8 if marker == "*" else 6, ls="",
                    label=name)
    front = kind == "interpolated"
    if front.any():
        order = np.argsort(_column(table, "mix")[front].astype(float))
        ax.plot(diversity[front][order], quality[front][order], "-", color="#d62728", lw=1.2, alpha=0.7)
    for m, d, q in zip(model, diversity, quality, strict=True):
        ax.annotate(str(m), (d, q), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("diversity (mean embedding dissimilarity per prompt)")
    ax.set_ylabel("quality")
    ax.set_title("quality vs diversity (CFG distillation, diversity reward, interpolation)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return [save_png(fig, plots_dir / "quality_diversity.png", dpi=120, tight=False)]


# ---------------------------------------------------------------- clinic


@drawer("test_requests")
def draw_test_requests(table: pa.Table, plots_dir: Path, top: int = 20) -> list[Path]:
    """`test_requests.png`: the `top` most requested tests (the table comes sorted by count)."""
    if table.num_rows == 0:
        return []
    names = table["test"].to_pylist()[:top]
    counts = _column(table, "count")[:top]
    fig, ax = AggFigures.subplots(figsize=(8, 0.3 * len(names) + 1.5))
    ax.barh(np.arange(len(names)), counts, color="tab:blue")
    ax.set_yticks(np.arange(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel("requests")
    ax.set_title(annotations(table).get("title", "most requested tests"))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return [save_png(fig, plots_dir / "test_requests.png", dpi=110, tight=False)]


@drawer("accuracy_by_case_set")
def draw_accuracy(table: pa.Table, plots_dir: Path) -> list[Path]:
    """`accuracy_by_case_set.png`: diagnostic accuracy per case set with its 95% interval."""
    sets = table["case_set"].to_pylist()
    acc, low, high = (_column(table, k) for k in ("accuracy", "accuracy_low", "accuracy_high"))
    fig, ax = AggFigures.subplots(figsize=(2 + 1.2 * len(sets), 4))
    idx = np.arange(len(sets))
    ax.bar(idx, acc, yerr=np.vstack([acc - low, high - acc]), capsize=6, color="tab:green")
    ax.set_xticks(idx)
    ax.set_xticklabels([f"{s}\n(n={n})" for s, n in zip(sets, table["cases"].to_pylist(), strict=True)])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (95% interval)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return [save_png(fig, plots_dir / "accuracy_by_case_set.png", dpi=110, tight=False)]


# ---------------------------------------------------------------- board games


@drawer("elo")
def draw_elo(table: pa.Table, plots_dir: Path) -> list[Path]:
    """`elo.png`: every bot's Elo with its 95% interval, strongest on top; the reference
    bot (fixed rating) as a diamond."""
    if table.num_rows == 0:
        return []
    meta = annotations(table)
    players = table["player"].to_pylist()
    elo, lower, upper = (_column(table, k).astype(float) for k in ("elo", "lower", "upper"))
    order = np.argsort(elo)
    fig, ax = AggFigures.subplots(figsize=(7, 0.45 * len(players) + 1.6))
    y = np.arange(len(players))
    ax.errorbar(elo[order], y, xerr=np.vstack([elo[order] - lower[order], upper[order] - elo[order]]),
                fmt="o", capsize=4, color="tab:blue")
    reference = meta.get("reference")
    for k, i in enumerate(order):
        if players[i] == reference:
            ax.plot(elo[i], k, "D", color="tab:red", ms=8, label=f"reference ({reference} = {elo[i]:.0f})")
    ax.set_yticks(y)
    ax.set_yticklabels([f"{players[i]} ({int(g)} games)" for i, g in zip(order, _column(table, "games")[order],
                                                                       strict=True)])
    ax.set_xlabel("Elo (95% interval)")
    ax.set_title(meta.get("title", "Elo by maximum likelihood"))
    ax.grid(axis="x", alpha=0.3)
    if reference in players:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return [save_png(fig, plots_dir / "elo.png", dpi=110, tight=False)]


def _draw_connect_four(ax, final: str) -> None:
    from matplotlib.patches import Circle, Rectangle

    rows = final.split("/")  # top row first
    ax.add_patch(Rectangle((-0.5, -0.5), len(rows[0]), len(rows), color="#1f4fb4"))
    colours = {".": "white", "x": "#d62728", "o": "#f2c530"}
    for r, line in enumerate(rows):
        for c, cell in enumerate(line):
            ax.add_patch(Circle((c, len(rows) - 1 - r), 0.4, color=colours[cell]))
    ax.set_xlim(-0.6, len(rows[0]) - 0.4)
    ax.set_ylim(-0.6, len(rows) - 0.4)


def _draw_hex(ax, final: str) -> None:
    from matplotlib.patches import RegularPolygon

    rows = final.split("/")
    n = len(rows)
    colours = {".": "#e8e0c8", "x": "black", "o": "white"}
    h = np.sqrt(3) / 2
    for r, line in enumerate(rows):
        for c, cell in enumerate(line):
            ax.add_patch(RegularPolygon((c + 0.5 * r, -r * h), 6, radius=0.57, orientation=0,
                                        facecolor=colours[cell], edgecolor="grey", lw=0.6))
    # black joins top and bottom (dark edges), white joins left and right (light grey edges)
    ax.plot([-0.5, n - 0.5], [h * 0.8, h * 0.8], color="black", lw=3)
    ax.plot([0.5 * (n - 1) - 0.5, 0.5 * (n - 1) + n - 0.5], [-(n - 1) * h - h * 0.8] * 2, color="black", lw=3)
    ax.plot([-0.9, 0.5 * (n - 1) - 0.9], [0, -(n - 1) * h], color="0.6", lw=3)
    ax.plot([n - 0.1, n - 0.1 + 0.5 * (n - 1)], [0, -(n - 1) * h], color="0.6", lw=3)
    ax.set_xlim(-1.2, n + 0.5 * (n - 1) + 0.2)
    ax.set_ylim(-(n - 1) * h - 1.1, 1.1)


_PIECES = {"K": "\u2654", "Q": "\u2655", "R": "\u2656", "B": "\u2657", "N": "\u2658", "P": "\u2659",
           "k": "\u265a", "q": "\u265b", "r": "\u265c", "b": "\u265d", "n": "\u265e", "p": "\u265f"}


def _draw_chess(ax, fen: str) -> None:
    from matplotlib.patches import Rectangle

    placement = fen.split()[0].split("/")  # rank 8 first
    for rank in range(8):
        for file in range(8):
            light = (rank + file) % 2 == 1
            ax.add_patch(Rectangle((file, rank), 1, 1, color="#f0d9b5" if light else "#b58863"))
    for r, line in enumerate(placement):
        file = 0
        for ch in line:
            if ch.isdigit():
                file += int(ch)
                continue
            ax.text(file + 0.5, 7 - r + 0.45, _PIECES[ch], ha="center", va="center", fontsize=17,
                    family="DejaVu Sans", color="black")
            file += 1
    for k in range(8):
        ax.text(k + 0.5, -0.3, "abcdefgh"[k], ha="center", va="center", fontsize=6)
        ax.text(-0.3, k + 0.5, str(k + 1), ha="center", va="center", fontsize=6)
    ax.set_xlim(-0.5, 8)
    ax.set_ylim(-0.5, 8)


_BOARD_DRAWERS = {"connect_four": _draw_connect_four, "hex": _draw_hex, "chess": _draw_chess,
                  "chess960": _draw_chess}


@drawer("games")
def draw_final_positions(table: pa.Table, plots_dir: Path) -> list[Path]:
    """`final_positions.png`: the final position of sample games of the last round (one
    per pairing first), titled with the players and the result; only for tables that say
    their game and carry a `final` column (tournament games)."""
    from gamescale.algorithms.board.tournament import sample_rows

    meta = annotations(table)
    draw_board = _BOARD_DRAWERS.get(meta.get("game", ""))
    if draw_board is None or "final" not in table.column_names or table.num_rows == 0:
        return []
    first, second = table["first"].to_pylist(), table["second"].to_pylist()
    rows = sample_rows(_column(table, "iteration"), np.asarray(first, object), np.asarray(second, object),
                       int(meta.get("sample_games", 6)))
    if not rows:
        return []
    cols = min(3, len(rows))
    fig, axes = AggFigures.subplots((len(rows) + cols - 1) // cols, cols, figsize=(3.3 * cols, 3.8 * ((len(rows) + cols - 1) // cols)),
                                    squeeze=False)
    final, winner = table["final"].to_pylist(), _column(table, "winner")
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, r in zip(axes.ravel(), rows, strict=False):
        draw_board(ax, final[r])
        ax.set_aspect("equal")
        result = "draw" if winner[r] < 0 else f"{(first, second)[int(winner[r])][r]} won"
        ax.set_title(f"{first[r]} vs {second[r]}\n{result}, {int(_column(table, 'plies')[r])} plies", fontsize=8)
    fig.suptitle(f"{meta.get('game')}: final positions, round {int(_column(table, 'iteration').max()) + 1}",
                 fontsize=10)
    fig.tight_layout()
    return [save_png(fig, plots_dir / "final_positions.png", dpi=110, tight=False)]
