"""CFG distillation with a diversity reward (arXiv 2410.06084), the math: the student's
loss towards the CFG-augmented teacher distribution, the diversity reward among several
generations of one prompt, and interpolation between two students' weights.

Shapes: sequences `[B, L]` whose first `prompt_length` tokens are the prompt (attributes
then BOS); embeddings `[G, D]` for the G generations of one prompt.
"""

from __future__ import annotations

import numpy as np
import torch

from gamescale.algorithms.lm.losses import forward_kl
from gamescale.algorithms.lm.model import CausalTransformer
from gamescale.algorithms.music.conditional import guided_logits
from gamescale.envs.music import vocab as V


def completion_mask(tokens: torch.Tensor, prompt_length: int) -> torch.Tensor:
    """`[B, L-1]` the next-token positions that predict completion tokens (up to and
    including the first EOS; PAD after it does not count)."""
    mask = torch.zeros(tokens.shape[0], tokens.shape[1] - 1, dtype=torch.bool, device=tokens.device)
    mask[:, prompt_length - 1 :] = True
    ended = torch.cumsum((tokens[:, :-1] == V.EOS) & mask, dim=1) > 0  # positions after an EOS
    return mask & ~ended


def cfg_distillation_loss(
    student: CausalTransformer,
    teacher: CausalTransformer,
    tokens: torch.Tensor,
    prompt_length: int,
    guidance_scale: float,
) -> torch.Tensor:
    """Mean over completion positions of KL(p_cfg || p_student): the teacher's CFG-augmented
    next-token distribution (two teacher passes, no gradient) against the student's
    distribution given the prompt (one pass) — exact over the vocabulary."""
    with torch.no_grad():
        target = guided_logits(teacher, tokens, guidance_scale)
    return forward_kl(target, student(tokens[:, :-1]), completion_mask(tokens, prompt_length))


def token_count_embedding(tokens: torch.Tensor, prompt_length: int) -> torch.Tensor:
    """`[B, V]` L2-normalised counts of each music token in the completions (a fixed,
    untrained embedding; the learned music embedding replaces it in the reward loop)."""
    completions = tokens[:, prompt_length:]
    counts = torch.zeros(tokens.shape[0], V.VOCAB_SIZE, dtype=torch.float32, device=tokens.device)
    counts.scatter_add_(1, completions, torch.ones_like(completions, dtype=torch.float32))
    counts[:, [V.PAD, V.NULL]] = 0.0
    return torch.nn.functional.normalize(counts, dim=1)


def diversity_reward(embeddings: torch.Tensor) -> torch.Tensor:
    """`[G]` reward of each of G >= 2 generations of one prompt: its mean cosine
    dissimilarity (1 - cos) to the other G - 1. Copies of one sequence get 0; the paper's
    diversity of the group is the mean of these."""
    if embeddings.dim() != 2 or embeddings.shape[0] < 2:
        raise ValueError(f"need embeddings [G >= 2, D] of one prompt's generations, got {tuple(embeddings.shape)}")
    unit = torch.nn.functional.normalize(embeddings.float(), dim=1)
    similarity = unit @ unit.T
    groups = embeddings.shape[0]
    return (groups - similarity.sum(dim=1)) / (groups - 1)  # the diagonal's 1 cancels its own term


def interpolate_weights(
    first: dict[str, torch.Tensor], second: dict[str, torch.Tensor], mix: float
) -> dict[str, torch.Tensor]:
    """(1 - mix) first + mix second for every floating tensor of two state dicts of one
    architecture (`torch.lerp`: mix 0 gives `first` and 1 gives `second` bit for bit);
    other tensors must be equal and are copied."""
    if isinstance(mix, bool) or not np.isfinite(float(mix)):
        raise ValueError(f"mixing factor must be a finite number, got {mix!r}")
    if first.keys() != second.keys():
        raise ValueError(f"state dicts differ in keys: {sorted(set(first) ^ set(second))[:5]}")
    out = {}
    for name, a in first.items():
        b = second[name]
        if a.shape != b.shape:
            raise ValueError(f"{name}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
        if a.is_floating_point():
            out[name] = torch.lerp(a, b.to(a.dtype), float(mix))
        elif torch.equal(a, b):
            out[name] = a.clone()
        else:
            raise ValueError(f"{name}: non-float tensors differ and cannot be interpolated")
    return out
