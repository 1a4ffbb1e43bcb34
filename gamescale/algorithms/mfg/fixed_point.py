"""Fixed-point iterations for mean-field games: damped best-response (or softmax
best-response) iteration, and Boltzmann policy iteration.

* `FixedPoint`: pi <- (1 - damping) pi + damping * R(mu(pi)), where R is the greedy best
  response or, with a temperature tau, softmax(Q*(mu(pi)) / tau). damping = 1 and no
  temperature is OpenSpiel's `FixedPoint` (it may cycle; damping or tau smooth it).
* `BoltzmannPolicyIteration`: pi <- softmax(lr * Q^{pi}(mu(pi))), OpenSpiel's
  `BoltzmannPolicyIteration` (mirror descent without summing the Q-values).
"""

from __future__ import annotations

from gamescale.algorithms.base import State
from gamescale.algorithms.mfg.evaluation import _backward, greedy_policy, softmax_policy
from gamescale.algorithms.mfg.solver import ExactSolver


class FixedPoint(ExactSolver):
    """Damped fixed point with greedy or Boltzmann responses."""

    def update(self, state: State) -> State:
        if self.config.temperature is None:
            response = greedy_policy(state["br_q"])
        else:
            response = softmax_policy(state["br_q"] / self.config.temperature)
        damping = self.config.damping
        return {"policy": (1.0 - damping) * state["policy"] + damping * response}


class BoltzmannPolicyIteration(ExactSolver):
    """Softmax of the current policy's own Q-values."""

    def update(self, state: State) -> State:
        _, q = _backward(self.mgame, state["mu"], state["policy"])
        return {"policy": softmax_policy(self.config.learning_rate * q)}
