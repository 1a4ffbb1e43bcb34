"""Language-model labs on the sampler side: the teacher-hacking distillation lab (an oracle,
a teacher distilled from it, prompt distributions, completion generation). Registers
`distill_lab`."""

from __future__ import annotations

from gamescale.algorithms.lm.model import ModelShape
from gamescale.envs.lm.distill import (
    DistillLab,
    DistillLabConfig,
    build_distill_lab,
    make_oracle,
    train_teacher,
)
from gamescale.envs.registry import register_env

register_env(
    "distill_lab", DistillLabConfig, build_distill_lab, "Oracle and teacher LMs for teacher-hacking distillation"
)

__all__ = [
    "ModelShape",
    "DistillLab",
    "DistillLabConfig",
    "build_distill_lab",
    "make_oracle",
    "train_teacher",
]
