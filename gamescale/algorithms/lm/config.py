"""Typed configs of the LM lab's algorithms."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gamescale.algorithms.lm.model import ModelShape
from gamescale.algorithms.registry import AlgorithmConfig


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
