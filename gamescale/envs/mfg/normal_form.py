"""Static mean-field normal-form games: one decision, payoff depends on the action profile.

The example games of Muller et al. 2022 (arXiv 2208.10138, "Learning correlated
equilibria in mean-field games"), also shipped by OpenSpiel as `mean_field_nfg`. Every
player picks one of `A = 3` actions once; the payoff of action `a` is `f_a(nu)` where
`nu [A]` is the fraction of the population that picked each action.

Array layout (see `gamescale.envs.mfg.game`): `S = 1 + A` states, state 0 is the start,
state `1 + a` means "played a"; horizon `T = 1`; `mu_0 = e_0`; action `a` moves to state
`1 + a` with probability 1; the step reward is 0 and the payoff is the terminal reward
`terminal_reward(mu_1)[1 + a] = f_a(mu_1[1:])`. Rewards are maximised.

Reward functions (`nu = (x, y, z)` the fractions on actions 0, 1, 2):

* `coop` (incentivises cooperation; Nash and correlated equilibria differ in welfare):
  `f_0 = 10 x - 200/9 (x - z) z - 20 y`, `f_1 = 20 (x - y) - 2380 z`,
  `f_2 = 2000/9 (x - z) z`.
* `biased_indirect_rps`: with `(x', y', z') = (0.7 x, 0.5 y, 0.3 z)`:
  `f_0 = y' - z'`, `f_1 = z' - x'`, `f_2 = x' - y'`.
* `dominated`: `f_0 = x + z`, `f_1 = y`, `f_2 = x + z - 0.25`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from gamescale.envs.mfg.game import MeanFieldGame
from gamescale.envs.registry import EnvConfig, register_env

NUM_ACTIONS = 3


def coop_payoff(nu: np.ndarray) -> np.ndarray:
    """Payoff `[3]` of each action against the action distribution `nu [3]`."""
    x, y, z = nu
    return np.array(
        [
            10.0 * x - 200.0 / 9.0 * (x - z) * z - 20.0 * y,
            20.0 * (x - y) - 2380.0 * z,
            2000.0 / 9.0 * (x - z) * z,
        ]
    )


def biased_indirect_rps_payoff(nu: np.ndarray) -> np.ndarray:
    x, y, z = 0.7 * nu[0], 0.5 * nu[1], 0.3 * nu[2]
    return np.array([y - z, z - x, x - y])


def dominated_payoff(nu: np.ndarray) -> np.ndarray:
    x, y, z = nu
    return np.array([x + z, y, x + z - 0.25])


PAYOFFS = {"coop": coop_payoff, "biased_indirect_rps": biased_indirect_rps_payoff, "dominated": dominated_payoff}


class MeanFieldNormalFormGame(MeanFieldGame):
    """A one-shot mean-field game with payoff `f(nu) [A]` (see the module docstring)."""

    def __init__(self, reward_function: str = "coop"):
        if reward_function not in PAYOFFS:
            raise ValueError(f"unknown reward_function {reward_function!r}; known: {', '.join(sorted(PAYOFFS))}")
        num_actions = NUM_ACTIONS
        num_states = 1 + num_actions
        next_state = np.broadcast_to(1 + np.arange(num_actions)[None, :, None], (num_states, num_actions, 1)).copy()
        init = np.zeros(num_states)
        init[0] = 1.0
        super().__init__(
            num_states,
            num_actions,
            1,
            init,
            kernel=(next_state.astype(np.int64), np.ones((num_states, num_actions, 1))),
            name=f"mean_field_nfg_{reward_function}",
        )
        self.payoff = PAYOFFS[reward_function]
        self._zero_reward = np.zeros((num_states, num_actions))

    def reward(self, t: int, mu: np.ndarray) -> np.ndarray:
        return self._zero_reward

    def terminal_reward(self, mu: np.ndarray) -> np.ndarray:
        """`[S]`: 0 at the start state, `f_a(mu[1:])` at state `1 + a`."""
        return np.concatenate([[0.0], self.payoff(np.asarray(mu[1:], dtype=np.float64))])


class MeanFieldNormalFormConfig(EnvConfig):
    """Static mean-field normal-form game of Muller et al. 2022 (OpenSpiel `mean_field_nfg`)."""

    name: str = "mean_field_nfg"
    reward_function: Literal["coop", "biased_indirect_rps", "dominated"] = "coop"


def build_mean_field_nfg(config: MeanFieldNormalFormConfig) -> MeanFieldNormalFormGame:
    return MeanFieldNormalFormGame(config.reward_function)


register_env(
    "mean_field_nfg", MeanFieldNormalFormConfig, build_mean_field_nfg, "static mean-field normal-form game (coop, RPS)"
)
