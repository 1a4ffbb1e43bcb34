"""Linear-quadratic mean-field game on a ring (after OpenSpiel's `mean_field_lin_quad`).

State x in {0..size-1}; action a moves by `m = a - n` cells (n = `n_actions_per_side`).
A player at x with population mean `m_bar = sum_x x mu(x)` moves to
`x + round(dt * (m + mean_revert * (m_bar - x)))`, then by a discretised Gaussian noise
`round(volatility * sqrt(dt) * z)` cells (z in {-n..n}, tails lumped into the end
points), modulo `size`. The drift depends on mu, so the kernel does
(`transition_depends_on_mu = True` when `mean_revert != 0`). Reward, charged when the
action is taken (Markov form):

    dt / 2 * (-m^2 + 2 cross_q m (m_bar - x) - kappa (m_bar - x)^2),

and `-terminal_cost (m_bar - x)^2 / 2` at t = T.
"""

from __future__ import annotations

import numpy as np

from gamescale.envs.mfg.game import MeanFieldGame, check_positive


def gaussian_noise(n: int, volatility: float) -> np.ndarray:
    """Probabilities `[2n + 1]` of noise moves -n..n: N(0, volatility) binned at +-0.5,
    with the tails added to the end bins."""
    moves = np.arange(-n, n + 1)
    from scipy.special import ndtr  # scipy.special is slow to import; needed only here

    cdf_hi = ndtr((moves + 0.5) / volatility)
    cdf_lo = ndtr((moves - 0.5) / volatility)
    probs = cdf_hi - cdf_lo
    probs[0] += cdf_lo[0]
    probs[-1] += 1.0 - cdf_hi[-1]
    return probs / probs.sum()


class LinearQuadratic(MeanFieldGame):
    """See the module docstring."""

    def __init__(
        self,
        size: int = 10,
        horizon: int = 10,
        dt: float = 1.0,
        n_actions_per_side: int = 3,
        volatility: float = 1.0,
        mean_revert: float = 0.0,
        cross_q: float = 0.01,
        kappa: float = 0.5,
        terminal_cost: float = 1.0,
    ):
        size = check_positive("size", size)
        n = check_positive("n_actions_per_side", n_actions_per_side)
        if dt <= 0 or volatility <= 0:
            raise ValueError(f"dt and volatility must be positive, got dt={dt}, volatility={volatility}")
        self.size, self.dt, self.mean_revert = size, float(dt), float(mean_revert)
        self.cross_q, self.kappa, self.terminal_cost = float(cross_q), float(kappa), float(terminal_cost)
        self.moves = np.arange(-n, n + 1)  # [A]
        self.noise_moves = np.rint(self.moves * volatility * np.sqrt(dt)).astype(np.int64)  # [K]
        self.noise_prob = gaussian_noise(n, 1.0)  # [K], in units of volatility * sqrt(dt)
        self.x = np.arange(size)
        super().__init__(
            size,
            2 * n + 1,
            horizon,
            np.full(size, 1.0 / size),
            transition_depends_on_mu=self.mean_revert != 0.0,
            name="linear_quadratic",
        )
        self._static = None if self.mean_revert != 0.0 else self._kernel_for(0.0)

    def _kernel_for(self, mean: float):
        drift = self.moves[None, :] + self.mean_revert * (mean - self.x[:, None])  # [S, A]
        post = self.x[:, None] + np.rint(self.dt * drift).astype(np.int64)  # [S, A]
        next_state = (post[:, :, None] + self.noise_moves) % self.size  # [S, A, K]
        prob = np.broadcast_to(self.noise_prob, next_state.shape)
        return next_state, prob

    def mean(self, mu: np.ndarray) -> float:
        return float(self.x @ mu)

    def transition(self, t: int, mu: np.ndarray):
        return self._static if self._static is not None else self._kernel_for(self.mean(mu))

    def reward(self, t: int, mu: np.ndarray) -> np.ndarray:
        gap = (self.mean(mu) - self.x)[:, None]  # [S, 1]
        m = self.moves[None, :]  # [1, A]
        return self.dt / 2 * (-(m**2) + 2 * self.cross_q * m * gap - self.kappa * gap**2)

    def terminal_reward(self, mu: np.ndarray) -> np.ndarray:
        return -self.terminal_cost * (self.mean(mu) - self.x) ** 2 / 2.0
