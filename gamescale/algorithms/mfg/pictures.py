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
