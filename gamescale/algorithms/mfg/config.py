"""Typed configs of the exact mean-field-game solvers (validated from experiment YAML)."""

from __future__ import annotations

from pydantic import Field

from gamescale.algorithms.registry import AlgorithmConfig


class _ExactConfig(AlgorithmConfig):
    """Shared by the exact solvers: `target_exploitability` set ends the run at the first
    iteration whose exploitability is at or below it (summary.json: stopped = target)."""

    target_exploitability: float | None = Field(default=None, gt=0.0)


class FictitiousPlayConfig(_ExactConfig):
    """Fictitious play (Perrin et al. 2020), as OpenSpiel's `FictitiousPlay`.

    `learning_rate` None averages with weight 1 / (k + 1) at iteration k; `temperature`
    set replaces the greedy best response by a softmax of the best-response Q-values.
    """

    name: str = "fictitious_play"
    learning_rate: float | None = Field(default=None, gt=0.0, le=1.0)
    temperature: float | None = Field(default=None, gt=0.0)


class MirrorDescentConfig(_ExactConfig):
    """Online mirror descent (Perolat et al. 2021), as OpenSpiel's `MirrorDescent`
    (default learning rate 0.01)."""

    name: str = "mirror_descent"
    learning_rate: float = Field(default=0.01, gt=0.0)
    openspiel_compatible: bool = True  # replay OpenSpiel's lazy evaluation on its games


class FixedPointConfig(_ExactConfig):
    """Damped fixed-point iteration: pi <- (1 - damping) pi + damping * response(mu(pi)).

    The response is the greedy best response, or with `temperature` the softmax
    (Boltzmann) of the optimal Q-values. `damping=1, temperature=None` is OpenSpiel's
    `FixedPoint`.
    """

    name: str = "fixed_point"
    damping: float = Field(default=1.0, gt=0.0, le=1.0)
    temperature: float | None = Field(default=None, gt=0.0)


class BoltzmannConfig(_ExactConfig):
    """Boltzmann policy iteration, as OpenSpiel's `BoltzmannPolicyIteration`: the new
    policy is softmax(learning_rate * Q of the current policy against its own flow)."""

    name: str = "boltzmann"
    learning_rate: float = Field(default=0.01, gt=0.0)


class _DeepConfig(AlgorithmConfig):
    hidden_sizes: tuple[int, ...] = Field((64, 64), min_length=1, description="MLP widths")
    num_particles: int = Field(1000, ge=1, description="exploring agents simulated per iteration (all shards)")
    epsilon: float = Field(0.2, ge=0.0, le=1.0, description="probability of a uniform legal action")
    q_learning_rate: float = Field(3e-3, gt=0.0)
    q_rounds: int = Field(10, ge=1, description="target-network refreshes per iteration")
    q_steps_per_round: int = Field(40, ge=1, description="gradient steps between refreshes")
    batch_size: int = Field(256, ge=1)
    gradient_slices: int = Field(
        1,
        ge=1,
        description="each minibatch gradient is summed over this many slices; data-parallel learner replicas "
        "(runtime.learner_replicas) split them, with the same result for any replica count",
    )


class DeepAFPConfig(_DeepConfig):
    """Deep average-network fictitious play (2203.11973)."""

    name: str = "deep_afp"
    br_particles: int = Field(1000, ge=1, description="best-response agents whose (t, s, a) enter the reservoir")
    reservoir_size: int = Field(50_000, ge=1)
    policy_learning_rate: float = Field(3e-3, gt=0.0)
    policy_steps: int = Field(150, ge=1, description="cross-entropy steps per iteration")
    policy_batch_size: int = Field(512, ge=1)
    reward_scale: float = Field(
        1.0, gt=0.0, description="the Q-network fits rewards times this (O(1) targets); the greedy response is unchanged"
    )
    policy_temperature: float = Field(
        1.0, gt=0.0, description="the average policy is softmax(logits / this); OpenSpiel's avg_pol_tau is 10"
    )


class DeepMOMDConfig(_DeepConfig):
    """Deep Munchausen online mirror descent (2203.11973)."""

    name: str = "deep_momd"
    tau: float = Field(2.0, gt=0.0, description="softmax temperature; OMD learning rate 1 / tau")
    log_policy_floor: float | None = Field(None, description="clip log pi_k from below in the target (None: no clip)")
