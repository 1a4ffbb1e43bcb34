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
