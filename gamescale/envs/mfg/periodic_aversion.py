"""Periodic-aversion mean-field game on [xmin, xmax) (after OpenSpiel's
`python_mfg_periodic_aversion`).

`size` cells of width dx on a circle; action a moves `a - n` cells (velocity
`(a - n) dx / dt`); then Gaussian noise moves `c - n` cells with probability proportional
to the N(0, volatility sqrt(dt)) density at `(c - n) dx`. Reward per step (charged when the
action is taken):

    dt * (-velocity^2 / 2 - coef_aversion * log(mu(x) / dx + 1e-15) + g(x)),
    g(x) = volatility 2 pi^2 sin(2 pi x) - 2 pi^2 cos(2 pi x)^2 + 2 / volatility^2 sin(2 pi x).
"""

from __future__ import annotations

import numpy as np

from gamescale.envs.mfg.game import MeanFieldGame, check_positive


class PeriodicAversion(MeanFieldGame):
    """See the module docstring."""

    def __init__(
        self,
        size: int = 21,
        horizon: int = 20,
        dt: float = 0.01,
        xmin: float = 0.0,
        xmax: float = 1.0,
        n_actions_per_side: int = 10,
        volatility: float = 1.0,
        coef_aversion: float = 1.0,
    ):
        size = check_positive("size", size)
        n = check_positive("n_actions_per_side", n_actions_per_side)
        if dt <= 0 or volatility <= 0 or xmax <= xmin:
            raise ValueError("need dt > 0, volatility > 0 and xmax > xmin")
        self.dt, self.coef_aversion = float(dt), float(coef_aversion)
        self.dx = (xmax - xmin) / size
        cells = np.arange(size)
        shifts = np.arange(-n, n + 1)  # [A] == [K]
        noise = np.exp(-0.5 * (shifts * self.dx / (volatility * np.sqrt(dt))) ** 2)
        post = (cells[:, None] + shifts) % size  # [S, A]
        next_state = (post[:, :, None] + shifts) % size  # [S, A, K]
        prob = np.broadcast_to(noise / noise.sum(), next_state.shape)
        super().__init__(
            size, 2 * n + 1, horizon, np.full(size, 1.0 / size), kernel=(next_state, prob), name="periodic_aversion"
        )
        pix2 = 2 * np.pi * (xmin + cells * self.dx)
        self.geometry = (
            volatility * 2 * np.pi**2 * np.sin(pix2)
            - 2 * np.pi**2 * np.cos(pix2) ** 2
            + 2 / volatility**2 * np.sin(pix2)
        )  # [S]
        self.action_reward = -0.5 * (shifts * self.dx / dt) ** 2  # [A]

    def reward(self, t: int, mu: np.ndarray) -> np.ndarray:
        aversion = -self.coef_aversion * np.log(mu / self.dx + 1e-15)  # [S]
        return self.dt * ((aversion + self.geometry)[:, None] + self.action_reward[None, :])
