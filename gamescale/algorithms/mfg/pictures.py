"""The mean field as a table a picture can be drawn from: one row per (population, time,
state) with the state's coordinates, so the framework's report draws where the crowd is
over time without knowing the game."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def mean_field_table(game, mu: np.ndarray) -> pa.Table:
    """`mu [P, T + 1, S]` (or `[T + 1, S]`) of `game` as columns `population, t, state, x,
    [y, wall,] mass`: `x`/`y` are the state's grid coordinates from
    `game.state_coordinates()`, `wall` marks cells no player may enter."""
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim == 2:
        mu = mu[None]
    num_populations, num_times, num_states = mu.shape
    coords = game.state_coordinates()
    population = np.repeat(np.arange(num_populations), num_times * num_states)
    t = np.tile(np.repeat(np.arange(num_times), num_states), num_populations)
    state = np.tile(np.arange(num_states), num_populations * num_times)
    columns: dict[str, np.ndarray] = {"population": population, "t": t, "state": state}
    for name in ("x", "y", "wall"):
        if name in coords:
            columns[name] = np.asarray(coords[name])[state]
    columns["mass"] = mu.reshape(-1)
    return pa.table(columns)


def mean_field_from_table(table: pa.Table) -> np.ndarray:
    """The inverse of `mean_field_table`: `mu [P, T + 1, S]` from its `population, t,
    state, mass` columns (a run's `mean_field.parquet`)."""
    missing = {"population", "t", "state", "mass"} - set(table.column_names)
    if missing:
        raise ValueError(f"not a mean-field table: columns {sorted(missing)} are missing")
    population, t, state = (table[name].to_numpy().astype(np.int64) for name in ("population", "t", "state"))
    if len(population) == 0:
        raise ValueError("the mean-field table is empty")
    mu = np.zeros((population.max() + 1, t.max() + 1, state.max() + 1))
    mu[population, t, state] = table["mass"].to_numpy()
    return mu
