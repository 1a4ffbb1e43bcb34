"""Typed configs of the exact mean-field-game solvers (validated from experiment YAML)."""

from __future__ import annotations

from pydantic import Field

from gamescale.algorithms.registry import AlgorithmConfig


class FictitiousPlayConfig(AlgorithmConfig):
    """Fictitious play (Perrin et al. 2020), as OpenSpiel's `FictitiousPlay`.

    `learning_rate` None averages with weight 1 / (k + 1) at iteration k; `temperature`
    set replaces the greedy best response by a softmax of the best-response Q-values.
    """

    name: str = "fictitious_play"
    learning_rate: float | None = Field(default=None, gt=0.0, le=1.0)
    temperature: float | None = Field(default=None, gt=0.0)


class MirrorDescentConfig(AlgorithmConfig):
    """Online mirror descent (Perolat et al. 2021), as OpenSpiel's `MirrorDescent`
    (default learning rate 0.01)."""

    name: str = "mirror_descent"
    learning_rate: float = Field(default=0.01, gt=0.0)
    openspiel_compatible: bool = True  # replay OpenSpiel's lazy evaluation on its games


class FixedPointConfig(AlgorithmConfig):
    """Damped fixed-point iteration: pi <- (1 - damping) pi + damping * response(mu(pi)).

    The response is the greedy best response, or with `temperature` the softmax
    (Boltzmann) of the optimal Q-values. `damping=1, temperature=None` is OpenSpiel's
    `FixedPoint`.
    """

    name: str = "fixed_point"
    damping: float = Field(default=1.0, gt=0.0, le=1.0)
    temperature: float | None = Field(default=None, gt=0.0)


class BoltzmannConfig(AlgorithmConfig):
    """Boltzmann policy iteration, as OpenSpiel's `BoltzmannPolicyIteration`: the new
    policy is softmax(learning_rate * Q of the current policy against its own flow)."""

    name: str = "boltzmann"
    learning_rate: float = Field(default=0.01, gt=0.0)
