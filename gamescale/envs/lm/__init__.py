"""Sequence-model lab environments: the teacher-hacking lab (an oracle transformer, a
teacher distilled from it, prompt distributions, completion generation). Registers
`distill_lab`; its torch code (`gamescale.envs.lm.distill`) is imported only when built."""

from __future__ import annotations

from gamescale.envs.lm.config import DistillLabConfig
from gamescale.envs.registry import register_env

register_env(
    "distill_lab",
    DistillLabConfig,
    "gamescale.envs.lm.distill:build_distill_lab",
    "Oracle and teacher LMs for teacher-hacking distillation",
)

__all__ = ["DistillLabConfig"]
