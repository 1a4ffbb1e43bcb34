"""Online mirror descent for mean-field games, array form of OpenSpiel's `mirror_descent`.

Each iteration evaluates the current policy against its own flow, accumulates its
Q-values, and plays the softmax of the sum (Perolat et al. 2021):

    y <- y + lr * Q^{pi}(mu^{pi}),        pi <- softmax(y)  over legal actions.

Default lr = 0.01 as in OpenSpiel. OpenSpiel accumulates the values of post-action chance
nodes; the reward of the current node is the same for every action in its games, so the
softmax is the same.

OpenSpiel compatibility. OpenSpiel's `MirrorDescent.iteration` evaluates its policy
lazily while it updates the cumulative values the policy reads, so from the second
iteration on, a decision node whose post-action node was already evaluated earlier in the
same depth-first walk sees that node's value updated by the current iteration. Games
translated from OpenSpiel expose this order as `game.openspiel_read_ahead [T, S, A]` (bool);
with `openspiel_compatible=True` (default) the evaluation policy at those entries uses
`y + lr * (Q_current - reward)` instead of `y`, which reproduces OpenSpiel's numbers to round-off.
Other games (and `openspiel_compatible=False`) run textbook OMD.
"""

from __future__ import annotations

import numpy as np

from gamescale.algorithms.base import State
from gamescale.algorithms.mfg.evaluation import _continuation, _gather, softmax_policy
from gamescale.algorithms.mfg.solver import ExactSolver
from gamescale.envs.mfg.game import MultiPopulationGame


def mirror_descent_q(
    mgame: MultiPopulationGame,
    mu: np.ndarray,
    cumulative_q: np.ndarray,
    learning_rate: float,
    read_ahead: np.ndarray | None,
) -> np.ndarray:
    """Q-values `[P, T, S, A]` of the policy softmax(cumulative_q) against `mu [P, T + 1, S]`.

    With `read_ahead [P, T, S, A]`, the policy at time t is evaluated as OpenSpiel's lazy
    walk sees it: softmax(cumulative_q + read_ahead * learning_rate * (Q_t - reward_t)).
    """
    legal = mgame.legal_actions
    horizon = mgame.horizon
    q = np.empty(cumulative_q.shape)
    value = mgame.terminal_reward(mu[:, horizon])
    for t in range(horizon - 1, -1, -1):
        next_state, prob = mgame.transition(t, mu[:, t])
        continuation = _continuation(prob, _gather(value, next_state))
        q_t = np.where(legal, mgame.reward(t, mu[:, t]) + continuation, 0.0)
        logits = cumulative_q[:, t]
        if read_ahead is not None:  # OpenSpiel's updated node holds lr * value, not the reward
            logits = logits + np.where(read_ahead[:, t], learning_rate * continuation, 0.0)
        policy = softmax_policy(np.where(legal, logits, -np.inf))
        value = (policy * q_t).sum(axis=-1)
        q[:, t] = q_t
    return q


class MirrorDescent(ExactSolver):
    """Exact online mirror descent; state adds `cumulative_q [P, T, S, A]`."""

    def __init__(self, config, game):
        super().__init__(config, game)
        read_ahead = getattr(game, "openspiel_read_ahead", None)
        if read_ahead is not None and getattr(config, "openspiel_compatible", True):
            self.read_ahead = read_ahead if read_ahead.ndim == 4 else read_ahead[None]
        else:
            self.read_ahead = None

    def extra_state(self) -> State:
        m = self.mgame
        return {"cumulative_q": np.zeros((m.num_populations, m.horizon, m.num_states, m.num_actions))}

    def update(self, state: State) -> State:
        lr = self.config.learning_rate
        # OpenSpiel's first iteration evaluates a fixed uniform policy, not a lazy one.
        read_ahead = self.read_ahead if int(state["iteration"]) > 0 else None
        q = mirror_descent_q(self.mgame, state["mu"], state["cumulative_q"], lr, read_ahead)
        cumulative = state["cumulative_q"] + lr * q
        legal = self.mgame.legal_actions[:, None]
        policy = softmax_policy(np.where(legal, cumulative, -np.inf))
        return {"policy": policy, "cumulative_q": cumulative}
