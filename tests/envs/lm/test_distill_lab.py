"""The distillation lab: deterministic oracle and teacher, a teacher closer to the oracle
than an untrained model, the teacher-noise option, and bad input."""

from __future__ import annotations

import pytest
import torch

from gamescale.algorithms.lm.losses import sequence_distance
from gamescale.algorithms.lm.model import build_model
from gamescale.algorithms.lm.sampling import sample
from gamescale.envs.lm.distill import DistillLab, DistillLabConfig
from gamescale.envs.registry import make_env


def test_lab_is_deterministic_and_the_teacher_learned_from_the_oracle(tiny_distill_lab):
    a = DistillLab(DistillLabConfig(**tiny_distill_lab))
    b = make_env("distill_lab", **tiny_distill_lab)
    tokens = sample(a.oracle, a.eval_prompts, 5, generator=torch.Generator().manual_seed(0)).tokens
    with torch.no_grad():
        torch.testing.assert_close(a.oracle(tokens), b.oracle(tokens))
        torch.testing.assert_close(a.teacher(tokens), b.teacher(tokens))
    config = DistillLabConfig(**tiny_distill_lab)
    untrained = build_model(config.transformer(config.teacher), 1)
    trained_gap = sequence_distance(a.oracle, a.teacher, tokens, 3).mean()
    untrained_gap = sequence_distance(a.oracle, untrained, tokens, 3).mean()
    assert trained_gap < 0.7 * untrained_gap
    assert a.eval_prompts.shape == (32, 3)


def test_teacher_noise_moves_the_teacher_away_from_the_oracle_and_samples_with_a_cache(tiny_distill_lab):
    clean = make_env("distill_lab", **tiny_distill_lab)
    noisy = make_env("distill_lab", **{**tiny_distill_lab, "teacher_noise": 1.0})
    tokens = sample(clean.oracle, clean.eval_prompts, 5, generator=torch.Generator().manual_seed(0)).tokens
    assert (
        sequence_distance(noisy.oracle, noisy.teacher, tokens, 3).mean()
        > sequence_distance(clean.oracle, clean.teacher, tokens, 3).mean()
    )
    cached = sample(noisy.teacher, clean.eval_prompts, 5, generator=torch.Generator().manual_seed(1))
    uncached = sample(noisy.teacher, clean.eval_prompts, 5, generator=torch.Generator().manual_seed(1), use_cache=False)
    assert torch.equal(cached.tokens, uncached.tokens)


def test_bad_lab_input_names_the_problem(tiny_distill_lab):
    with pytest.raises(ValueError, match="teacher.d_model"):
        DistillLabConfig(**{**tiny_distill_lab, "teacher": {"d_model": 30, "n_heads": 4}})
    lab = make_env("distill_lab", **tiny_distill_lab)
    wrong = lab.config.transformer(lab.config.teacher).model_copy(update={"vocab_size": 13})
    with pytest.raises(ValueError, match="does not match the teacher"):
        lab.student(wrong.model_dump(mode="json"), {})
