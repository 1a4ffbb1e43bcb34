"""Fictitious play for mean-field games, array form of OpenSpiel's `fictitious_play`.

Iteration k (k = 1, 2, ...): best-respond to the flow `mu` of the average policy, then
average policies weighted by their distributions (classical FP in state space):

    pi_new(a | s, t) = ((1 - w) mu(s, t) pi(a | s, t) + w mu_br(s, t) br(a | s, t))
                       / ((1 - w) mu(s, t) + w mu_br(s, t)),        w = 1 / (k + 1),

uniform over legal actions where both distributions vanish. This is the policy whose
flow is the average of the flows, so exploitability decays roughly like 1 / k.
"""

from __future__ import annotations

import numpy as np

from gamescale.algorithms.base import State
from gamescale.algorithms.mfg.evaluation import _propagate, _uniform, greedy_policy, softmax_policy
from gamescale.algorithms.mfg.solver import ExactSolver


def merge_policies(
    policy: np.ndarray, mu: np.ndarray, br: np.ndarray, mu_br: np.ndarray, weight: float, uniform: np.ndarray
) -> np.ndarray:
    """Distribution-weighted average of two policies `[P, T, S, A]` with flows `[P, T + 1, S]`."""
    d_old = (1.0 - weight) * mu[:, :-1, :, None]
    d_new = weight * mu_br[:, :-1, :, None]
    norm = d_old + d_new
    merged = d_old * policy + d_new * br
    safe = np.where(norm > 0.0, norm, 1.0)
    return np.where(norm > 0.0, merged / safe, uniform)


class FictitiousPlay(ExactSolver):
    """Exact fictitious play; see the module docstring."""

    def update(self, state: State) -> State:
        step = int(state["iteration"]) + 1
        if self.config.temperature is None:
            br = greedy_policy(state["br_q"])
        else:
            br = softmax_policy(state["br_q"] / self.config.temperature)
        weight = self.config.learning_rate or 1.0 / (step + 1)
        if np.isclose(weight, 1.0):
            return {"policy": br}
        mu_br = _propagate(self.mgame, br)
        uniform = _uniform(self.mgame)
        return {"policy": merge_policies(state["policy"], state["mu"], br, mu_br, weight, uniform)}
