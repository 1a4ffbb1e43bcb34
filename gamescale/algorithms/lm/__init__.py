"""Sequence-model post-training lab: a small causal transformer (`model`), KV-cached
sampling (`sampling`), a byte tokenizer, full-vocabulary divergences (`losses`), and the
registered algorithms built on them: teacher-hacking distillation (`distill`, 2502.02671)
and BOND / J-BOND (`bond`, 2407.14622).

Importing this package registers the algorithms without importing torch (their modules
are named as strings and imported when a run builds one); import the submodules
(`gamescale.algorithms.lm.model`, `.sampling`, `.losses`, ...) to use them directly.
"""

from __future__ import annotations

from gamescale.algorithms.lm.config import BondConfig, DistillConfig
from gamescale.algorithms.registry import register_algorithm

register_algorithm(
    "distill",
    DistillConfig,
    "gamescale.algorithms.lm.distill:TeacherHackingDistillation",
    "student distilled from a teacher of a known oracle (2502.02671)",
)
register_algorithm(
    "bond",
    BondConfig,
    "gamescale.algorithms.lm.bond:BondLab",
    "BOND / J-BOND / REINFORCE+KL vs Best-of-N (2407.14622)",
)

__all__ = ["BondConfig", "DistillConfig"]
