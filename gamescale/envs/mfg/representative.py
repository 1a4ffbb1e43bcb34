"""The representative player of a mean-field game as a single-agent Gymnasium env.

Against a FIXED mean field `mu [T + 1, S]` (or `[P, T + 1, S]` with a population index) a
mean-field game is an ordinary finite-horizon MDP: the player starts in `s_0 ~ mu_0`, and at
decision time `t` in state `s` picks action `a`, collects `reward(t, mu_t)[s, a]` and moves
to `next_state[s, a, k]` with probability `prob[s, a, k]` from `transition(t, mu_t)`; after
the last decision (`t = T - 1`) it also collects `terminal_reward(mu_T)[s_T]` and the
episode ends (`terminated`; the horizon is part of the game, not a time limit). This is the
MDP whose optimum is the best response to `mu` (see `gamescale.algorithms.mfg.evaluation`),
so an RL agent trained here learns a best response; its expected return is `policy_value`.

Observation `[S + T + 1]` float32: one-hot of the state, then one-hot of the time `t`
(`t = T` in the final observation). When some action is illegal somewhere (mazes, routing)
the observation is `{"observations": that vector, "action_mask": [A] float32}`, the form
RLlib's action-masking module reads, and an illegal action is an error. Rewards are
maximised (the game's sign). The flow is not computed here: pass it in (the framework
builds it from a policy or reads it from a finished run).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gamescale.envs.mfg.game import MeanFieldGame, MultiPopulationGame, as_multi_population, check_distribution


def one_hot_observations(num_states: int, horizon: int) -> np.ndarray:
    """Every observation at once: `[T + 1, S, S + T + 1]` float32, row `[t, s]` is (s, t)."""
    eye_s = np.eye(num_states, dtype=np.float32)
    eye_t = np.eye(horizon + 1, dtype=np.float32)
    states = np.broadcast_to(eye_s[None], (horizon + 1, num_states, num_states))
    times = np.broadcast_to(eye_t[:, None], (horizon + 1, num_states, horizon + 1))
    return np.concatenate([states, times], axis=-1)


class RepresentativePlayerEnv(gym.Env):
    """One player of population `population` against the fixed flow `mean_field`.

    Args:
        game: a `MeanFieldGame` or `MultiPopulationGame`.
        mean_field: `[T + 1, S]` (single population) or `[P, T + 1, S]`; each row a distribution.
        population: which population's player this is (0 for single-population games).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, game: MeanFieldGame | MultiPopulationGame, mean_field: np.ndarray, population: int = 0):
        view = as_multi_population(game)
        T, S, A, P = view.horizon, view.num_states, view.num_actions, view.num_populations
        mu = np.asarray(mean_field, dtype=np.float64)
        if mu.ndim == 2:
            mu = mu[None]
        if mu.shape != (P, T + 1, S):
            expected = (T + 1, S) if P == 1 else (P, T + 1, S)
            raise ValueError(f"mean field of {view.name} must have shape {expected}, got {np.shape(mean_field)}")
        check_distribution(mu, S, "mean field")
        if not 0 <= population < P:
            raise ValueError(f"population must lie in [0, {P}) for {view.name}, got {population}")
        self.game, self.mean_field, self.population = game, mu, population
        self.horizon, self.num_states, self.num_actions = T, S, A
        # The flow is fixed, so the whole MDP is tabulated once: the game is queried as its
        # solvers query it, T times, instead of at every step of every episode.
        kernels = [view.transition(t, mu[:, t]) for t in range(T)]
        self.next_state = np.stack([k[0][population] for k in kernels])  # [T, S, A, K]
        self.prob = np.stack([k[1][population] for k in kernels])  # [T, S, A, K]
        self.rewards = np.stack([np.asarray(view.reward(t, mu[:, t]), np.float64)[population] for t in range(T)])
        self.terminal = np.asarray(view.terminal_reward(mu[:, T]), np.float64)[population]  # [S]
        self.initial_distribution = view.initial_distribution[population]
        # Cumulative sums, so that a draw is one uniform number and a binary search.
        self._initial_cdf = np.cumsum(self.initial_distribution)
        self._cdf = np.cumsum(self.prob, axis=-1)
        self.legal_actions = view.legal_actions[population]  # [S, A]
        self.masked = not bool(self.legal_actions.all())
        features = gym.spaces.Box(0.0, 1.0, (S + T + 1,), np.float32)
        if self.masked:
            mask = gym.spaces.Box(0.0, 1.0, (A,), np.float32)
            self.observation_space = gym.spaces.Dict({"observations": features, "action_mask": mask})
        else:
            self.observation_space = features
        self.action_space = gym.spaces.Discrete(A)
        self._t, self._s = 0, 0

    def _observation(self) -> Any:
        features = np.zeros(self.num_states + self.horizon + 1, np.float32)
        features[self._s] = 1.0
        features[self.num_states + self._t] = 1.0
        if not self.masked:
            return features
        return {"observations": features, "action_mask": self.legal_actions[self._s].astype(np.float32)}

    def _draw(self, cdf: np.ndarray) -> int:
        """An index drawn with probabilities whose cumulative sums are `cdf` (zero-probability
        entries are never drawn; the last one takes what rounding leaves above the total)."""
        index = int(np.searchsorted(cdf, self.np_random.random() * cdf[-1], side="right"))
        return min(index, len(cdf) - 1)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self._t = 0
        self._s = self._draw(self._initial_cdf)
        return self._observation(), {"t": 0, "state": self._s}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self._t >= self.horizon:
            raise RuntimeError("step() after the episode ended; call reset()")
        a = int(action)
        if not (0 <= a < self.num_actions and self.legal_actions[self._s, a]):
            raise ValueError(f"action {a} is illegal in state {self._s} of {self.game.name}")
        t, s = self._t, self._s
        reward = float(self.rewards[t, s, a])
        branch = self._draw(self._cdf[t, s, a])
        self._s, self._t = int(self.next_state[t, s, a, branch]), t + 1
        terminated = self._t == self.horizon
        if terminated:
            reward += float(self.terminal[self._s])
        return self._observation(), reward, terminated, False, {"t": self._t, "state": self._s}
