"""Typed configs of the LM lab's algorithms."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gamescale.algorithms.lm.shapes import ModelShape
from gamescale.algorithms.registry import AlgorithmConfig

METHOD_KINDS = ("bond_forward", "bond_backward", "bond_jeffreys", "jbond", "reinforce_kl")


class DistillConfig(AlgorithmConfig):
    """Student distilled from the lab's teacher (2502.02671).

    regime "offline": a fixed data set of `dataset_size` teacher completions of
    `num_prompts` distinct training prompts (dataset_size / num_prompts completions each),
    reused for every step. "online": `batch_size * steps_per_iteration` fresh completions
    every iteration, of prompts drawn from the same `num_prompts` training prompts, by the
    teacher, or by the student with probability `student_fraction` per completion.
    Data diversity is `num_prompts` at a fixed `dataset_size` (the diversity sweep's knob).
    """

    name: str = "distill"
    student: ModelShape = ModelShape(d_model=32, n_layers=1, n_heads=2, d_ff=64)
    student_seed: int = 2
    student_sft_steps: int = Field(0, ge=0, description="cross-entropy steps on oracle samples before distillation")
    loss: Literal["forward_kl", "reverse_kl", "jsd"] = "forward_kl"
    jsd_beta: float = Field(0.5, gt=0.0, lt=1.0)
    regime: Literal["offline", "online"] = "offline"
    num_prompts: int = Field(64, ge=1, description="distinct training prompts (data diversity)")
    dataset_size: int = Field(256, ge=1, description="offline: sequences in the fixed data set")
    student_fraction: float = Field(0.0, ge=0.0, le=1.0, description="online: share of student-generated completions")
    batch_size: int = Field(64, ge=1, description="sequences per gradient step")
    steps_per_iteration: int = Field(10, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    sync_every: int = Field(1, ge=1, description="iterations between student weight pushes to the samplers")
    hacking_min_rise: float = Field(0.03, ge=0, description="golden rise above its minimum that counts as hacking")
    hacking_smooth: int = Field(8, ge=1, description="trailing-mean window over evaluations before detection")
    law_fit_start: int = Field(2, ge=0, description="first evaluation index used in power-law fits")

    @model_validator(mode="after")
    def _check(self) -> DistillConfig:
        if self.student.d_model % self.student.n_heads:
            raise ValueError(
                f"student.d_model {self.student.d_model} is not divisible by student.n_heads {self.student.n_heads}"
            )
        if self.regime == "offline" and self.dataset_size % self.num_prompts:
            raise ValueError(f"dataset_size {self.dataset_size} is not a multiple of num_prompts {self.num_prompts}")
        return self


class RewardModelConfig(BaseModel):
    """Shape, data and training of the reward model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden: int = Field(32, ge=1, description="width of the token / bigram features and of the MLP")
    num_pairs: int = Field(2048, ge=2, description="preference pairs for training")
    num_eval_pairs: int = Field(512, ge=2, description="held-out pairs for the accuracy metric")
    temperature: float = Field(0.1, gt=0.0, description="Bradley-Terry temperature of the labels (noise)")
    steps: int = Field(300, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(3e-3, gt=0.0)
    seed: int = 0



class BondConfig(AlgorithmConfig):
    """The BOND lab: which methods to train side by side, and their hyperparameters."""

    name: str = "bond"
    methods: tuple[str, ...] = Field(("jbond", "bond_jeffreys", "reinforce_kl"), min_length=1)
    n: int = Field(4, ge=1, description="N of the Best-of-N distilled by bond_* methods")
    beta: float = Field(0.5, ge=0.0, le=1.0, description="Jeffreys weight of the backward KL")
    anchor_samples: int = Field(8, ge=1, description="reference samples per prompt for the quantile estimate")
    ema_rate: float = Field(0.05, gt=0.0, le=1.0, description="J-BOND anchor EMA rate")
    jbond_penalty: float = Field(
        float(np.log(16.0)), ge=0.0, description="J-BOND: log-target drop when worse than both anchors"
    )
    kl_coefs: tuple[float, ...] = Field(
        (0.1,), min_length=1, description="REINFORCE-with-KL coefficients (one run each)"
    )
    batch_size: int = Field(64, ge=2, description="prompts per method per iteration")
    learning_rate: float = Field(1e-4, gt=0.0)
    updates_per_iteration: int = Field(1, ge=1, description="learner steps on each batch")
    weight_sync_every: int = Field(1, ge=1, description="K: learner weights go to the samplers every K iterations")
    frontier_n: tuple[int, ...] = Field((1, 2, 4, 8, 16, 32), min_length=1, description="N of the Best-of-N baseline")
    eval_prompts: int = Field(256, ge=1, description="prompts for the Best-of-N baseline at init")
    reward_model: RewardModelConfig = Field(default_factory=RewardModelConfig)
    target_reward: float | None = Field(None, description="stop once the first method's true reward reaches this")

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in methods if m not in METHOD_KINDS]
        if unknown:
            raise ValueError(f"unknown BOND method(s) {unknown}; known: {', '.join(METHOD_KINDS)}")
        if len(set(methods)) != len(methods):
            raise ValueError(f"BOND methods repeat: {list(methods)}")
        return methods

    @field_validator("frontier_n")
    @classmethod
    def _positive_n(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if any(v < 1 for v in values):
            raise ValueError(f"frontier_n must be >= 1, got {list(values)}")
        return tuple(sorted(set(values)))

