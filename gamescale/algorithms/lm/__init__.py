"""Sequence-model post-training lab: a small causal transformer (`model`), KV-cached
sampling (`sampling`), a byte tokenizer, full-vocabulary divergences (`losses`), and the
registered algorithms built on them (teacher-hacking distillation; BOND in `bond`)."""

from __future__ import annotations

from gamescale.algorithms.lm.losses import (
    DIVERGENCES,
    divergence,
    forward_kl,
    generalized_jsd,
    reverse_kl,
    sequence_distance,
)
from gamescale.algorithms.lm.model import (
    CausalTransformer,
    KVCache,
    TransformerConfig,
    build_model,
    count_parameters,
)
from gamescale.algorithms.lm.sampling import Samples, sample, sequence_logprob, token_logprobs
from gamescale.algorithms.lm.tokenizer import ByteTokenizer

__all__ = [
    "DIVERGENCES",
    "ByteTokenizer",
    "CausalTransformer",
    "KVCache",
    "Samples",
    "TransformerConfig",
    "build_model",
    "count_parameters",
    "divergence",
    "forward_kl",
    "generalized_jsd",
    "reverse_kl",
    "sample",
    "sequence_distance",
    "sequence_logprob",
    "token_logprobs",
]

# Registered algorithms (import after the core so bond.py can import this package's modules).
from gamescale.algorithms.lm.config import DistillConfig  # noqa: E402
from gamescale.algorithms.lm.distill import TeacherHackingDistillation  # noqa: E402
from gamescale.algorithms.registry import register_algorithm  # noqa: E402

register_algorithm(
    "distill",
    DistillConfig,
    TeacherHackingDistillation,
    "student distilled from a teacher of a known oracle (2502.02671)",
)
__all__ += ["DistillConfig", "TeacherHackingDistillation"]
